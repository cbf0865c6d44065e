"""Video frames (:mod:`kinediff.core.video`): any frame, in any order, through one cache of open
videos (MPI-INF-3DHP's MJPEG ``.avi``, SURREAL's H.264 ``.mp4`` with B-frames), and clear errors."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from kinediff.core.video import close_video, read_video_frame

COLOURS = [(20 + 35 * i, 230 - 30 * i, 60 + 25 * i) for i in range(7)]


def _write(path: Path, codec: str, pix_fmt: str, rate: int = 25) -> Path:
    """Seven 32 x 48 frames, frame i a solid colour :data:`COLOURS` [i]."""
    with av.open(str(path), "w") as video:
        stream = video.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 48, 32, pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "12", "g": "3"}  # key frames every 3 frames, B-frames between
        for colour in COLOURS:
            rgb = np.broadcast_to(np.array(colour, np.uint8), (32, 48, 3)).copy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                video.mux(packet)
        for packet in stream.encode():
            video.mux(packet)
    return path


@pytest.fixture(scope="module", params=[("mjpeg", "yuvj420p", "avi"), ("libx264", "yuv420p", "mp4")],
                ids=["avi", "mp4"])
def video(request, tmp_path_factory):
    codec, pix_fmt, suffix = request.param
    return _write(tmp_path_factory.mktemp("video") / f"clip.{suffix}", codec, pix_fmt)


def test_every_frame_in_any_order_with_and_without_a_cache(video):
    frames = [read_video_frame(video, i) for i in range(7)]
    for frame, colour in zip(frames, COLOURS):
        assert frame.shape == (3, 32, 48) and frame.dtype == torch.float32
        torch.testing.assert_close(frame.mean((1, 2)), torch.tensor(colour) / 255.0, atol=4 / 255, rtol=0)
    cache: dict = {}
    for i in (6, 0, 3, 4, 4, 1, 5, 2, 6):
        assert torch.equal(read_video_frame(video, i, cache), frames[i])
    assert cache["video"].path == video
    close_video(cache)
    assert "video" not in cache
    close_video(cache)  # nothing open: nothing to do
    assert torch.equal(read_video_frame(str(video), 2, cache), frames[2])  # a str path, reopened


def test_one_cache_follows_the_video_asked_for(video, tmp_path):
    other = _write(tmp_path / "other.avi", "mjpeg", "yuvj420p")
    cache: dict = {}
    a = read_video_frame(video, 1, cache)
    b = read_video_frame(other, 1, cache)
    assert cache["video"].path == other
    assert torch.equal(read_video_frame(video, 1, cache), a) and torch.equal(read_video_frame(other, 1), b)


def test_missing_undecodable_and_past_the_end_are_named(video, tmp_path):
    cache: dict = {}
    with pytest.raises(ValueError, match=rf"{video.name} has no frame 7"):
        read_video_frame(video, 7, cache)
    assert torch.equal(read_video_frame(video, 0, cache), read_video_frame(video, 0))  # still usable
    with pytest.raises(FileNotFoundError, match=r"no video at .*none.mp4"):
        read_video_frame(tmp_path / "none.mp4", 0)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"bad.mp4 is not a decodable video"):
        read_video_frame(tmp_path / "bad.mp4", 0, cache)
    (tmp_path / "empty.avi").write_bytes(b"RIFF....AVI not really")
    with pytest.raises(ValueError, match=r"empty.avi has no video stream"):
        read_video_frame(tmp_path / "empty.avi", 0, cache)
