"""Pretrained PostureHMR models that can be shared: a folder with ``config.json`` (the
:class:`~kinediff.PostureHMRConfig`), ``model.safetensors`` (the learnt weights) and ``body.json``
(the fingerprint of the body it was trained with, :meth:`~kinediff.body.BodyModel.fingerprint`).

Never any SMPL data: the body model, the mesh hierarchy and the one-step regressor's template are
rebuilt from the body the user loads (:func:`~kinediff.training.model_weights` leaves them out),
and the up-sampler's weights are stored as their change from the barycentric up-sampling matrices
they start from (which are computed from the SMPL template), added back at load (float32: the
loaded weights equal the saved ones to within one rounding, predictions to about 1e-7 m); so a model
trained on the licensed SMPL files can be published without them. Loading against another body
than the fingerprint's is refused, saying which body the model expects. The config's
``head.pretrained`` (a local HRNet initialisation file) is not part of a trained model: it is saved
and loaded as None.
Trainer checkpoints (optimiser, position, random states) stay the way to resume training.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from kinediff.core.io import naming_path

__all__ = ["BODY_NAME", "CONFIG_NAME", "WEIGHTS_NAME", "check_body", "load_pretrained",
           "save_pretrained"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
BODY_NAME = "body.json"
_FORMAT = "kinediff-posturehmr"
_FORMAT_VERSION = 1


def _upsampler_start(model) -> dict[str, torch.Tensor]:
    """The up-sampler's initial weights (body-derived barycentric matrices), by state-dict key."""
    from kinediff.decoders import MeshUpsampler

    start = MeshUpsampler(model.hierarchy).state_dict()
    return {f"upsampler.{k}": v for k, v in start.items() if k.endswith("weight")}


def save_pretrained(model, directory: str | os.PathLike) -> Path:
    """Write ``model`` (a :class:`~kinediff.PostureHMR`) into ``directory``: its config (with
    ``pretrained=None``), its learnt weights (the up-sampler's as their change from its
    body-derived start) and its body's fingerprint. The folder is written beside ``directory`` and
    swapped in whole, so an interrupted save never leaves a mixed folder. Returns ``directory``."""
    from safetensors.torch import save_file

    from kinediff import __version__
    from kinediff.training import model_weights

    path = Path(directory)
    start = _upsampler_start(model)
    weights = {}
    for key, value in model_weights(model).items():
        value = value.detach().to("cpu")
        if key in start:
            value = value - start[key].to(value)
        weights[key] = value.contiguous()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:  # a failed write (a full disk) leaves no half-written folder behind
        meta = {"format": _FORMAT, "format_version": str(_FORMAT_VERSION),
                "kinediff_version": __version__}
        save_file(weights, str(tmp / WEIGHTS_NAME), metadata=meta)
        body = {**model.body.fingerprint(), "kinediff_version": __version__}
        (tmp / BODY_NAME).write_text(json.dumps(body, indent=2) + "\n")
        config = replace(model.config, head=replace(model.config.head, pretrained=None))
        (tmp / CONFIG_NAME).write_text(config.to_json() + "\n")
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise naming_path(err, path)
        raise
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
    return path


def check_body(expected: dict[str, Any], body, source: str = "this model") -> None:
    """Refuse ``body`` unless its fingerprint matches ``expected`` (vertex, joint and shape counts
    and the template hash; the name is only reported), with an error naming both bodies."""
    got = body.fingerprint()
    keys = ("num_vertices", "num_joints", "num_betas", "template_sha256")
    if all(expected.get(k) == got[k] for k in keys):
        return

    def describe(fp: dict[str, Any]) -> str:
        return (f"{fp.get('name')!r} ({fp.get('num_vertices')} vertices, {fp.get('num_joints')} "
                f"joints, {fp.get('num_betas')} betas, template sha256 "
                f"{str(fp.get('template_sha256'))[:12]}...)")

    raise ValueError(f"{source} was trained with the body {describe(expected)}, but the body given "
                     f"is {describe(got)}: load it with the same SMPL file it was trained with "
                     f"(e.g. BodyModel.from_smpl(path) or BodyModel.synthetic() for the built-in "
                     f"body)")


def load_pretrained(directory: str | os.PathLike, body, device: str | torch.device | None = None):
    """The :class:`~kinediff.PostureHMR` saved by :func:`save_pretrained` in ``directory``, built
    on ``body`` (checked against the saved fingerprint), in eval mode, on ``device``.

    Raises:
        FileNotFoundError: a file is missing (named).
        ValueError: a file is not what it should be, the body differs, or the weights do not fit
            the config.
    """
    from safetensors import SafetensorError, safe_open

    from kinediff.posturehmr import PostureHMR, PostureHMRConfig
    from kinediff.training import load_model_weights

    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"no pretrained model folder at {path}")
    for name in (CONFIG_NAME, WEIGHTS_NAME, BODY_NAME):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} has no {name}: expected a folder written by "
                                    f"PostureHMR.save_pretrained ({CONFIG_NAME}, {WEIGHTS_NAME}, "
                                    f"{BODY_NAME})")
    config = PostureHMRConfig.from_config(path / CONFIG_NAME)
    try:
        expected = json.loads((path / BODY_NAME).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path / BODY_NAME} is not a body fingerprint (JSON): {err}") from err
    if not isinstance(expected, dict):
        raise ValueError(f"{path / BODY_NAME} is not a body fingerprint (a JSON object)")
    check_body(expected, body, f"the model in {path}")
    try:
        with safe_open(str(path / WEIGHTS_NAME), "pt") as handle:  # one read: metadata and tensors
            meta = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path / WEIGHTS_NAME} is not a readable safetensors file: {err}") from err
    if meta.get("format") != _FORMAT or meta.get("format_version") != str(_FORMAT_VERSION):
        raise ValueError(f"{path / WEIGHTS_NAME} was not written by PostureHMR.save_pretrained "
                         f"(format {meta.get('format')!r}, version {meta.get('format_version')!r}; "
                         f"expected {_FORMAT!r}, version {_FORMAT_VERSION})")
    model = PostureHMR(replace(config, head=replace(config.head, pretrained=None)), body)
    for key, value in _upsampler_start(model).items():
        if key in state:
            state[key] = state[key] + value.to(state[key])
    load_model_weights(model, state, str(path / WEIGHTS_NAME))
    if device is not None:
        model = model.to(device)
    return model.eval()
