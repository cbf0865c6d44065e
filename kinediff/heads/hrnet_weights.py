"""HRNet backbone weights from a local file: official COCO-pose checkpoints and timm state dicts.

Two kinds of file load into the timm backbone of :class:`~kinediff.heads.HRNetMeshHead`
(``timm.create_model(name, features_only=True, feature_location="", out_indices=(1, 2, 3, 4))``,
a ``HighResolutionNetFeatures`` whose state dict has no prefix):

- the official human-pose checkpoints (``pose_hrnet_w32_256x192.pth``, ``pose_hrnet_w32_384x288.pth``,
  ``pose_hrnet_w48_256x192.pth``, ``pose_hrnet_w48_384x288.pth``): state dicts of
  ``PoseHighResolutionNet`` (``lib/models/pose_hrnet.py`` of the official HRNet pose code), plain or
  wrapped as a training checkpoint (``{"state_dict": {"module.…": …}, …}``);
- timm's own HRNet state dicts (classification or features models), ``.pth`` or ``.safetensors``.

The two namings of the backbone coincide module for module (timm's HRNet descends from the same
code), so the mapping strips wrappers (``module.``, ``backbone.``, ``model.``) and sorts the names
into backbone and head::

    file key (official / timm)                       timm backbone name     note
    conv1, bn1, conv2, bn2                           same                   stem (act1/act2: no tensors)
    layer1.{b}.{conv,bn}{1,2,3}, layer1.0.downsample.{0,1}
                                                     same                   4 Bottlenecks, 256 out
    transition{t}.{i}.{0,1}, transition{t}.{i}.{k}.{0,1}
                                                     same                   None / Identity: no tensors
    stage{s}.{m}.branches.{i}.{b}.{conv,bn}{1,2}     same                   4 BasicBlocks a branch
    stage{s}.{m}.fuse_layers.{i}.{j}.{...}           same                   i == j: no tensors
    (official: absent, multi_scale_output=False)     stage4.{last}.fuse_layers.{1,2,3}.*   MISSING
    final_layer.{weight,bias}  (official, J x C x 1 x 1, 17-joint heatmaps)     UNUSED
    incre_modules.*, downsamp_modules.*, final_layer.*, classifier.*  (timm classification head)
                                                                            UNUSED

Branch channels agree: official W32 / W48 and timm ``hrnet_w32`` / ``hrnet_w48`` both give
32/64/128/256 and 48/96/192/384 at strides 4/8/16/32, and both have stage modules 1/4/3 of 4 blocks.
The 256×192 and 384×288 checkpoints have the same tensors (only the training crop differs).

Files are read with ``torch.load(weights_only=True)`` or safetensors: no code is unpickled. A file
that does not fit is refused with an error naming it and the first mismatched key.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from kinediff.core.io import describe_load_error

__all__ = ["WeightsReport", "backbone_key", "load_backbone_weights", "read_state_dict"]

_log = logging.getLogger(__name__)

#: wrappers a checkpoint's keys may carry (DataParallel, mmpose-style and generic training code)
WRAPPER_PREFIXES = ("module.", "backbone.", "model.")
#: top-level modules of the HRNet backbone, in both namings
_BACKBONE = re.compile(r"^(conv[12]|bn[12]|layer1|transition[1-3]|stage[2-4])\.")
#: one fusion path of a HighResolutionModule: stage{s}.{module}.fuse_layers.{i}.{j}
_FUSE_PATH = re.compile(r"^(stage\d+\.\d+)\.fuse_layers\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class WeightsReport:
    """What :func:`load_backbone_weights` did.

    Attributes:
        path: the file.
        loaded: backbone tensor names (timm naming) set from the file, in file order.
        missing: backbone tensor names the file did not set (left at their initial values, or
            zeroed, see ``zeroed``).
        unused: file keys (as written in the file) that are not backbone tensors, e.g. the
            official pose head ``final_layer.weight`` / ``final_layer.bias``.
        zeroed: the subset of ``missing`` set to zero by ``neutral_fuse`` (the last BatchNorm
            weight and bias of each fusion path the file lacks).
    """

    path: Path
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unused: tuple[str, ...]
    zeroed: tuple[str, ...] = field(default=())

    @property
    def num_loaded(self) -> int:
        return len(self.loaded)

    def summary(self) -> str:
        """One line: counts, and the first few names left out."""

        def head(names: tuple[str, ...]) -> str:
            return ", ".join(names[:3]) + (", …" if len(names) > 3 else "")

        line = f"{self.path}: loaded {len(self.loaded)} backbone tensors"
        counters = tuple(k for k in self.missing if k.endswith(".num_batches_tracked"))
        others = tuple(k for k in self.missing if not k.endswith(".num_batches_tracked"))
        if others:
            zeroed = f"; {len(self.zeroed)} of them zeroed" if self.zeroed else ""
            line += f"; {len(others)} missing ({head(others)}{zeroed})"
        if counters:  # files from PyTorch < 0.4.1 have none; BatchNorm with a momentum ignores them
            line += f"; {len(counters)} BatchNorm num_batches_tracked counters missing"
        if self.unused:
            line += f"; {len(self.unused)} unused ({head(self.unused)})"
        return line

    def __str__(self) -> str:
        return self.summary()


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` without unpickling code.

    ``.safetensors`` goes through safetensors, anything else through
    ``torch.load(map_location="cpu", weights_only=True)`` (zip or legacy format). A training
    checkpoint ``{"state_dict": {...}, "epoch": ...}`` (or ``{"model": {...}}``) is unwrapped.
    Non-tensor entries are dropped.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file cannot be read safely, or does not hold a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no HRNet weights at {path}")
    if path.suffix == ".safetensors":

        try:
            return dict(load_file(str(path)))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load reports damaged files with many exception types

        raise ValueError(f"{path}: not a state dict torch.load(weights_only=True) can read: "
                         f"{describe_load_error(err)}") from err
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(loaded).__name__}")
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
            break
    return {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}


def backbone_key(key: str) -> str | None:
    """The timm backbone name of a checkpoint key, or None if it is not a backbone tensor.

    Strips ``module.`` / ``backbone.`` / ``model.`` (in any order, repeated) and keeps names under
    the stem, ``layer1``, ``transition1-3`` and ``stage2-4``; the official and timm namings agree
    there. Head tensors (``final_layer``, ``incre_modules``, ``downsamp_modules``, ``classifier``,
    ...) give None.
    """
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                stripped = True
    return key if _BACKBONE.match(key) else None


def _neutralise_missing_fuse_paths(backbone: nn.Module, loaded: set[str],
                                   missing: set[str]) -> list[str]:
    """Zero the last BatchNorm of every fusion path whose tensors all came from nowhere, in a
    HighResolutionModule whose branches were loaded. Returns the zeroed tensor names."""
    zeroed: list[str] = []
    for name, module in backbone.named_modules():
        match = _FUSE_PATH.match(name)
        if match is None:
            continue
        own = [f"{name}.{k}" for k in module.state_dict()]
        branches = f"{match.group(1)}.branches."
        if not own or not all(k in missing for k in own):
            continue
        if not any(k.startswith(branches) for k in loaded):
            continue
        norms = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.BatchNorm2d)]
        if not norms:
            continue
        norm_name, norm = norms[-1]
        with torch.no_grad():
            norm.weight.zero_()
            norm.bias.zero_()
        zeroed += [f"{name}.{norm_name}.weight", f"{name}.{norm_name}.bias"]
    return zeroed


def load_backbone_weights(backbone: nn.Module, path: str | os.PathLike, *,
                          neutral_fuse: bool = True) -> WeightsReport:
    """Load an official COCO-pose HRNet checkpoint or a timm HRNet state dict into ``backbone``.

    Args:
        backbone: a timm HRNet (``HighResolutionNetFeatures`` or ``HighResolutionNet``).
        path: ``.pth`` / ``.pt`` (read with ``weights_only=True``) or ``.safetensors``.
        neutral_fuse: the official pose net's last module fuses into the stride-4 branch only, so
            timm's fusion paths into the stride-8/16/32 outputs are absent from its checkpoint.
            True zeroes the last BatchNorm (weight and bias) of each such path, so those outputs
            are the pretrained branch features themselves (ReLU(x_i) = x_i) rather than x_i plus
            randomly initialised mixes of the other branches; the paths still train (the BN
            weight gets gradients). False leaves them at their initial values.

    Returns:
        :class:`WeightsReport`: loaded / missing / unused names (and those zeroed).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: naming ``path`` and the key: a backbone tensor whose shape differs from the
            backbone's (the first one, in file order; e.g. a W32 file for a W48 backbone), a file
            of which no tensor maps onto the backbone, or a file that is not a state dict.
    """
    path = Path(path)
    state = read_state_dict(path)
    own = backbone.state_dict()
    arch = type(backbone).__name__
    if not state:
        raise ValueError(f"{path}: holds no tensors")
    mapped: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, value in state.items():
        name = backbone_key(key)
        if name is None or name not in own:
            unused.append(key)
            continue
        if tuple(value.shape) != tuple(own[name].shape):
            raise ValueError(
                f"{path}: {key!r} has shape {tuple(value.shape)} but the {arch} backbone's "
                f"{name!r} has {tuple(own[name].shape)} (another HRNet width or variant?)")
        if name in mapped:
            raise ValueError(f"{path}: {key!r} sets the backbone's {name!r} a second time")
        mapped[name] = value
    if not mapped:
        raise ValueError(f"{path}: no tensor matches the {arch} backbone "
                         f"(first key {next(iter(state))!r})")
    backbone.load_state_dict(mapped, strict=False)
    missing = [k for k in own if k not in mapped]
    zeroed = (_neutralise_missing_fuse_paths(backbone, set(mapped), set(missing))
              if neutral_fuse else [])
    report = WeightsReport(path, tuple(mapped), tuple(missing), tuple(unused), tuple(zeroed))
    _log.info("HRNet weights %s", report.summary())
    return report
