"""kinediff demo --video on a reduced budget: the synthetic clip, people from its known boxes when no
detector weights are at hand (said so), tracks without identity switches, the side-by-side GIF,
and the animations read back."""

from __future__ import annotations

import json
import urllib.error

import numpy as np
import pygltflib
import pytest
import torch
from PIL import Image

from kinediff.apps.video_demo import count_identity_switches, run_video_demo, walking_clip
from kinediff.body import BodyModel
from kinediff.cli import main
from kinediff.video import Track
from kinediff.video.predict import read_video


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No torchvision weights in the cache and no network (as on this machine), deterministically."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)


def test_the_video_demo_end_to_end(tmp_path, offline, cache_dir):
    lines = []
    out = tmp_path / "demo"
    results = run_video_demo(out, frames=12, steps_2d=2, steps_3d=2, n_train=32, progress=False,
                             log=lines.append)
    text = "\n".join(lines)
    assert "no person detector at hand" in text and "using the clip's own boxes" in text
    assert results["people_from"] == "the clip's known boxes (no detector weights at hand)"
    assert results["identity_switches"] == 0 and len(results["tracks"]) == 2
    assert all(t["frames"] == list(range(12)) for t in results["tracks"])
    assert json.loads((out / "results.json").read_text())["files"] == results["files"]
    frames, fps = read_video(out / "clip.mp4")
    assert len(frames) == 12 and fps == 12
    gif = Image.open(out / "demo.gif")
    assert gif.n_frames == 12 and gif.size == (512, 256)
    assert Image.open(out / "demo.png").size == (512, 3 * 256)
    for j in (0, 1):
        gltf = pygltflib.GLTF2().load(str(out / f"clip_track{j}.glb"))
        assert gltf.accessors[gltf.animations[0].samplers[0].input].count == 12
        assert (out / f"clip_track{j}.bvh").read_text().startswith("HIERARCHY")


def test_given_detector_weights_must_exist(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match="no detector weights file"):
        run_video_demo(tmp_path / "demo", frames=4, detector_weights=tmp_path / "none.pth",
                       log=lambda line: None, progress=False)


def test_the_clip_and_its_truth():
    body = BodyModel.synthetic()
    clip = walking_clip(body, frames=10, fps=10)
    assert clip["frames"].shape == (10, 3, 256, 256) and clip["boxes"].shape == (10, 2, 4)
    truth = clip["boxes"].numpy()
    # the two people cross: their boxes' centres swap sides
    centre = truth[..., 0] + truth[..., 2] / 2
    assert centre[0, 0] < centre[0, 1] and centre[-1, 0] > centre[-1, 1]
    # a tracker that swaps the two halfway makes two switches (one per person)
    swapped = [Track(j, np.arange(10), np.concatenate([truth[:5, j], truth[5:, 1 - j]]),
                     np.zeros(10, dtype=np.int64)) for j in (0, 1)]
    assert count_identity_switches(swapped, truth) == 2
    kept = [Track(j, np.arange(10), truth[:, j], np.zeros(10, dtype=np.int64)) for j in (0, 1)]
    assert count_identity_switches(kept, truth) == 0


def test_demo_options_belong_to_the_video_demo(tmp_path, capsys):
    assert main(["demo", "--model", str(tmp_path), "--out", str(tmp_path / "q")]) == 2
    assert "belong to the video demo (--video)" in capsys.readouterr().err
    (tmp_path / "afile").write_text("")
    assert main(["demo", "--video", "--out", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
