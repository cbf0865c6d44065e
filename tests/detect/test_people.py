"""kinediff.detect.PersonDetector: torchvision's real detection code path with random weights (this
machine has no internet and no COCO weights), weight files in torchvision's layout, its cache, and
every clear error."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from tolerances import atol_for

from kinediff.detect import DETECTORS, PERSON_LABEL, PersonDetector, detector_weights_file

MODEL = "fasterrcnn_mobilenet_v3_large_fpn"  # the fastest Faster R-CNN on a CPU


def _rig(detector, label=PERSON_LABEL):
    """Random weights that find something: no box regression (proposals stay the anchors), and
    the class ``label`` favoured by its bias (a random classifier spreads 1/91 over the classes)."""
    net = detector.net
    with torch.no_grad():
        for layer in (net.roi_heads.box_predictor.bbox_pred, net.rpn.head.bbox_pred):
            layer.weight.zero_()
            layer.bias.zero_()
        net.roi_heads.box_predictor.cls_score.bias[label] = 6.0
    return detector


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return _rig(PersonDetector(MODEL, weights=None, score_threshold=0.5))


def _frames(n=2, h=120, w=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g) for _ in range(n)]


def test_boxes_are_xywh_in_the_image_highest_score_first(detector):
    found = detector(_frames())
    assert len(found) == 2
    for det in found:
        assert det.boxes.dtype == torch.float32 and det.boxes.shape == (det.scores.shape[0], 4)
        assert det.boxes.shape[0] > 0
        x, y, w, h = det.boxes.unbind(1)
        assert (w > 0).all() and (h > 0).all()
        assert (x >= 0).all() and (y >= 0).all()
        assert (x + w <= 160 + 1e-3).all() and (y + h <= 120 + 1e-3).all()
        assert (det.scores[:-1] >= det.scores[1:]).all() and (det.scores >= 0.5).all()


def test_threshold_batching_and_empty_input(detector):
    frames = _frames(3)
    together = detector(frames)
    alone = [detector([f])[0] for f in frames]
    for a, b in zip(together, alone):  # the same sizes: the same padded batch per image
        torch.testing.assert_close(a.boxes, b.boxes, atol=atol_for(b.boxes), rtol=0)
        torch.testing.assert_close(a.scores, b.scores, atol=atol_for(b.scores, ulps=1024), rtol=0)
    stacked = detector(torch.stack(frames))
    torch.testing.assert_close(stacked[0].boxes, together[0].boxes)
    assert detector([]) == []
    assert [len(d.boxes) for d in detector.detect(frames, batch_size=2)] == [len(d.boxes) for d in together]
    strict = _rig(PersonDetector(MODEL, weights=None, score_threshold=0.99))
    strict.load_state_dict(detector.state_dict())
    assert all(d.boxes.shape == (0, 4) for d in strict(frames))


def test_only_people_are_kept():
    torch.manual_seed(0)
    cars = _rig(PersonDetector(MODEL, weights=None, score_threshold=0.5), label=3)
    assert all(d.boxes.shape == (0, 4) for d in cars(_frames()))


def test_a_state_dict_file_in_torchvisions_layout(detector, tmp_path):
    import torchvision

    torch.manual_seed(1)
    reference = torchvision.models.get_model(MODEL, weights=None, weights_backbone=None)
    reference.load_state_dict(detector.net.state_dict())
    path = tmp_path / "detector.pth"
    torch.save(reference.state_dict(), path)
    loaded = PersonDetector(MODEL, weights=str(path))
    wrapped = tmp_path / "checkpoint.pth"
    torch.save({"model": reference.state_dict(), "epoch": 26}, wrapped)
    again = PersonDetector(MODEL, weights=str(wrapped))
    frames = _frames(1)
    expected = detector(frames)[0]
    for other in (loaded, again):
        got = other(frames)[0]
        torch.testing.assert_close(got.boxes, expected.boxes)
        torch.testing.assert_close(got.scores, expected.scores)
    assert loaded.config.weights == str(path)


def test_coco_weights_come_from_torchvisions_cache(detector, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    cached, url = detector_weights_file(MODEL)
    assert cached.parent == tmp_path / "hub" / "checkpoints" and url.startswith("https://")
    with pytest.raises(FileNotFoundError) as err:
        PersonDetector(MODEL)
    for part in (str(cached), url, "--detector-weights FILE", "no network"):
        assert part in str(err.value)
    cached.parent.mkdir(parents=True)
    torch.save(detector.net.state_dict(), cached)
    from_cache = PersonDetector(MODEL)  # no download tried: the cached file is read
    torch.testing.assert_close(from_cache(_frames(1))[0].boxes, detector(_frames(1))[0].boxes)


def test_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no detector weights file"):
        PersonDetector(MODEL, weights=str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="is not a torch weights file"):
        PersonDetector(MODEL, weights=str(junk))
    other = tmp_path / "other.pth"
    torch.save({"backbone.weight": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="do not fit fasterrcnn_mobilenet_v3_large_fpn"):
        PersonDetector(MODEL, weights=str(other))
    text = tmp_path / "list.pth"
    torch.save([1, 2], text)
    with pytest.raises(ValueError, match="must hold a state dict"):
        PersonDetector(MODEL, weights=str(text))


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="yolov8"), "model must be"),
    (dict(score_threshold=1.5), "score_threshold"),
    (dict(weights=""), "weights must be a file path"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PersonDetector(**{"weights": None, **kwargs})


@pytest.mark.parametrize("images, message", [
    ([torch.rand(1, 20, 20)], "image 0 must be a \\(3, H, W\\) tensor"),
    ([torch.zeros(3, 20, 20, dtype=torch.uint8)], "divide uint8 images by 255"),
    ([torch.rand(3, 20, 20), torch.full((3, 20, 20), float("nan"))], "image 1 holds NaN"),
    (torch.rand(3, 20, 20), "list of \\(3, H, W\\) tensors"),
    ("frame.png", "list of \\(3, H, W\\) tensors"),
])
def test_image_errors(detector, images, message):
    with pytest.raises(ValueError, match=message):
        detector(images)


def test_every_listed_model_builds_with_random_weights():
    for name in DETECTORS:
        det = PersonDetector(name, weights=None)
        assert det.config.model == name


def test_weights_of_the_right_names_but_other_shapes(tmp_path):
    """A detector fine-tuned with other classes: a clear error, not torch's size mismatch."""
    import torchvision

    torch.manual_seed(0)
    two_classes = torchvision.models.get_model(MODEL, weights=None, weights_backbone=None,
                                               num_classes=2)
    path = tmp_path / "people_only.pth"
    torch.save(two_classes.state_dict(), path)
    with pytest.raises(ValueError, match=f"{path} do not fit {MODEL}: .*size mismatch.*fine-tuned"):
        PersonDetector(MODEL, weights=str(path))


def test_a_corrupt_cached_file_says_how_to_get_it_again(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached, url = detector_weights_file(MODEL)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    with pytest.raises(ValueError, match=f"not a torch weights file.*delete it to download it "
                                         f"again from {url}"):
        PersonDetector(MODEL)
