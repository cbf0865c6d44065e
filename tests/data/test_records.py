"""Records and samples (:mod:`kinediff.data.base`): a record is checked when it is made (exact
shapes, finite values, positive focal lengths and boxes, a known gender), and a record that cannot
become a sample, or whose image cannot be read, is skipped, counted and reported instead of ending
the epoch."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kinediff.data.base import PersonDataset, Record

K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])


@given(index=st.integers(0, 71), value=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_any_non_finite_pose_entry_is_refused_naming_record_and_key(index, value):
    pose = np.zeros(72)
    pose[index] = value
    message = rf"f.json\[3\]: key 'pose' holds .* the first at index \({index},\)"
    with pytest.raises(ValueError, match=message):
        Record("x.png", pose, np.zeros(10), np.array([0, 0, 3.0]), K, source="f.json[3]")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("K", np.array([[100.0, 0, 80], [0, 0.0, 60], [0, 0, 1]]), r"key 'K' must have positive focal lengths"),
    ("K", np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 1, 1]]),
     r"key 'K' must have the last row \(0, 0, 1\)"),
    ("K", K.astype(str), "key 'K' is not numeric"),
    ("betas", np.zeros(5), r"key 'betas' has shape \(5,\), expected \(10,\)"),
    ("transl", np.zeros((1, 3)), r"key 'transl' has shape \(1, 3\), expected \(3,\)"),
    ("box", (1.0, 2.0, float("inf"), 4.0), "key 'box' holds 0 NaN and 1 infinite"),
    ("joints2d", np.zeros((18, 2)), r"key 'joints2d' has shape \(18, 2\)"),
    ("joints2d", np.full((18, 3), np.nan), "key 'joints2d' holds 54 NaN"),
    ("mask", np.zeros(4), r"key 'mask' has shape \(4,\), expected \(H, W\)"),
    ("image", 5, "image must be a file path, got 5"),
])
def test_a_record_is_checked_when_it_is_made(field, value, message):
    fields = dict(image="x.png", pose=np.zeros(72), betas=np.zeros(10), transl=np.array([0, 0, 3.0]), K=K,
                  source="src[1]")
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        Record(**fields)


def _records(image, n=2, **bad):
    good = dict(image=image, pose=np.zeros(72), betas=np.zeros(10), transl=np.array([0, 0, 3.0]), K=K)
    return [Record(**{**good, **(bad if i == 0 else {})}, source=f"mine[{i}]") for i in range(n)]


@pytest.mark.parametrize(("bad", "message"), [
    ({"mask": np.ones((10, 10), np.float32), "box": (40.0, 30.0, 40.0, 50.0)},
     r"mine\[0\]: the mask has shape \(10, 10\) but the image is \(120, 160\)"),
    ({"transl": np.zeros(3)}, r"mine\[0\]: the SMPL mesh is not in front of the camera"),
    ({"transl": np.array([0, 0, -3.0])}, r"mine\[0\]: the SMPL mesh is not in front of the camera"),
])
def test_a_record_that_fails_while_its_sample_is_made_is_skipped_and_reported(image_path, body32, bad,
                                                                              message):
    data = PersonDataset(_records(image_path, **bad), body32, 32, (4, 4, 4))
    assert [int(data[i]["index"]) for i in range(2)] == [1, 1]
    report = data.report()
    assert "skipped 1 record(s) that could not become a sample" in report
    assert re.search(message, report), report


def test_any_exception_while_a_sample_is_made_skips_the_record(image_path, body32):
    class Odd(PersonDataset):
        calls = 0

        def _read(self, record):
            if record.source == "mine[0]":
                Odd.calls += 1
                return torch.zeros(3, 5)  # a decoded image of the wrong shape
            return super()._read(record)

    data = Odd(_records(image_path, 3), body32, 32, (4, 4, 4))
    assert [int(data[i]["index"]) for i in (0, 0, 1, 2)] == [1, 1, 1, 2]
    assert Odd.calls == 1  # a known bad record is not read again
    assert "skipped 1 record(s) that could not become a sample, e.g. mine[0]: the decoded image has shape " \
           "(3, 5)" in data.report()

    class Broken(PersonDataset):
        def _read(self, record):
            raise FileNotFoundError(f"no image at {record.image}")

    with pytest.raises(RuntimeError, match=r"Broken: no usable record among 3 records; first problem: no "):
        Broken(_records(image_path, 3), body32, 32, (4, 4, 4))[1]


def test_the_report_counts_records_not_files(image_path, body32, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"garbage")
    records = _records(broken, 3) + _records(image_path, 1)
    for i, r in enumerate(records):
        r.source = f"mine[{i}]"
    records[3].image = image_path
    data = PersonDataset(records, body32, 32, (4, 4, 4))
    assert [int(data[i]["index"]) for i in range(4)] == [3, 3, 3, 3]
    assert "skipped 1 unreadable image(s) (3 record(s)), e.g. " in data.report()
    assert "broken.jpg is not a readable image" in data.report()
