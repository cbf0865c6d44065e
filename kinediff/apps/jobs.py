"""``kinediff train`` and ``kinediff eval``: the two jobs users run most, driven by a config file
they can version (``kinediff config --preset paper > config.json``).

``train``: a :class:`~kinediff.PostureHMRConfig` JSON, a data set (``synthetic``: SynthBody from
the built-in body; ``3dpw`` / ``h36m`` / ``surreal``: the benchmark's training split under
``--data-root``), every stage the config needs (Trainer checkpoints under ``OUT/train/``, resumable
with ``--resume``), then the trained model as a shareable folder ``OUT/model``
(:meth:`~kinediff.PostureHMR.save_pretrained`). ``eval``: such a folder on a data set's test split
under a named protocol; prints the metrics and writes ``results.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["DATASETS", "PRESETS", "evaluate_model", "preset_config", "train_model", "with_overrides"]

#: The data sets the jobs read: the synthetic SynthBody and the benchmarks' folders.
DATASETS = ("synthetic", "3dpw", "h36m", "surreal")
#: ``kinediff config --preset`` names.
PRESETS = ("paper", "tiny")
#: SynthBody sizes and seeds of the synthetic jobs (as the convergence benchmark's).
SYNTHETIC_SEEDS = {"train": 11, "test": 12}


def preset_config(name: str):
    """The :class:`~kinediff.PostureHMRConfig` of a preset: "paper" (the paper's model and recipe)
    or "tiny" (CPU-sized)."""
    from kinediff.posturehmr import PostureHMRConfig

    if name not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {name!r}")
    return PostureHMRConfig() if name == "paper" else PostureHMRConfig.tiny()


def _body(smpl: str | os.PathLike | None):
    from kinediff.body import BodyModel

    return BodyModel.from_smpl(smpl) if smpl else BodyModel.synthetic()


def _dataset(data: str, split: str, config, body, data_root, protocol, size: int):
    from kinediff.apps.reproduce import benchmark_datasets
    from kinediff.data import SynthBody

    if data not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {data!r}")
    if data == "synthetic":
        return SynthBody(size, seed=SYNTHETIC_SEEDS[split], body=body, image_size=config.image_size,
                         mesh_factors=config.mesh_factors, progress=False)
    if data_root is None or not Path(data_root).is_dir():
        raise FileNotFoundError(f"--data {data} needs --data-root: the data set's folder "
                                f"(see `python examples/reproduce_{data}.py --help`)")
    train, test = benchmark_datasets(data, data_root, body, config, protocol)
    return train if split == "train" else test


def _protocol(name: str | None, data: str):
    from kinediff.apps.reproduce import DEFAULT_PROTOCOL
    from kinediff.metrics import PROTOCOLS

    name = name or DEFAULT_PROTOCOL.get(data, "graphormer-3dpw")
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose from {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


def train_model(config: str | os.PathLike | Any, data: str, out: str | os.PathLike, *,
                data_root: str | os.PathLike | None = None, smpl: str | os.PathLike | None = None,
                resume: bool = False, epochs: int | None = None, max_steps: int | None = None,
                size: int = 2048, progress: bool = True, device: str | None = None) -> Path:
    """Train every stage of a config on a data set; returns the pretrained folder ``out/model``.

    Args:
        config: a config file or folder (:meth:`~kinediff.config.ConfigMixin.from_config`) or a
            :class:`~kinediff.PostureHMRConfig`.
        data: one of :data:`DATASETS`; ``data_root`` its folder (not for "synthetic").
        smpl: the SMPL model file (default: the built-in synthetic body).
        resume: continue from the checkpoints under ``out/train``.
        epochs, max_steps: override the config's epochs / cap the steps per stage.
        size: SynthBody crops for ``data="synthetic"``.
    """
    from kinediff.apps.reproduce import train_phases
    from kinediff.posturehmr import PostureHMR, PostureHMRConfig
    from kinediff.training import setup

    cfg = config if isinstance(config, PostureHMRConfig) else PostureHMRConfig.from_config(config)
    info = setup()
    body = _body(smpl)
    train = _dataset(data, "train", cfg, body, data_root, _protocol(None, data), size)
    out = Path(out)
    model = PostureHMR(cfg, body).to(device or info.device)
    cfg.save_config(out)  # what was trained, next to its checkpoints
    train_phases(model, [("train", train)], out, epochs or cfg.epochs, resume=resume,
                 max_steps=max_steps, progress=progress and info.is_main, distributed=info)
    if not info.is_main:
        return out / "model"
    return model.save_pretrained(out / "model")


def evaluate_model(model_dir: str | os.PathLike, data: str, *, data_root=None, smpl=None,
                   protocol: str | None = None, regressor: str | os.PathLike | None = None,
                   size: int = 256, out: str | os.PathLike | None = None, progress: bool = True,
                   device: str | None = None) -> dict[str, Any]:
    """Score a pretrained folder on a data set's test split under ``protocol`` (default: the data
    set's usual one); returns the metrics (mm) and writes ``results.json`` into ``out`` (default:
    ``model_dir``). Synthetic data is labelled so."""
    import torch

    from kinediff.metrics import load_regressor
    from kinediff.posturehmr import PostureHMR
    from kinediff.training import evaluate

    body = _body(smpl)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = PostureHMR.from_pretrained(model_dir, body, device)
    proto = _protocol(protocol, data)
    test = _dataset(data, "test", model.config, body, data_root, proto, size)
    reg = load_regressor(proto, regressor, body=body)
    label = "SynthBody (synthetic)" if data == "synthetic" else data
    summary = evaluate(model, test, model.config.batch_size, device, protocol=proto, regressor=reg,
                       label=label, progress=progress, body=body).summary()
    results = {"model": str(model_dir), "data": label, "protocol": proto.name,
               "synthetic": data == "synthetic", **summary}
    target = Path(out) if out is not None else Path(model_dir)
    target.mkdir(parents=True, exist_ok=True)
    (target / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def with_overrides(config, pairs: list[str]):
    """``config`` with ``KEY=VALUE`` overrides (values read as JSON, else as strings)."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}")
        try:
            changes[key] = json.loads(value)
        except json.JSONDecodeError:
            changes[key] = value
    type(config).check_fields(changes)
    return type(config).from_dict({**config.to_dict(), **changes}) if changes else replace(config)
