"""People in video: per-frame full-frame prediction, SMPL fits, and One Euro smoothing over time.

:func:`predict_video` runs :func:`~kinediff.posturehmr.predict_frames` on every frame with the
tracked people's boxes, fits SMPL to each mesh (:func:`~kinediff.fit.fit_smpl`), smooths each
track's parameters with :func:`~kinediff.video.smooth_smpl` (rotations on SO(3), frame-rate
aware), and gives the smoothed meshes. kinediff has no tracker: the boxes come per frame and per
track, in the same track order every frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from kinediff.core.io import load_json
from kinediff.posturehmr.frames import predict_frames
from kinediff.video.smpl import smooth_smpl

__all__ = ["VideoPrediction", "predict_video", "read_track_file", "read_video"]


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
    optional) -> (boxes, fps)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no track file {path}")
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("boxes"), list):
        raise ValueError(f'{path} must hold {{"boxes": [[[x, y, w, h], ...] per frame], "fps": ...}}')
    fps = data.get("fps")
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
        raise ValueError(f"every frame must give the same, positive number of track boxes (kinediff "
                         f"has no tracker); got {sorted(tracks)}")
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
