"""People in video: per-frame full-frame prediction, SMPL fits, and One Euro smoothing over time.

:func:`predict_video` runs :func:`~kinediff.posturehmr.predict_frames` on every frame with the
tracked people's boxes, fits SMPL to each mesh (:func:`~kinediff.fit.fit_smpl`), smooths each
track's parameters with :func:`~kinediff.video.smooth_smpl` (rotations on SO(3), frame-rate
aware), and gives the smoothed meshes; its boxes come per frame and per track, the same tracks in
the same order in every frame. :func:`predict_tracks` takes
:func:`~kinediff.video.track_boxes`' tracks instead, which may start, end and miss frames; each
track is smoothed on its own frames' times, and :func:`fill_gaps` fills its missed frames for an
animation file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from kinediff.core.checks import check_number
from kinediff.core.io import load_json
from kinediff.posturehmr.frames import predict_frames
from kinediff.video.smpl import smooth_smpl
from kinediff.video.tracking import Track

__all__ = ["TrackPrediction", "VideoPrediction", "check_track", "fill_gaps", "predict_tracks",
           "predict_video", "read_track_file", "read_video"]


@dataclass
class VideoPrediction:
    """What :func:`predict_video` returns, T frames and P tracks.

    Attributes:
        pose: (T, P, 24, 3) SMPL axis-angle in each frame's camera frame (smoothed with ``smooth``).
        betas: (T, P, 10). transl: (T, P, 3) metres.
        vertices: (T, P, V, 3) the meshes of those parameters, camera frame, metres.
        raw_vertices: (T, P, V, 3) the network's meshes, placed, before fitting and smoothing.
        fit_error: (T, P) mean vertex distance of each fit to the network's mesh, metres.
        times: (T,) seconds. K: (3, 3) the camera.
    """

    pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    vertices: torch.Tensor
    raw_vertices: torch.Tensor
    fit_error: torch.Tensor
    times: torch.Tensor
    K: torch.Tensor


def read_video(path: str | os.PathLike) -> tuple[list[torch.Tensor], float]:
    """Every frame of a video file as (3, H, W) float in [0, 1], and its frame rate (PyAV)."""
    try:
        import av  # PyAV, a heavy optional dependency (kinediff[video]): imported on first need
    except ImportError:
        raise ImportError("reading videos needs PyAV: pip install 'kinediff[video]'") from None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video at {path}")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
            frames = [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1).float() / 255
                      for f in container.decode(video=0)]
    except (av.FFmpegError, OSError, ValueError, IndexError) as err:
        raise ValueError(f"{path} is not a decodable video: {err}") from None
    if not frames:
        raise ValueError(f"{path} has no frames")
    return frames, fps


def read_track_file(path: str | os.PathLike) -> tuple[list[list[list[float]]], float | None]:
    """A track file: JSON ``{"boxes": [[[x, y, w, h] per track] per frame], "fps": 30}`` (``fps``
    optional, a number > 0) -> (boxes, fps). Each frame's entry must be a list of boxes; the boxes
    themselves are checked where they are used."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no track file {path}")
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("boxes"), list):
        raise ValueError(f'{path} must hold {{"boxes": [[[x, y, w, h], ...] per frame], "fps": ...}}')
    for f, frame in enumerate(data["boxes"]):
        if not isinstance(frame, list):
            raise ValueError(f"{path}: key 'boxes' frame {f} must be a list of [x, y, w, h] boxes, "
                             f"got {type(frame).__name__}")
    fps = data.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                            or not 0 < fps < float("inf")):
        raise ValueError(f"{path}: key 'fps' must be a number > 0 (frames per second), got {fps!r}")
    return data["boxes"], None if fps is None else float(fps)


def predict_video(model, frames: Iterable[torch.Tensor], boxes: Sequence[Sequence[Sequence[float]]],
                  fps: float | None = None, timestamps: Sequence[float] | None = None,
                  K: torch.Tensor | None = None, smooth: bool = True, min_cutoff: float = 1.0,
                  beta: float = 1.0, batch_size: int = 32) -> VideoPrediction:
    """Tracked people of a video as smoothed SMPL bodies in the camera frame.

    Args:
        model: a :class:`~kinediff.PostureHMR`.
        frames: T frames, each (3, H, W) float in [0, 1].
        boxes: per frame, the P tracks' boxes (x, y, w, h), the same tracks in the same order in
            every frame.
        fps / timestamps: the frame rate, or (T,) increasing seconds (one of them; the filter is
            frame-rate aware).
        K: (3, 3) the camera, or None for :func:`~kinediff.posturehmr.default_intrinsics`.
        smooth: One Euro filtering of the fitted parameters (False: the per-frame fits).
        min_cutoff, beta: the filter's (Hz, Hz per rad/s; see :mod:`kinediff.video.filters`).

    Returns:
        :class:`VideoPrediction`.
    """
    frames = list(frames)
    if len(boxes) != len(frames):
        raise ValueError(f"boxes must give the tracks' boxes for each frame: {len(frames)} frames, "
                         f"{len(boxes)} entries")
    if not frames:
        raise ValueError("predict_video needs at least one frame")
    tracks = {len(b) for b in boxes}
    if len(tracks) != 1 or tracks == {0}:
        raise ValueError(f"every frame must give the same, positive number of track boxes (tracks "
                         f"that start, end or miss frames: predict_tracks); got {sorted(tracks)}")
    if (fps is None) == (timestamps is None):
        raise ValueError("give the frame rate (fps) or the frames' timestamps, one of them")
    p = tracks.pop()
    people = predict_frames(model, frames, boxes, K=K, fit_smpl=True, batch_size=batch_size)
    t = len(frames)

    def stack(get):
        return torch.stack([get(person) for person in people]).view(t, p, *get(people[0]).shape)

    pose = stack(lambda q: q.smpl["pose"])
    betas = stack(lambda q: q.smpl["betas"])
    transl = stack(lambda q: q.smpl["transl"])
    raw = stack(lambda q: q.vertices)
    fitted = stack(lambda q: q.smpl["vertices"])
    error = (fitted.double() - raw.double()).norm(dim=-1).mean(-1)
    if smooth:
        out = smooth_smpl(pose, betas, transl, fps=fps, timestamps=timestamps,
                          min_cutoff=min_cutoff, beta=beta)
        pose, betas, transl = out.pose, out.betas, out.transl
    body = model.body
    with torch.no_grad():
        verts = body(pose.reshape(t * p, 24, 3).to(body.v_template),
                     betas.reshape(t * p, -1).to(body.v_template)).vertices
    verts = verts.view(t, p, *verts.shape[1:]).cpu() + transl.to(verts.dtype).cpu()[:, :, None]
    times = (torch.arange(t, dtype=torch.float64) / fps if timestamps is None
             else torch.as_tensor(timestamps, dtype=torch.float64))
    return VideoPrediction(pose, betas, transl, verts, raw, error, times, people[0].K)


@dataclass
class TrackPrediction:
    """One tracked person of :func:`predict_tracks`, seen in n frames.

    Attributes:
        id: the track's identity (:attr:`kinediff.video.Track.id`).
        frames: (n,) int64 the frames it was seen in, increasing (gaps where it was missed).
        boxes: (n, 4) its boxes (x, y, w, h) in pixels.
        pose: (n, 24, 3) SMPL axis-angle in the camera frame (smoothed with ``smooth``).
        betas: (n, 10). transl: (n, 3) metres.
        vertices: (n, V, 3) the meshes of those parameters, camera frame, metres.
        fit_error: (n,) mean vertex distance of each fit to the network's mesh, metres.
        times: (n,) float64 seconds. K: (3, 3) the camera.
    """

    id: int
    frames: np.ndarray
    boxes: np.ndarray
    pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    vertices: torch.Tensor
    fit_error: torch.Tensor
    times: torch.Tensor
    K: torch.Tensor


def check_track(track: Track, num_frames: int) -> None:
    """Raise ``ValueError`` naming the track unless its ``frames`` are (n,) integers, n >= 1,
    strictly increasing and in [0, num_frames), and its ``boxes`` (n, 4)."""
    f = np.asarray(track.frames)
    b = np.asarray(track.boxes)
    if f.ndim != 1 or f.size < 1 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"track {track.id}: frames must be a non-empty (n,) integer array, got "
                         f"{f.dtype} of shape {f.shape}")
    if b.shape != (f.size, 4):
        raise ValueError(f"track {track.id}: boxes must have shape ({f.size}, 4), one per frame, "
                         f"got {b.shape}")
    if (np.diff(f) <= 0).any() or f[0] < 0 or f[-1] >= num_frames:
        raise ValueError(f"track {track.id}: frames must be strictly increasing, in [0, "
                         f"{num_frames}), got {f.tolist()[:8]}")


def predict_tracks(model, frames: Sequence[torch.Tensor], tracks: Sequence[Track], fps: float,
                   K: torch.Tensor | None = None, smooth: bool = True, min_cutoff: float = 1.0,
                   beta: float = 1.0, batch_size: int = 32) -> list[TrackPrediction]:
    """Tracked people (:func:`~kinediff.video.track_boxes`) as smoothed SMPL bodies.

    Every box of every track is predicted in one pass over the frames
    (:func:`~kinediff.posturehmr.predict_frames` with SMPL fits); each track's parameters are then
    smoothed on its own frames' times (k / fps: a gap is a longer step, which the frame-rate-aware
    One Euro filter takes as such).

    Args:
        model: a :class:`~kinediff.PostureHMR`.
        frames: T frames, each (3, H, W) float in [0, 1].
        tracks: the tracks, their ``frames`` in [0, T).
        fps: the frame rate (> 0).
        K, smooth, min_cutoff, beta, batch_size: as :func:`predict_video`.

    Returns:
        One :class:`TrackPrediction` per track, in the order given.

    Raises:
        ValueError: no frames, ``fps`` <= 0, a track whose frames are empty, not increasing or
            outside the clip, or whose boxes do not match its frames (:func:`check_track`).
    """
    frames = list(frames)
    if not frames:
        raise ValueError("predict_tracks needs at least one frame")
    fps = check_number(fps, "fps", 0.0, low_open=True)
    per_frame: list[list[list[float]]] = [[] for _ in frames]
    slots: list[list[tuple[int, int]]] = []  # per track: (frame, position in that frame's boxes)
    for track in tracks:
        if not isinstance(track, Track):
            raise TypeError(f"tracks must be kinediff.video.Track objects, got {type(track).__name__}")
        check_track(track, len(frames))
        spots = []
        for f, box in zip(track.frames.tolist(), track.boxes.tolist()):
            spots.append((f, len(per_frame[f])))
            per_frame[f].append(box)
        slots.append(spots)
    people = predict_frames(model, frames, per_frame, K=K, fit_smpl=True, batch_size=batch_size)
    offsets = np.cumsum([0] + [len(b) for b in per_frame])
    body = model.body
    out = []
    for track, spots in zip(tracks, slots):
        mine = [people[offsets[f] + k] for f, k in spots]
        pose = torch.stack([q.smpl["pose"] for q in mine])
        betas = torch.stack([q.smpl["betas"] for q in mine])
        transl = torch.stack([q.smpl["transl"] for q in mine])
        error = torch.stack([(q.smpl["vertices"].double() - q.vertices.double()).norm(dim=-1).mean()
                             for q in mine])
        times = torch.as_tensor(track.frames, dtype=torch.float64) / fps
        if smooth:
            smoothed = smooth_smpl(pose, betas, transl, timestamps=times, min_cutoff=min_cutoff,
                                   beta=beta)
            pose, betas, transl = smoothed.pose, smoothed.betas, smoothed.transl
        with torch.no_grad():
            verts = body(pose.to(body.v_template), betas.to(body.v_template)).vertices
        verts = verts.cpu() + transl.to(verts.dtype).cpu()[:, None]
        out.append(TrackPrediction(track.id, track.frames.copy(), track.boxes.copy(), pose, betas,
                                   transl, verts, error, times, mine[0].K))
    return out


def fill_gaps(frames: np.ndarray, pose: torch.Tensor | np.ndarray,
              transl: torch.Tensor | np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """A track's parameters on every frame from its first to its last: the frames it missed
    interpolated (rotations by spherical linear interpolation per joint, translations linearly),
    as an animation file keys every frame.

    Args:
        frames: (n,) increasing frame indices. pose: (n, J, 3) axis-angle. transl: (n, 3) or None.

    Returns:
        (pose (m, J, 3), transl (m, 3) or None), float64, m = frames[-1] - frames[0] + 1.
    """
    f = np.asarray(frames)
    if f.ndim != 1 or f.size < 1 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"frames must be a non-empty (n,) integer array, got {f.dtype} of shape "
                         f"{f.shape}")
    if (np.diff(f) <= 0).any():
        raise ValueError(f"frames must be strictly increasing, got {f.tolist()[:8]}")
    p = pose.detach().cpu().double().numpy() if torch.is_tensor(pose) else np.asarray(pose, np.float64)
    if p.ndim != 3 or p.shape[0] != f.size or p.shape[2] != 3:
        raise ValueError(f"pose must have shape ({f.size}, J, 3) axis-angle, one per frame, got "
                         f"{p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("pose must be finite (it holds NaN or inf)")
    full = np.arange(f[0], f[-1] + 1)
    if len(f) == 1:
        filled = p
    else:
        j = p.shape[1]
        filled = np.stack([Slerp(f, Rotation.from_rotvec(p[:, k]))(full).as_rotvec()
                           for k in range(j)], 1)
    t = None
    if transl is not None:
        tr = transl.detach().cpu().double().numpy() if torch.is_tensor(transl) else np.asarray(
            transl, np.float64)
        if tr.shape != (f.size, 3) or not np.isfinite(tr).all():
            raise ValueError(f"transl must have shape ({f.size}, 3), finite, one per frame, got "
                             f"{tr.shape}")
        t = np.stack([np.interp(full, f, tr[:, a]) for a in range(3)], 1)
    return filled, t
