"""Video prediction: per-frame full-frame meshes, SMPL fits, smoothed over time."""

from __future__ import annotations

import json

import pytest
import torch
from tolerances import atol_for

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.video import smooth_smpl
from kinediff.video.predict import predict_video, read_track_file


@pytest.fixture(scope="module")
def model(body32, cache_dir):
    torch.manual_seed(0)
    m = PostureHMR(PostureHMRConfig.tiny(), body32).eval()
    with torch.no_grad():
        for p in m.decoder.head[-1].parameters():
            p.normal_(0, 0.02)
    return m


def _frames(t=4):
    g = torch.Generator().manual_seed(3)
    return [torch.rand(3, 96, 128, generator=g) for _ in range(t)]


def test_tracks_are_fitted_placed_and_smoothed(model, body32):
    frames = _frames()
    boxes = [[(10 + i, 10, 40, 70), (70, 12 + i, 40, 70)] for i in range(4)]
    raw = predict_video(model, frames, boxes, fps=30, smooth=False)
    assert raw.pose.shape == (4, 2, 24, 3) and raw.vertices.shape == (4, 2, 6890, 3)
    # the fits explain the network's meshes (an untrained network's are not exactly body meshes)
    assert float(raw.fit_error.max()) < 0.05
    # unsmoothed: the fitted bodies themselves, in the camera frame
    with torch.no_grad():
        again = body32(raw.pose[1, 0][None], raw.betas[1, 0][None]).vertices[0] + raw.transl[1, 0]
    torch.testing.assert_close(raw.vertices[1, 0], again, atol=atol_for(again, ulps=256), rtol=0)
    smoothed = predict_video(model, frames, boxes, fps=30, smooth=True, min_cutoff=1.0, beta=0.5)
    expected = smooth_smpl(raw.pose, raw.betas, raw.transl, fps=30, min_cutoff=1.0, beta=0.5)
    torch.testing.assert_close(smoothed.pose, expected.pose)
    torch.testing.assert_close(smoothed.transl, expected.transl)
    torch.testing.assert_close(smoothed.pose[0], raw.pose[0])  # the first frame starts the filter
    assert torch.allclose(smoothed.times, torch.arange(4, dtype=torch.float64) / 30)


@pytest.mark.parametrize("boxes, kwargs, message", [
    ([[(10, 10, 40, 70)]] * 3, dict(fps=30), "4 frames, 3 entries"),
    ([[(10, 10, 40, 70)]] * 3 + [[]], dict(fps=30), "same, positive number of track boxes"),
    ([[(10, 10, 40, 70)]] * 4, dict(), "fps\\) or the frames' timestamps"),
])
def test_video_errors(model, boxes, kwargs, message):
    with pytest.raises(ValueError, match=message):
        predict_video(model, _frames(), boxes, **kwargs)


def test_track_files(tmp_path):
    path = tmp_path / "track.json"
    path.write_text(json.dumps({"boxes": [[[1, 2, 3, 4]]], "fps": 25}))
    assert read_track_file(path) == ([[[1, 2, 3, 4]]], 25.0)
    path.write_text("[1]")
    with pytest.raises(ValueError, match="must hold"):
        read_track_file(path)
    with pytest.raises(FileNotFoundError, match="no track file"):
        read_track_file(tmp_path / "none.json")
