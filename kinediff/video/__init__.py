"""Video: temporal smoothing of per-frame body estimates (One Euro filters, rotations on SO(3))
and person tracking.

Public names: :class:`OneEuroFilter` (vectors), :class:`RotationOneEuroFilter` (rotations),
:class:`OneEuroParams`, :func:`smooth_sequence`, :func:`smooth_rotations`, :func:`unwrap_axis_angle`,
:func:`frame_times`, :func:`one_euro_alpha`, :func:`ramp_lag` (:mod:`kinediff.video.filters`), and
for SMPL parameters :func:`smooth_smpl`, :class:`SMPLSmoother`, :class:`SmoothedSMPL`
(:mod:`kinediff.video.smpl`); person identities across frames from their boxes,
:func:`track_boxes`, :class:`Track`, :func:`box_iou` (:mod:`kinediff.video.tracking`).
"""

from kinediff.video.filters import (
    OneEuroFilter,
    OneEuroParams,
    RotationOneEuroFilter,
    frame_times,
    one_euro_alpha,
    ramp_lag,
    smooth_rotations,
    smooth_sequence,
    unwrap_axis_angle,
)
from kinediff.video.smpl import SmoothedSMPL, SMPLSmoother, smooth_smpl
from kinediff.video.tracking import Track, box_iou, track_boxes

__all__ = [
    "OneEuroFilter",
    "OneEuroParams",
    "RotationOneEuroFilter",
    "SMPLSmoother",
    "SmoothedSMPL",
    "Track",
    "box_iou",
    "frame_times",
    "one_euro_alpha",
    "ramp_lag",
    "smooth_rotations",
    "smooth_sequence",
    "smooth_smpl",
    "track_boxes",
    "unwrap_axis_angle",
]
