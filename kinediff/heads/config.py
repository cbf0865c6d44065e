"""``HeadConfig``: the options of the 2D stage (:class:`~kinediff.heads.HRNetMeshHead`), as a
:class:`~kinediff.PostureHMRConfig` nests them (``config.head``)."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass

from kinediff.config import ConfigMixin

__all__ = ["HeadConfig"]


@dataclass(frozen=True)
class HeadConfig(ConfigMixin):
    """The 2D stage (image crop -> heatmaps -> K points -> 2D mesh); defaults are the paper's.

    Frozen: change one with ``dataclasses.replace(head, num_points=33)``.

    Attributes:
        backbone: the timm HRNet ("hrnet_w48", the paper's).
        pretrained: a local weights file for the backbone (an official COCO-pose HRNet checkpoint
            or a timm state dict), or None for random weights.
        heatmap_size: the heatmap side in pixels (64 for the paper's 256-pixel crop: stride 4).
        num_points: K, the points the heatmaps locate: 17 joints + K - 17 markers (81).

    Example:
        >>> from kinediff.heads import HeadConfig
        >>> HeadConfig(num_points=33).to_dict()["num_points"]
        33
    """

    backbone: str = "hrnet_w48"
    pretrained: str | None = None
    heatmap_size: int = 64
    num_points: int = 81

    def __post_init__(self) -> None:
        if isinstance(self.pretrained, os.PathLike):  # stored as a string (JSON)
            object.__setattr__(self, "pretrained", os.fspath(self.pretrained))
        for name in ("heatmap_size", "num_points"):  # numpy integers too
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError(f"backbone must be a timm model name, got {self.backbone!r}")
        if self.pretrained is not None and not isinstance(self.pretrained, str):
            raise ValueError(f"pretrained must be a file path or None, got {self.pretrained!r}")
        for name in ("heatmap_size", "num_points"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.num_points <= 17:
            raise ValueError(f"num_points must exceed the 17 joints, got {self.num_points}")
