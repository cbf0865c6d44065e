"""A SPIN-style npz whose optional arrays (gender, has_smpl) do not match its rows: a clear error
naming the file and the key, not an IndexError from a row past their end."""

from __future__ import annotations

import numpy as np
import pytest

from kinediff.data.spin import spin_records


def _npz(path, n=3, **extra):
    arrays = {"imgname": np.array([f"img_{i}.jpg" for i in range(n)]),
              "center": np.full((n, 2), 100.0), "scale": np.ones(n), "pose": np.zeros((n, 72)),
              "shape": np.zeros((n, 10)), **extra}
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("key, value, message", [
    ("gender", np.array(["m", "f"]), "key 'gender' has shape \\(2,\\), expected \\(3,\\)"),
    ("has_smpl", np.ones(5), "key 'has_smpl' has shape \\(5,\\), expected \\(3,\\)"),
    ("has_smpl", np.array(["yes", "no", "yes"]), "has_smpl"),
])
def test_optional_arrays_must_match_the_rows(tmp_path, body32, key, value, message):
    path = _npz(tmp_path / "spin.npz", **{key: value})
    with pytest.raises(ValueError, match=f"{path}: .*{message}"):
        spin_records(path, tmp_path, body=body32)


def test_matching_optional_arrays_are_read(tmp_path, body32):
    path = _npz(tmp_path / "spin.npz", has_smpl=np.array([1.0, 0.0, 1.0]))
    records = spin_records(path, tmp_path, body=body32)
    assert [r.image.name for r in records] == ["img_0.jpg", "img_2.jpg"]
