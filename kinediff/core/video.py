"""Frames of video files, read one at a time through one cache of open videos (PyAV, the optional
``kinediff[video]`` extra): MPI-INF-3DHP's ``.avi`` and SURREAL's ``.mp4`` clips."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["close_video", "read_video_frame"]


class _OpenVideo:
    """A video kept open between frame reads: its PyAV container, decoder and position."""

    def __init__(self, path: Path, container: Any) -> None:
        self.path, self.container = path, container
        self.frames: Any = None  # the decoder's frame iterator, None until positioned
        self.next: int | None = None  # index of the frame it yields next, None if unknown
        self.timestamps = True  # False once frames without time stamps were met

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
        self.container, self.frames, self.next = None, None, None


_OPEN_VIDEOS: weakref.WeakSet[_OpenVideo] = weakref.WeakSet()


def _close_open_videos() -> None:
    """Close every open video before a fork (a DataLoader worker): FFmpeg's decoder threads do not
    survive one, and a child that inherits a decoder mid-use can hang. They reopen on the next read."""
    for video in list(_OPEN_VIDEOS):
        video.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_open_videos)


def read_video_frame(path: str | os.PathLike, index: int, cache: dict | None = None) -> torch.Tensor:
    """Frame ``index`` (0-based, in presentation order) of a video file as (3, H, W) float in
    [0, 1], as stored (RGB).

    Seeks to the key frame before it and decodes forward (PyAV), so long videos (MPI-INF-3DHP's
    2048 x 2048 ``.avi``) are never held in memory. ``cache`` (a dict the caller keeps, one per
    reader) keeps the last video open between calls: reading its frames in increasing order decodes
    each frame once. Open videos are closed before the process forks (a DataLoader worker reopens
    its own); :func:`close_video` closes the one a cache holds.

    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` naming the file for one that
    cannot be decoded, has no video stream or has no frame ``index``, and ``ImportError`` when
    PyAV is not installed (``pip install 'kinediff[video]'``).
    """
    try:
        import av  # optional (kinediff[video]): only videos need it
    except ImportError:
        raise ImportError("reading video frames needs PyAV: pip install 'kinediff[video]' (or pip "
                          "install av), or extract the frames to image files") from None
    path = Path(path)
    video = cache.get("video") if cache is not None else None
    if video is None or video.path != path or video.container is None:
        if video is not None:
            video.close()
        if not path.is_file():
            raise FileNotFoundError(f"no video at {path}")
        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError, ValueError) as err:
            raise ValueError(f"{path} is not a decodable video: {err}") from None
        if not container.streams.video:
            container.close()
            raise ValueError(f"{path} has no video stream")
        video = _OpenVideo(path, container)
        _OPEN_VIDEOS.add(video)
        if cache is not None:
            cache["video"] = video
    stream = video.container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    start = stream.start_time or 0

    def seek() -> None:  # to the key frame before ``index`` (or the start when frames have no times)
        if video.timestamps and rate and stream.time_base:
            target = start + round(index / float(rate * stream.time_base))
            video.container.seek(target, stream=stream, backward=True, any_frame=False)
            video.next = None
        else:
            video.container.seek(0, stream=stream)
            video.next = 0
        video.frames = video.container.decode(stream)

    try:
        if video.frames is None or video.next is None or not video.next <= index <= video.next + 50:
            seek()
        while (frame := next(video.frames, None)) is not None:
            if frame.pts is not None and rate:
                i = round(float((frame.pts - start) * stream.time_base * rate))
            elif video.next is None:  # no time stamps: count frames from the start instead
                video.timestamps = False
                seek()
                continue
            else:
                i = video.next
            video.next = i + 1
            if i == index:
                rgb = frame.to_ndarray(format="rgb24")
                return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
            if i > index:
                break
        video.frames = None
        raise ValueError(f"{path} has no frame {index}")
    except (av.FFmpegError, OSError) as err:
        video.frames = None
        raise ValueError(f"{path} is not a decodable video: {err}") from None
    finally:
        if cache is None:
            video.close()


def close_video(cache: dict) -> None:
    """Close the video that ``cache`` (of :func:`read_video_frame`) keeps open, if any; the next
    read reopens it."""
    video = cache.pop("video", None)
    if video is not None:
        video.close()
