"""kinediff predict on a video without a track file: detected boxes linked into tracks (births,
a gap, a spurious box dropped), predicted, fitted, smoothed per track and written as NPZ, .glb and
.bvh animations, each read back by another reader."""

from __future__ import annotations

import av
import bvhio
import numpy as np
import pygltflib
import pytest
import torch

from kinediff.apps.predict import predict_video_file
from kinediff.detect import Detections
from kinediff.video.predict import fill_gaps

FRAMES, FPS = 8, 10


class ScriptedDetector:
    """A detector's interface with known boxes: person A walks right in every frame; person B
    walks left, is missed in frames 3 and 4 (an occlusion) and comes back; frame 6 has a spurious
    box seen once (dropped by min_hits)."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, frames, batch_size: int = 4, progress: bool = False):
        self.calls += 1
        found = []
        for f in range(len(frames)):
            boxes = [[2 + 3 * f, 4, 24, 40]]
            if f not in (3, 4):
                boxes.append([60 - 3 * f, 6, 22, 38])
            if f == 6:
                boxes.append([40, 30, 6, 6])
            t = torch.tensor(boxes, dtype=torch.float32)
            found.append(Detections(t, torch.full((len(boxes),), 0.9)))
        return found


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for _ in range(FRAMES):
            image = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_detected_people_become_tracks_with_animations(clip, fixtures, tmp_path):
    detector = ScriptedDetector()
    records = predict_video_file(clip, fixtures.model_dir, None, tmp_path, detector=detector,
                                 formats=["npz", "glb-anim", "bvh"])
    assert detector.calls == 1
    assert [(r["track"], r["first_frame"], r["last_frame"], r["frames"]) for r in records] == [
        (0, 0, 7, 8), (1, 0, 7, 6)]  # B keeps its identity across the 2-frame gap
    with np.load(tmp_path / "clip_track1.npz") as data:
        np.testing.assert_array_equal(data["frames"], [0, 1, 2, 5, 6, 7])
        assert data["pose"].shape == (6, 24, 3) and data["vertices"].shape == (6, 6890, 3)
        np.testing.assert_allclose(data["times"], data["frames"] / FPS)
        np.testing.assert_allclose(data["boxes"][3], [60 - 15, 6, 22, 38])
    # the .glb keys every frame from the first to the last (the gap filled), at the clip's rate
    gltf = pygltflib.GLTF2().load(str(tmp_path / "clip_track1.glb"))
    times = gltf.accessors[gltf.animations[0].samplers[0].input]
    assert times.count == 8 and times.min == [0.0] and times.max[0] == pytest.approx(0.7)
    bvh = bvhio.readAsBvh(str(tmp_path / "clip_track1.bvh"))
    assert bvh.FrameCount == 8 and bvh.FrameTime == pytest.approx(1 / FPS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"clip_track{j}.{s}" for j in (0, 1) for s in ("bvh", "glb", "npz")]


def test_a_video_needs_boxes_or_a_detector(clip, fixtures, tmp_path):
    with pytest.raises(ValueError, match="a track file .* or a person detector"):
        predict_video_file(clip, fixtures.model_dir, None, tmp_path)
    with pytest.raises(ValueError, match="formats for a video takes npz, glb-anim, bvh, fbx"):
        predict_video_file(clip, fixtures.model_dir, None, tmp_path, detector=ScriptedDetector(),
                           formats=["obj"])


def test_fill_gaps_interpolates_missed_frames():
    frames = np.array([2, 3, 6])
    pose = np.zeros((3, 24, 3))
    pose[:, 5, 2] = [0.0, 0.3, 0.9]  # one joint turning about z
    transl = np.array([[0.0, 0, 2], [0.1, 0, 2], [0.4, 0, 2]])
    filled, t = fill_gaps(frames, pose, transl)
    assert filled.shape == (5, 24, 3) and t.shape == (5, 3)
    np.testing.assert_allclose(filled[:, 5, 2], [0.0, 0.3, 0.5, 0.7, 0.9], atol=1e-12)
    np.testing.assert_allclose(t[:, 0], [0.0, 0.1, 0.2, 0.3, 0.4], atol=1e-12)
    np.testing.assert_allclose(filled[[0, 1, 4]], pose, atol=1e-12)
    with pytest.raises(ValueError, match="strictly increasing"):
        fill_gaps(np.array([3, 2]), pose[:2])


class ScriptedImageDetector:
    """A detector's interface for photos: two people in a bright image, nobody in a dark one."""

    class config:  # as PersonDetector.config
        score_threshold = 0.5

    def __call__(self, images):
        (image,) = images
        boxes = [[4, 4, 30, 50], [44, 6, 30, 48]] if image.mean() > 0.25 else []
        t = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        return [Detections(t, torch.full((len(boxes),), 0.9))]


def test_photos_without_boxes_use_the_detector(fixtures, tmp_path, capsys):
    from PIL import Image

    from kinediff.apps.predict import predict_images

    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((60, 80, 3)) * 255).astype(np.uint8)).save(tmp_path / "two.png")
    Image.fromarray(np.zeros((60, 80, 3), dtype=np.uint8)).save(tmp_path / "empty.png")
    records = predict_images([tmp_path / "two.png", tmp_path / "empty.png"], fixtures.model_dir,
                             out_dir=tmp_path / "out", detector=ScriptedImageDetector(),
                             formats=["obj"], overlay=False)
    assert [(r["person"], list(r["box"])) for r in records] == [(0, [4, 4, 30, 50]), (1, [44, 6, 30, 48])]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["two_0.obj", "two_1.obj"]
    assert "empty.png: the detector found nobody (score >= 0.5); give --bbox or --boxes" in \
        capsys.readouterr().out
