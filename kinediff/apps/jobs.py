"""``kinediff train`` and ``kinediff eval``: the two jobs users run most, driven by a config file
they can version (``kinediff config --preset paper > config.json``: the paper's recipe).

``train``: a :class:`~kinediff.PostureHMRConfig` JSON, a data set (``synthetic``: SynthBody from
the built-in body; ``3dpw`` / ``h36m`` / ``surreal``: the benchmark's training split under
``--data-root``), every stage the config needs (Trainer checkpoints under ``OUT/train/``, resumable
with ``--resume``), then the trained model as a shareable folder ``OUT/model``
(:meth:`~kinediff.PostureHMR.save_pretrained`). ``eval``: such a folder on a data set's test split
under a named protocol; prints the metrics (and writes ``--out``/results.json). Benchmarks need
``--smpl``: the SMPL file (or folder, for gendered GT) their labels were made with.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from kinediff.apps.options import DATASETS, PRESETS
from kinediff.apps.reproduce import DEFAULT_PROTOCOL, benchmark_datasets, smpl_bodies, train_phases
from kinediff.body import BodyModel
from kinediff.core.checks import check_choice
from kinediff.core.io import write_atomic
from kinediff.data import SynthBody
from kinediff.metrics import PROTOCOLS, load_regressor
from kinediff.posturehmr import PostureHMR, PostureHMRConfig
from kinediff.training import evaluate, setup

__all__ = ["evaluate_model", "naming_file", "preset_config", "train_model", "with_overrides"]

#: SynthBody sizes and seeds of the synthetic jobs (as the convergence benchmark's).
SYNTHETIC_SEEDS = {"train": 11, "test": 12}


def preset_config(name: str):
    """The :class:`~kinediff.PostureHMRConfig` of a preset: "kinediff" (``PostureHMRConfig()``,
    the library's default: the paper's model with kinediff's heading root path and rollout
    training), "paper" (:meth:`PostureHMRConfig.paper() <kinediff.PostureHMRConfig.paper>`: the
    paper's forward process and recipe) or "tiny" (CPU-sized, kinediff's path)."""

    check_choice(name, "preset", PRESETS)
    return {"kinediff": PostureHMRConfig, "paper": PostureHMRConfig.paper,
            "tiny": PostureHMRConfig.tiny}[name]()


@contextmanager
def naming_file(path: str | os.PathLike | None, what: str = "SMPL model file") -> Iterator[None]:
    """Re-raise an error of reading the pickle or archive ``path`` (a refused global, truncated
    or foreign data: ``pickle.UnpicklingError``, ``EOFError``, ``zipfile.BadZipFile``) whose
    message does not name the file as a ``ValueError`` that does: "PATH is not a readable
    WHAT: ..."."""
    try:
        yield
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as err:
        message = str(err) or "it is empty or cut short"
        if path is None or str(path) in message:
            raise
        raise ValueError(f"{path} is not a readable {what}: {message}") from err


def _bodies(smpl: str | os.PathLike | None, data: str, protocol):
    with naming_file(smpl):
        return _read_bodies(smpl, data, protocol)


def _read_bodies(smpl: str | os.PathLike | None, data: str, protocol):
    """The model's body and the GT bodies: the synthetic body for synthetic data; for a benchmark
    those of :func:`~kinediff.apps.reproduce.smpl_bodies` (``smpl``: a ``.pkl``, or a folder
    with the neutral and, for gendered GT, the male and female files)."""

    if smpl is None:
        if data != "synthetic":
            raise ValueError(f"--data {data} needs --smpl (the SMPL model file or folder its labels "
                             f"were made with; the synthetic body would score real labels against "
                             f"the wrong template)")
        body = BodyModel.synthetic()
        return body, body
    if Path(smpl).is_file():
        body = BodyModel.from_smpl(smpl)
        return body, body
    return smpl_bodies(data, smpl, protocol)


def _dataset(data: str, split: str, config, bodies, data_root, protocol, size: int):

    check_choice(data, "data", DATASETS)
    if data == "synthetic":
        return SynthBody(size, seed=SYNTHETIC_SEEDS[split], body=bodies, image_size=config.image_size,
                         mesh_factors=config.mesh_factors, progress=False)
    if data_root is None or not Path(data_root).is_dir():
        raise FileNotFoundError(f"--data {data} needs --data-root: the data set's folder "
                                f"(see `python examples/reproduce_{data}.py --help`)")
    return benchmark_datasets(data, data_root, bodies, config, protocol, split)


def _protocol(name: str | None, data: str):

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
        config: a config file or folder (:meth:`~kinediff.core.config.Config.load`) or a
            :class:`~kinediff.PostureHMRConfig`.
        data: one of :data:`DATASETS`; ``data_root`` its folder (not for "synthetic").
        smpl: the SMPL model file (default: the built-in synthetic body).
        resume: continue from the checkpoints under ``out/train``.
        epochs, max_steps: override the config's epochs / cap the steps per stage.
        size: SynthBody crops for ``data="synthetic"``.
    """

    cfg = config if isinstance(config, PostureHMRConfig) else PostureHMRConfig.load(config)
    protocol = _protocol(None, data)
    body, bodies = _bodies(smpl, data, protocol)
    train = _dataset(data, "train", cfg, bodies, data_root, protocol, size)
    info = setup()
    out = Path(out)
    model = PostureHMR(cfg, body).to(device or info.device)
    if info.is_main:
        cfg.save(out)  # what was trained, next to its checkpoints
        if data != "synthetic" and "2d" in model.stages() and cfg.head.pretrained is None:
            print("note: the 2D stage's backbone starts from random weights; the paper's is a "
                  "COCO-pretrained HRNet-W48 (set head.pretrained to the official "
                  "pose_hrnet_w48_256x192.pth, see docs/tutorials/reproduce.md)")
    train_phases(model, [("train", train)], out, epochs or cfg.train.epochs, resume=resume,
                 max_steps=max_steps, progress=progress and info.is_main, distributed=info)
    if not info.is_main:
        return out / "model"
    return model.save_pretrained(out / "model")


def evaluate_model(model_dir: str | os.PathLike, data: str, *, data_root=None, smpl=None,
                   protocol: str | None = None, regressor: str | os.PathLike | None = None,
                   size: int = 256, out: str | os.PathLike | None = None, progress: bool = True,
                   device: str | None = None) -> dict[str, Any]:
    """Score a pretrained folder on a data set's test split under ``protocol`` (default: the data
    set's usual one); returns the metrics (mm), also written to ``out/results.json`` when ``out``
    is given (the model folder is never written to). ``smpl``: a SMPL file, or a folder with the
    gendered files for protocols with gendered GT. Synthetic data is labelled so."""

    proto = _protocol(protocol, data)
    body, bodies = _bodies(smpl, data, proto)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = PostureHMR.from_pretrained(model_dir, body, device)
    test = _dataset(data, "test", model.config, bodies, data_root, proto, size)
    reg = load_regressor(proto, regressor, body=body)
    label = "SynthBody (synthetic)" if data == "synthetic" else data
    summary = evaluate(model, test, model.config.train.batch_size, device, protocol=proto, regressor=reg,
                       label=label, progress=progress, body=bodies).summary()
    results = {"model": str(model_dir), "data": label, "protocol": proto.name,
               "markers": model.config.markers, "synthetic": data == "synthetic", **summary}
    if out is not None:
        text = json.dumps(results, indent=2) + "\n"
        write_atomic(Path(out) / "results.json", lambda tmp: tmp.write_text(text))
    return results


def with_overrides(config, pairs: list[str]):
    """``config`` with ``KEY=VALUE`` overrides (values read as JSON, else as strings): ``KEY`` is a
    field (``image_size=128``), a nested config's field by its path (``schedule.num_steps=5``,
    ``train.batch_size=8``), or a nested config with a JSON object, which changes only the fields it
    names (``train={"batch_size": 8}``) unless it names another class
    (``schedule={"class": "GaussianNoiseSchedule", "prediction": "sample"}``). See
    :meth:`~kinediff.core.config.Config.update`."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}")
        try:
            changes[key] = json.loads(text)
        except json.JSONDecodeError:
            changes[key] = text
    try:
        return config.update(changes)
    except TypeError as err:  # a value of the wrong kind, given on the command line
        raise ValueError(f"--set: {err}") from err
