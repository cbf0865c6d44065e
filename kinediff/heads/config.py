"""``HeadConfig``: the options of the 2D stage (:class:`~kinediff.heads.HRNetMeshHead`), as a
:class:`~kinediff.PostureHMRConfig` nests them (``config.head``)."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass

from kinediff.core.config import ConfigMixin

__all__ = ["HeadConfig"]

#: The most points the heatmaps may locate: the 17 joints plus one marker per vertex of an
#: SMPL-sized body (6890 vertices; the markers are distinct template vertices).
MAX_POINTS = 17 + 6890
#: The largest heatmap side: the largest crop (``PostureHMRConfig.image_size`` <= 4096) at
#: HRNet's stride 4, where the heatmaps are read (a larger side would only up-sample them).
MAX_HEATMAP_SIZE = 1024


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

    Limits (a saved config asking for more is refused before anything is allocated):
    ``num_points`` in [18, 6907] (the markers are distinct vertices of the body: at most SMPL's
    6890; a body with fewer vertices is checked when the model is built), ``heatmap_size`` in
    [1, 1024] (the largest crop, 4096 pixels, at HRNet's stride 4). Integers: a bool, a float or a
    string is refused; numpy integers are read as ints.

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
        if self.num_points > MAX_POINTS:
            raise ValueError(f"num_points must be at most {MAX_POINTS} (the 17 joints and one marker "
                             f"per vertex of a 6890-vertex body), got {self.num_points}")
        if self.heatmap_size > MAX_HEATMAP_SIZE:
            raise ValueError(f"heatmap_size must be at most {MAX_HEATMAP_SIZE} (a 4096-pixel crop at "
                             f"HRNet's stride 4), got {self.heatmap_size}")
