"""``HRNetMeshHead``: image crop -> K heatmaps -> K points -> 2D coarse mesh (paper §3.1 "2D mesh").

A timm HRNet backbone (``hrnet_w48``, ``hrnet_w32``, ``hrnet_w18_small``, ...) gives four branches
at strides 4, 8, 16, 32; kinediff fuses them HRNetV2-style (bilinear up-sampling to stride 4,
concatenation, 1x1 conv + BN + ReLU) and a 1x1 conv gives the K heatmaps (64 x 64 for a 256 crop).
``soft_argmax_2d`` turns each into a point (crop pixels) and a learned C (N x K) maps them to the 2D
mesh: M_0^2d = C P.

Weights: ``pretrained`` takes a local file, an official COCO-pose HRNet checkpoint
(``pose_hrnet_w48_256x192.pth``, ...) or a timm HRNet state dict (``.pth`` / ``.safetensors``);
see :mod:`kinediff.heads.hrnet_weights` for the name mapping and what is left out. With no file the
backbone starts from random weights. Nothing is downloaded.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from kinediff.core.checks import FilePath, Int, Ints, Number, Optional, Text
from kinediff.core.config import Configurable
from kinediff.core.pretrained import Pretrained
from kinediff.heads.hrnet_weights import WeightsReport, load_backbone_weights
from kinediff.heads.softargmax import soft_argmax_2d

__all__ = ["MAX_HEATMAP_SIZE", "MAX_POINTS", "HRNetMeshHead"]

#: The most points the heatmaps may locate: the 17 joints plus one marker per vertex of an
#: SMPL-sized body (6890 vertices; the markers are distinct template vertices).
MAX_POINTS = 17 + 6890
#: The largest heatmap side: the largest crop (4096 pixels) at HRNet's stride 4, where the
#: heatmaps are read (a larger side would only up-sample them).
MAX_HEATMAP_SIZE = 1024


class HRNetMeshHead(Configurable, Pretrained, nn.Module):
    """HRNet -> heatmaps -> soft-argmax points -> 2D mesh.

    Args:
        backbone: a timm HRNet name ("hrnet_w48", the paper's).
        num_points: K (81: 17 joints + 64 markers), in [18, :data:`MAX_POINTS`] (the markers are
            distinct vertices of the body: a body with fewer vertices is checked where the
            markers are chosen).
        num_vertices: vertices of the 2D mesh (431).
        heatmap_size: heatmap side (64 for a 256 crop: stride 4), at most
            :data:`MAX_HEATMAP_SIZE`.
        pretrained: local weights file for the backbone (official COCO-pose HRNet checkpoint or
            timm state dict, see :func:`~kinediff.heads.load_backbone_weights`), or None (random
            weights). Nothing is downloaded.
        temperature: soft-argmax temperature (> 0; 1, kinediff's choice (the paper is
            silent): it takes "the center of mass of the heatmap", which a softmax at
            temperature 1 makes differentiable).
        marker_vertices: the markers' body vertices, ``num_points - 17`` distinct vertex
            indices (VirtualMarker's released ones: :func:`~kinediff.heads.read_virtual_markers`
            reads them from its files), or None for kinediff's stand-ins (farthest-point-sampled
            template vertices, :func:`kinediff.core.conventions.keypoint_regressor`). The head
            does not read them; the model's keypoint targets do.

    Configurable (:mod:`kinediff.core.config`): ``head.config`` holds every argument;
    ``HRNetMeshHead.from_config(config)`` builds it again.

    Shape: images (B, 3, S, S) -> dict with ``heatmaps`` (B, K, h, h), ``points`` (B, K, 2) and
    ``mesh2d`` (B, num_vertices, 2), both in crop pixels, and the fused stride-4 ``features``
    (B, C, S/4, S/4) the heatmaps are read from (C = half the branches' channels).

    Attributes:
        pretrained_report: the :class:`~kinediff.heads.WeightsReport` of the ``pretrained`` file
            (loaded, missing and unused tensor names), or None without one.
    """

    def __init__(self, backbone: Annotated[str, Text("a timm HRNet model name")] = "hrnet_w48",
                 num_points: Annotated[int, Int(18, MAX_POINTS, "17 joints and the markers")] = 81,
                 num_vertices: Annotated[int, Int(1)] = 431,
                 heatmap_size: Annotated[int, Int(1, MAX_HEATMAP_SIZE)] = 64,
                 pretrained: Annotated[str | None, Optional(FilePath())] = None,
                 temperature: Annotated[float, Number(0.0, low_open=True)] = 1.0,
                 marker_vertices: Annotated[tuple[int, ...] | None, Optional(Ints(
                     Int(0), 1, MAX_POINTS - 17, "vertex indices"))] = None) -> None:
        super().__init__()
        c = self.config
        # timm: heavy (it imports torchvision and torch._dynamo), imported only where a head is built
        import timm

        self.backbone = timm.create_model(c.backbone, pretrained=False, features_only=True,
                                          feature_location="", out_indices=(1, 2, 3, 4))
        self.pretrained_report: WeightsReport | None = None
        if c.pretrained is not None:
            self.pretrained_report = load_backbone_weights(self.backbone, c.pretrained)
        channels = sum(self.backbone.feature_info.channels())  # type: ignore[union-attr,operator]
        self.feature_channels = channels // 2
        self.fuse = nn.Sequential(nn.Conv2d(channels, channels // 2, 1, bias=False),
                                  nn.BatchNorm2d(channels // 2), nn.ReLU(inplace=True))
        self.to_heatmaps = nn.Conv2d(channels // 2, c.num_points, 1)
        self.coefficients = nn.Parameter(torch.full((c.num_vertices, c.num_points),
                                                    1.0 / c.num_points))
        self.heatmap_size = c.heatmap_size
        self.temperature = c.temperature

    @classmethod
    def check_config(cls, config) -> None:
        markers = config.marker_vertices
        if markers is None:
            return
        if len(markers) != config.num_points - 17:
            raise ValueError(f"num_points must be 17 joints + the {len(markers)} marker_vertices "
                             f"= {17 + len(markers)}, got {config.num_points}")
        if len(set(markers)) != len(markers):
            raise ValueError("marker_vertices must be distinct vertices")

    def saved_config(self) -> HRNetMeshHead.Config:
        """The config with ``pretrained`` None: the saved weights hold the backbone's."""
        return self.config.replace(pretrained=None)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, S, S), got {tuple(images.shape)}")
        if images.shape[2] != images.shape[3]:
            raise ValueError(f"crops must be square, got {images.shape[2]} x {images.shape[3]}")
        feats = self.backbone(images)
        size = feats[0].shape[-2:]
        fused = torch.cat([feats[0]] + [F.interpolate(f, size=size, mode="bilinear",
                                                      align_corners=False) for f in feats[1:]], 1)
        features = self.fuse(fused)
        heatmaps = self.to_heatmaps(features)
        if heatmaps.shape[-1] != self.heatmap_size:
            heatmaps = F.interpolate(heatmaps, size=(self.heatmap_size, self.heatmap_size),
                                     mode="bilinear", align_corners=False)
        # coordinates in float32 at least, autocast or not: bfloat16 spaces pixel coordinates
        # above 128 px 1 px apart, a rounding as large as the 2D stage's whole error budget
        dtype = torch.promote_types(heatmaps.dtype, self.coefficients.dtype)
        with torch.autocast(images.device.type, enabled=False):
            points = soft_argmax_2d(heatmaps.to(dtype), self.temperature) * (
                images.shape[-1] / self.heatmap_size)
            mesh2d = self.coefficients.to(dtype) @ points
        return {"heatmaps": heatmaps, "points": points, "mesh2d": mesh2d, "features": features}
