"""Pretrained PostureHMR models that can be shared: a folder with ``config.json`` (the
:class:`~kinediff.PostureHMRConfig`), ``model.safetensors`` (the learnt weights) and ``body.json``
(the fingerprint of the body it was trained with, :meth:`~kinediff.body.BodyModel.fingerprint`).

Never any SMPL data: the body model, the mesh hierarchy and the one-step regressor's template are
rebuilt from the body the user loads (:func:`~kinediff.training.model_weights` leaves them out),
so a model trained on the licensed SMPL files can be published without them. Loading against
another body than the fingerprint's is refused, saying which body the model expects.
Trainer checkpoints (optimiser, position, random states) stay the way to resume training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["BODY_NAME", "CONFIG_NAME", "WEIGHTS_NAME", "check_body", "load_pretrained",
           "save_pretrained"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
BODY_NAME = "body.json"
_FORMAT = "kinediff-posturehmr"


def save_pretrained(model, directory: str | os.PathLike) -> Path:
    """Write ``model`` (a :class:`~kinediff.PostureHMR`) into ``directory`` (created): its config,
    its learnt weights (float tensors as they are) and its body's fingerprint. Each file is
    written atomically. Returns the directory."""
    from safetensors.torch import save_file

    from kinediff import __version__
    from kinediff._cache import write_atomic
    from kinediff.training import model_weights

    path = Path(directory)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model_weights(model).items()}
    meta = {"format": _FORMAT, "kinediff_version": __version__}
    write_atomic(path / WEIGHTS_NAME, lambda tmp: save_file(weights, str(tmp), metadata=meta))
    body = {**model.body.fingerprint(), "kinediff_version": __version__}
    write_atomic(path / BODY_NAME, lambda tmp: tmp.write_text(json.dumps(body, indent=2) + "\n"))
    write_atomic(path / CONFIG_NAME, lambda tmp: tmp.write_text(model.config.to_json() + "\n"))
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
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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
        state = load_file(str(path / WEIGHTS_NAME))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path / WEIGHTS_NAME} is not a readable safetensors file: {err}") from err
    model = PostureHMR(config, body)
    load_model_weights(model, state, str(path / WEIGHTS_NAME))
    if device is not None:
        model = model.to(device)
    return model.eval()
