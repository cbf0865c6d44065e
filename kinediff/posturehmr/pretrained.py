"""Pretrained PostureHMR models that can be shared: a folder with ``config.json`` (the
:class:`~kinediff.PostureHMRConfig`), ``model.safetensors`` (the learnt weights) and ``body.json``
(the fingerprint of the body it was trained with, :meth:`~kinediff.body.BodyModel.fingerprint`),
written and read by :meth:`PostureHMR.save_pretrained <kinediff.PostureHMR.save_pretrained>` and
:meth:`PostureHMR.from_pretrained <kinediff.PostureHMR.from_pretrained>` through
:mod:`kinediff.core.pretrained`.

Never any SMPL data: the body model, the mesh hierarchy and the one-step regressor's template are
rebuilt from the body the user loads (they are the model's ``derived_state``), and the
up-sampler's weights are stored as their change from the barycentric up-sampling matrices they
start from (which are computed from the SMPL template), added back at load (float32: the loaded
weights equal the saved ones to within one rounding, predictions to about 1e-7 m); so a model
trained on the licensed SMPL files can be published without them. Loading against another body
than the fingerprint's is refused, saying which body the model expects. The config's
``head.pretrained`` (a local HRNet initialisation file) is not part of a trained model: it is saved
as None. Trainer checkpoints (optimiser, position, random states) stay the way to resume training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from kinediff.core.config import CONFIG_NAME, WEIGHTS_NAME
from kinediff.core.io import load_json
from kinediff.core.pretrained import read_weights, write_folder, write_weights
from kinediff.core.version import __version__
from kinediff.decoders import MeshUpsampler
from kinediff.posturehmr.config import PostureHMRConfig

__all__ = ["BODY_NAME", "check_body", "load_pretrained_folder", "save_pretrained_folder",
           "upsampler_start"]

#: The body fingerprint's file in a pretrained folder.
BODY_NAME = "body.json"


def upsampler_start(hierarchy) -> dict[str, torch.Tensor]:
    """The weights :class:`~kinediff.PostureHMR`'s up-sampler (a
    :class:`~kinediff.decoders.MeshUpsampler` of ``hierarchy``) starts from: the barycentric
    matrices, derived from the body, by the model's state-dict key (``upsampler.*``)."""
    start = MeshUpsampler(hierarchy).state_dict()
    return {f"upsampler.{k}": v for k, v in start.items() if k.endswith("weight")}


def save_pretrained_folder(directory: str | os.PathLike, config: PostureHMRConfig,
                           weights: dict[str, torch.Tensor], start: dict[str, torch.Tensor],
                           fingerprint: dict[str, Any]) -> Path:
    """Write a pretrained folder: ``config`` (a trained model's,
    :meth:`~kinediff.PostureHMRConfig.as_trained`), ``weights`` less ``start`` where it has an
    entry (the up-sampler's change from its start) and the body's ``fingerprint``; swapped in whole
    (:func:`~kinediff.core.pretrained.write_folder`)."""
    stored = {k: (v.detach() - start[k].to(v) if k in start else v) for k, v in weights.items()}

    def write(tmp: Path) -> None:
        write_weights(tmp / WEIGHTS_NAME, stored, config.class_name)
        body = {**fingerprint, "kinediff_version": __version__}
        (tmp / BODY_NAME).write_text(json.dumps(body, indent=2) + "\n")
        config.save(tmp / CONFIG_NAME)

    return write_folder(directory, write, (CONFIG_NAME, WEIGHTS_NAME, BODY_NAME))


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


def load_pretrained_folder(directory: str | os.PathLike, body
                           ) -> tuple[PostureHMRConfig, dict[str, torch.Tensor]]:
    """The config and the stored weights of a folder :func:`save_pretrained_folder` wrote, its
    body fingerprint checked against ``body`` first.

    Raises:
        FileNotFoundError: no folder, or a file missing (named).
        ValueError: a file is not what it should be, or the body differs.
    """
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"no pretrained model folder at {path}")
    for name in (CONFIG_NAME, WEIGHTS_NAME, BODY_NAME):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} has no {name}: expected a folder written by "
                                    f"PostureHMR.save_pretrained ({CONFIG_NAME}, {WEIGHTS_NAME}, "
                                    f"{BODY_NAME})")
    config = PostureHMRConfig.load(path / CONFIG_NAME)
    expected = load_json(path / BODY_NAME)
    if not isinstance(expected, dict):
        raise ValueError(f"{path / BODY_NAME} is not a body fingerprint (a JSON object)")
    check_body(expected, body, f"the model in {path}")
    return config, read_weights(path / WEIGHTS_NAME, config.class_name)
