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
from kinediff.video import Track
from kinediff.video.predict import fill_gaps

FRAMES, FPS = 8, 10


class ScriptedDetector:
    """A detector's interface with known boxes: person A walks right in every frame; person B
    enters in frame 1, walks left, is missed in frames 3 and 4 (an occlusion) and comes back;
    frame 6 has a spurious box seen once (dropped by min_hits)."""

    class config:  # as PersonDetector.config
        score_threshold = 0.5

    def __init__(self, nobody: bool = False) -> None:
        self.calls = 0
        self.nobody = nobody

    def detect(self, frames, batch_size: int = 4, progress: bool = False):
        self.calls += 1
        found = []
        for f in range(len(frames)):
            boxes = [[2 + 3 * f, 4, 24, 40]]
            if f not in (0, 3, 4):
                boxes.append([60 - 3 * f, 6, 22, 38])
            if f == 6:
                boxes.append([40, 30, 6, 6])
            if self.nobody:
                boxes = [[40, 30, 6, 6]] if f == 6 else []
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
        (0, 0, 7, 8), (1, 1, 7, 5)]  # B keeps its identity across the 2-frame gap
    with np.load(tmp_path / "clip_track1.npz") as data:
        np.testing.assert_array_equal(data["frames"], [1, 2, 5, 6, 7])
        assert data["pose"].shape == (5, 24, 3) and data["vertices"].shape == (5, 6890, 3)
        np.testing.assert_allclose(data["times"], data["frames"] / FPS)
        np.testing.assert_allclose(data["boxes"][2], [60 - 15, 6, 22, 38])
    # the .glb keys every frame from the first to the last (the gap filled) at the clip's rate,
    # from the track's first frame
    gltf = pygltflib.GLTF2().load(str(tmp_path / "clip_track1.glb"))
    times = gltf.accessors[gltf.animations[0].samplers[0].input]
    assert times.count == 7 and times.min[0] == pytest.approx(0.1) and times.max[0] == pytest.approx(0.7)
    bvh = bvhio.readAsBvh(str(tmp_path / "clip_track1.bvh"))
    assert bvh.FrameCount == 7 and bvh.FrameTime == pytest.approx(1 / FPS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"clip_track{j}.{s}" for j in (0, 1) for s in ("bvh", "glb", "npz")]


def test_predictions_go_to_their_own_tracks(clip, body32):
    """Two tracks share frames: each track's fit in a frame is the fit of its own box predicted
    alone (a mix-up of the shared frames' predictions would give the other person's)."""
    from kinediff import PostureHMR, PostureHMRConfig
    from kinediff.video import track_boxes
    from kinediff.video.predict import predict_tracks, read_video

    torch.manual_seed(0)
    model = PostureHMR(PostureHMRConfig.tiny(), body32).eval()
    with torch.no_grad():  # an untrained decoder's output hardly depends on its input: liven it
        for p in model.decoder.head[-1].parameters():
            p.normal_(0, 0.05)
    frames, _ = read_video(clip)
    found = ScriptedDetector().detect(frames)
    tracks = track_boxes([d.boxes.numpy() for d in found], min_hits=3)
    result = predict_tracks(model, frames, tracks, fps=FPS, smooth=False)
    assert [t.id for t in result] == [0, 1]
    for track in result:
        for k in (0, 2, len(track.frames) - 1):
            f = int(track.frames[k])
            (alone,) = model.predict_frames([frames[f]], [[track.boxes[k].tolist()]], K=track.K,
                                            fit_smpl=True)
            # the same fit up to float32 rounding through a differently batched network and the
            # fit's iterations: 1 mm on the mesh (a pose angle at an ill-conditioned joint may
            # differ by 1e-4 rad)
            torch.testing.assert_close(track.vertices[k], alone.smpl["vertices"].to(track.vertices),
                                       atol=1e-3, rtol=0)
    shared = 5  # both people are seen in frame 5: their meshes differ by far more than 1 mm
    a = result[0].vertices[list(result[0].frames).index(shared)]
    b = result[1].vertices[list(result[1].frames).index(shared)]
    assert float((a - b).abs().max()) > 2e-2


def test_a_video_needs_boxes_or_a_detector(clip, fixtures, tmp_path):
    with pytest.raises(ValueError, match="a track file .* or a person detector"):
        predict_video_file(clip, fixtures.model_dir, None, tmp_path)
    (tmp_path / "track.json").write_text('{"boxes": [[[1, 1, 20, 30]]]}')
    with pytest.raises(ValueError, match="not several"):
        predict_video_file(clip, fixtures.model_dir, tmp_path / "track.json", tmp_path,
                           detector=ScriptedDetector())
    with pytest.raises(ValueError, match="nobody to predict: the detector found 1 person boxes "
                                         ".* lower --detector-threshold or give --boxes"):
        predict_video_file(clip, fixtures.model_dir, None, tmp_path / "none",
                           detector=ScriptedDetector(nobody=True))
    assert not (tmp_path / "none").exists()
    with pytest.raises(ValueError, match="formats for a video takes npz, glb-anim, bvh, fbx"):
        predict_video_file(clip, fixtures.model_dir, None, tmp_path, detector=ScriptedDetector(),
                           formats=["obj"])


@pytest.mark.parametrize("text, message", [
    ('{"boxes": [null]}', "key 'boxes' frame 0 must be a list"),
    ('{"boxes": [[]], "fps": "abc"}', "key 'fps' must be a number > 0"),
    ('{"boxes": [[]], "fps": 0}', "key 'fps' must be a number > 0"),
    ('{"boxes": [[]], "fps": -5}', "key 'fps' must be a number > 0"),
])
def test_track_file_errors(tmp_path, text, message):
    from kinediff.video.predict import read_track_file

    (tmp_path / "t.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_track_file(tmp_path / "t.json")


@pytest.mark.parametrize("track, kwargs, message", [
    (Track(3, np.array([], dtype=np.int64), np.zeros((0, 4)), np.zeros(0, dtype=np.int64)), {},
     "track 3: frames must be a non-empty"),
    (Track(3, np.array([0.0, 1.0]), np.ones((2, 4)), np.zeros(2, dtype=np.int64)), {},
     "track 3: frames must be a non-empty \\(n,\\) integer array"),
    (Track(3, np.array([0, 1]), np.ones((3, 4)), np.zeros(2, dtype=np.int64)), {},
     "track 3: boxes must have shape \\(2, 4\\)"),
    (Track(3, np.array([1, 1]), np.ones((2, 4)), np.zeros(2, dtype=np.int64)), {},
     "track 3: frames must be strictly increasing"),
    (Track(3, np.array([0, 9]), np.ones((2, 4)), np.zeros(2, dtype=np.int64)), {},
     "track 3: frames must be strictly increasing, in \\[0, 2\\)"),
    (Track(3, np.array([0, 1]), np.ones((2, 4)), np.zeros(2, dtype=np.int64)), {"fps": 0},
     "fps must be"),
])
def test_predict_tracks_errors(fixtures, track, kwargs, message):
    from kinediff.apps.predict import load_model
    from kinediff.video.predict import predict_tracks

    model = load_model(fixtures.model_dir)
    with pytest.raises(ValueError, match=message):
        predict_tracks(model, [torch.rand(3, 40, 40)] * 2, [track], **{"fps": 10, **kwargs})


def test_fill_gaps_slerps_between_different_axes():
    """Missed frames between two rotations about different axes: R0 exp(s log(R0^T R1)), the
    geodesic (which interpolating axis-angle vectors is not)."""
    from scipy.spatial.transform import Rotation

    a, b = np.array([1.2, 0.0, 0.0]), np.array([0.0, 0.0, 1.5])
    pose = np.zeros((2, 24, 3))
    pose[0, 7], pose[1, 7] = a, b
    filled, _ = fill_gaps(np.array([0, 4]), pose)
    r0, r1 = Rotation.from_rotvec(a), Rotation.from_rotvec(b)
    step = (r0.inv() * r1).as_rotvec()
    for k in range(5):
        expected = (r0 * Rotation.from_rotvec(k / 4 * step)).as_matrix()
        np.testing.assert_allclose(Rotation.from_rotvec(filled[k, 7]).as_matrix(), expected,
                                   rtol=0, atol=1e-12)
    lerp = Rotation.from_rotvec((a + b) / 2).as_matrix()
    assert np.abs(Rotation.from_rotvec(filled[2, 7]).as_matrix() - lerp).max() > 1e-3


@pytest.mark.parametrize("frames, pose, transl, message", [
    (np.array([0, 2]), np.zeros((2, 72)), None, "pose must have shape \\(2, J, 3\\)"),
    (np.array([0, 2]), np.zeros((2, 24, 3)), np.zeros((3, 3)), "transl must have shape \\(2, 3\\)"),
    (np.array([0, 2]), np.zeros((2, 24, 3)), np.zeros(2), "transl must have shape"),
    (np.array([0.0, 2.0]), np.zeros((2, 24, 3)), None, "integer array"),
    (np.int64(3), np.zeros((1, 24, 3)), None, "non-empty \\(n,\\) integer array"),
    (np.array([0, 2]), np.full((2, 24, 3), np.nan), None, "pose must be finite"),
])
def test_fill_gaps_errors(frames, pose, transl, message):
    with pytest.raises(ValueError, match=message):
        fill_gaps(frames, pose, transl)


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
