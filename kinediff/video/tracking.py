"""Person identities across video frames from per-frame boxes: births, deaths and gaps.

Each frame's boxes are matched to the live tracks by the Hungarian assignment
(``scipy.optimize.linear_sum_assignment``) on the overlap (IoU) between a box and where each track
is expected: its last box moved by its last velocity for the frames since it was seen (a constant
velocity, so that two people who cross keep their identities while their boxes overlap). A pair
counts only at IoU >= ``iou_threshold``. An unmatched box starts a track (a birth); a track unseen
for more than ``max_gap`` frames ends (a death), so a person missed for a few frames (occlusion, a
missed detection) keeps the identity and one who leaves for longer comes back under a new one.
Tracks seen in fewer than ``min_hits`` frames are dropped (spurious detections).

Hand-written rather than a tracking library: the whole tracker is this assignment (SORT without
its Kalman filter), on scipy, which kinediff already depends on; norfair and the SORT packages add
a dependency for the same matching.

Boxes are (x, y, w, h) in image pixels, as kinediff's person boxes everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from kinediff.core.checks import check_int, check_number

__all__ = ["Track", "box_iou", "track_boxes"]


@dataclass(frozen=True)
class Track:
    """One identity: the frames it was seen in and its box there.

    Attributes:
        id: the identity, 0, 1, ... in order of birth.
        frames: (n,) int frame indices, increasing (gaps where the person was missed).
        boxes: (n, 4) float (x, y, w, h) in pixels, one per frame of ``frames``.
        indices: (n,) int: which box of its frame each one was (the input's order).
    """

    id: int
    frames: np.ndarray
    boxes: np.ndarray
    indices: np.ndarray


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of (x, y, w, h) boxes: (N, 4), (M, 4) -> (N, M) in [0, 1]
    (0 where a union is empty)."""
    # hand-written: torchvision.ops.box_iou computes the same (on x0, y0, x1, y1 tensors), but
    # torchvision is not one of kinediff's dependencies
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y1 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (a[:, None, 2] * a[:, None, 3]) + (b[None, :, 2] * b[None, :, 3]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _frame_boxes(boxes: object, frame: int) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"frame {frame}: boxes must have shape (N, 4) as (x, y, w, h), got "
                         f"{array.shape}")
    if not np.isfinite(array).all() or (array[:, 2:] <= 0).any():
        raise ValueError(f"frame {frame}: boxes must be finite with width and height > 0")
    return array


def track_boxes(boxes: Sequence[object], iou_threshold: float = 0.3, max_gap: int = 5,
                min_hits: int = 1) -> list[Track]:
    """Identities across frames from each frame's person boxes (module doc).

    Args:
        boxes: per frame, an (N_f, 4) array-like of (x, y, w, h) boxes in pixels (N_f may be 0).
        iou_threshold: the least IoU, in (0, 1], between a box and a track's expected box for
            them to match.
        max_gap: frames a track may go unseen and still match (>= 0; 0: it must be seen in every
            frame).
        min_hits: the fewest frames a kept track was seen in (>= 1).

    Returns:
        The tracks, by identity (births in frame order; within a frame, in box order).
    """
    iou_threshold = check_number(iou_threshold, "iou_threshold", 0.0, 1.0, low_open=True)
    max_gap = check_int(max_gap, "max_gap", 0)
    min_hits = check_int(min_hits, "min_hits", 1)
    history: list[list[tuple[int, np.ndarray, int]]] = []  # per track: (frame, box, index)
    live: list[int] = []
    for frame, frame_boxes in enumerate(boxes):
        found = _frame_boxes(frame_boxes, frame)
        live = [t for t in live if frame - history[t][-1][0] <= max_gap + 1]
        matched: dict[int, int] = {}
        if live and len(found):
            expected = np.stack([_expected(history[t], frame) for t in live])
            overlap = box_iou(expected, found)
            rows, cols = linear_sum_assignment(-overlap)
            matched = {int(c): live[r] for r, c in zip(rows, cols)
                       if overlap[r, c] >= iou_threshold}
        for index, box in enumerate(found):
            track = matched.get(index)
            if track is None:  # a birth
                track = len(history)
                history.append([])
                live.append(track)
            history[track].append((frame, box, index))
    kept = [h for h in history if len(h) >= min_hits]
    return [Track(id=i, frames=np.array([f for f, _, _ in h], dtype=np.int64),
                  boxes=np.stack([b for _, b, _ in h]),
                  indices=np.array([k for _, _, k in h], dtype=np.int64))
            for i, h in enumerate(kept)]


def _expected(seen: list[tuple[int, np.ndarray, int]], frame: int) -> np.ndarray:
    """Where a track's box should be at ``frame``: its last box moved by its last velocity
    (per frame, from its last two sightings) for the frames since (the size kept)."""
    last_frame, last, _ = seen[-1]
    if len(seen) < 2:
        return last
    prev_frame, prev, _ = seen[-2]
    velocity = (last[:2] - prev[:2]) / (last_frame - prev_frame)
    return np.concatenate([last[:2] + velocity * (frame - last_frame), last[2:]])
