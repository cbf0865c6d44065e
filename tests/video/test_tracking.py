"""The box tracker on scripted sequences: crossings, occlusion gaps, a person leaving and
returning; identity switches counted against the script's own identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou as torchvision_box_iou

from kinediff.video.tracking import box_iou, track_boxes


def _script(people: dict[int, dict[int, tuple[float, float]]], frames: int, size=(60.0, 150.0),
            seed: int = 0):
    """Per frame, the boxes of the people present (shuffled) and who each box is."""
    rng = np.random.default_rng(seed)
    boxes, who = [], []
    for f in range(frames):
        present = [(p, where[f]) for p, where in people.items() if f in where]
        order = rng.permutation(len(present))
        boxes.append(np.array([[*present[i][1], *size] for i in order]).reshape(-1, 4))
        who.append([present[i][0] for i in order])
    return boxes, who


def _switches(tracks, who) -> tuple[int, int]:
    """(identity switches, tracks): a switch is a person's box going to another track than at
    their previous sighting."""
    assigned = {}
    for track in tracks:
        for frame, index in zip(track.frames, track.indices):
            assigned[(int(frame), int(index))] = track.id
    last, switches = {}, 0
    for frame, people in enumerate(who):
        for index, person in enumerate(people):
            track = assigned[(frame, index)]
            switches += person in last and last[person] != track
            last[person] = track
    return switches, len(tracks)


def test_two_people_crossing_keep_their_identities():
    # walking towards each other at 10 px a frame; their 60-px boxes overlap for 12 frames. Matched
    # on each track's last box instead of its expected one, the same frames give 2 switches (they
    # swap as they pass, 5 px apart, and swap back): the velocity is what keeps them
    a = {f: (40.0 + 10 * f, 100.0) for f in range(50)}
    b = {f: (525.0 - 10 * f, 104.0) for f in range(50)}
    boxes, who = _script({0: a, 1: b}, 50)
    assert _switches(track_boxes(boxes), who) == (0, 2)


def test_an_occlusion_gap_keeps_the_identity_and_a_long_absence_does_not():
    a = {f: (100.0 + 3 * f, 80.0) for f in range(30) if not 10 <= f < 14}  # 4 frames unseen
    b = {f: (400.0, 90.0) for f in range(30) if not 5 <= f < 17}  # 12 frames away
    boxes, who = _script({0: a, 1: b}, 30, seed=1)
    switches, count = _switches(track_boxes(boxes, max_gap=5), who)
    assert (switches, count) == (1, 3)  # b comes back as a new identity: the one switch
    assert _switches(track_boxes(boxes, max_gap=12), who) == (0, 2)
    assert _switches(track_boxes(boxes, max_gap=3), who) == (2, 4)  # a's gap is too long now


def test_births_deaths_empty_frames_and_spurious_boxes():
    boxes = [np.zeros((0, 4)), [[10, 10, 20, 40]], [], [[12, 10, 20, 40], [300, 10, 20, 40]],
             [[14, 10, 20, 40]]]
    tracks = track_boxes(boxes, max_gap=1)
    assert [t.frames.tolist() for t in tracks] == [[1, 3, 4], [3]]
    assert [t.indices.tolist() for t in tracks] == [[0, 0, 0], [1]]
    np.testing.assert_array_equal(tracks[1].boxes, [[300, 10, 20, 40]])
    kept = track_boxes(boxes, max_gap=1, min_hits=2)  # the one-frame box is dropped
    assert [(t.id, t.frames.tolist()) for t in kept] == [(0, [1, 3, 4])]
    assert track_boxes([]) == [] and track_boxes([[], []]) == []


def test_box_iou_equals_torchvisions():
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(0, 100, (7, 2)), rng.uniform(1, 60, (7, 2))], axis=1)
    b = np.concatenate([rng.uniform(0, 100, (5, 2)), rng.uniform(1, 60, (5, 2))], axis=1)

    def xyxy(x):
        return torch.as_tensor(np.concatenate([x[:, :2], x[:, :2] + x[:, 2:]], axis=1))

    np.testing.assert_allclose(box_iou(a, b), torchvision_box_iou(xyxy(a), xyxy(b)).numpy(),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(boxes=[[[0, 0, 10]]]), r"frame 0: boxes must have shape \(N, 4\)"),
    (dict(boxes=[[], [[0, 0, 0, 10]]]), "frame 1: boxes must be finite with width and height > 0"),
    (dict(boxes=[[[0, 0, float("nan"), 10]]]), "frame 0: boxes must be finite"),
    (dict(boxes=[], iou_threshold=0.0), "iou_threshold must be a finite number in"),
    (dict(boxes=[], max_gap=-1), "max_gap must be an integer >= 0"),
    (dict(boxes=[], min_hits=0), "min_hits must be an integer >= 1"),
])
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        track_boxes(**kwargs)
