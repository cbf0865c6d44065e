"""SPIN-style npz evaluation files (``SpinNpz``): SPIN's nominal camera, rows without a fit, and
damaged files or values named with the file, record and key."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from kinediff.data import PW3D, SpinNpz, check_sample

KW = dict(image_size=32, mesh_factors=(4, 4, 4))


def test_spin_npz(pw3d, body32, tmp_path):
    root, _ = pw3d
    raw = PW3D(root, "test", body=body32, image_size=64, mesh_factors=(4, 4, 4))
    boxes = [r.box for r in raw.records]
    np.savez(tmp_path / "3dpw_test.npz",
             imgname=np.array([str(r.image.relative_to(root)) for r in raw.records]),
             center=np.array([[b[0] + b[2] / 2, b[1] + b[3] / 2] for b in boxes]),
             scale=np.array([max(b[2], b[3]) * 1.2 / 200 for b in boxes]),
             pose=np.stack([r.pose for r in raw.records]),
             shape=np.stack([r.betas for r in raw.records]), gender=np.array(["f"] * 3))
    data = SpinNpz(tmp_path / "3dpw_test.npz", root, body=body32, image_size=64,
                   mesh_factors=(4, 4, 4))
    for i in range(3):
        sample, ref = data[i], raw[i]
        check_sample(sample)
        assert sample["gender"] == "female"
        torch.testing.assert_close(sample["pose"], ref["pose"])  # the same crop and 3D body;
        assert torch.equal(sample["image"], ref["image"])  # only the camera is nominal
    np.savez(tmp_path / "h36m.npz", imgname=np.array(["a.jpg"]), center=np.zeros((1, 2)),
             scale=np.ones(1), S=np.zeros((1, 24, 4)))
    with pytest.raises(ValueError, match="no SMPL parameters"):
        SpinNpz(tmp_path / "h36m.npz", root, body=body32)
    # rows without a fit (has_smpl 0: zeros, not a body) are left out and reported, never scored
    with np.load(tmp_path / "3dpw_test.npz") as arrays:
        fields = dict(arrays)
    np.savez(tmp_path / "partial.npz", **fields, has_smpl=np.array([1, 0, 1]))
    partial = SpinNpz(tmp_path / "partial.npz", root, body=body32, image_size=64,
                      mesh_factors=(4, 4, 4))
    assert len(partial) == 2 and "left out 1 row(s)" in partial.report()
    np.savez(tmp_path / "none.npz", **fields, has_smpl=np.zeros(3))
    with pytest.raises(ValueError, match="no row has SMPL parameters"):
        SpinNpz(tmp_path / "none.npz", root, body=body32)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize(("make", "message"), [
    (lambda good: b"", "is empty"),
    (lambda good: b"garbage" * 20, r"is not a readable .npz archive \(damaged or truncated"),
    (lambda good: good[: len(good) // 2], r"is not a readable .npz archive"),
    (lambda good: _npy_bytes(np.zeros(3)), r"is a single NumPy array \(.npy\), not an .npz archive"),
])
def test_spin_npz_damaged_files_name_the_file(pw3d_root, tmp_path, body32, make, message):
    good = (pw3d_root / "3dpw_test.npz").read_bytes()
    path = tmp_path / "3dpw_test.npz"
    path.write_bytes(make(good))
    with pytest.raises(ValueError, match=r"3dpw_test.npz " + message):
        SpinNpz(path, pw3d_root, body=body32, **KW)


@pytest.mark.parametrize(("key", "index", "value", "message"), [
    ("pose", (1, 4), np.nan, "record 1: key 'pose' holds 1 NaN"),
    ("shape", (2, 0), np.inf, "record 2: key 'shape' holds 0 NaN and 1 infinite"),
    ("center", (0, 1), np.nan, "record 0: key 'center' holds 1 NaN"),
    ("scale", 1, 0.0, r"record 1: key 'scale' must be positive \(the box side is 200 \* scale\), got 0.0"),
    ("scale", 1, -2.0, "record 1: key 'scale' must be positive"),
    ("scale", 0, np.inf, "record 0: key 'scale' holds 0 NaN and 1 infinite"),
])
def test_spin_npz_bad_values_name_record_and_key(pw3d_root, tmp_path, body32, key, index, value, message):
    with np.load(pw3d_root / "3dpw_test.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays[key] = arrays[key].astype(np.float64)
    arrays[key][index] = value
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(ValueError, match=r"a.npz " + message):
        SpinNpz(tmp_path / "a.npz", pw3d_root, body=body32, **KW)


def test_spin_npz_text_values_are_refused_and_byte_names_decoded(pw3d_root, tmp_path, body32):
    with np.load(pw3d_root / "3dpw_test.npz") as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(tmp_path / "a.npz", **{**arrays, "pose": arrays["pose"].astype(str)})
    with pytest.raises(ValueError, match=r"a.npz: key 'pose' is not numeric"):
        SpinNpz(tmp_path / "a.npz", pw3d_root, body=body32, **KW)
    np.savez(tmp_path / "b.npz", **{**arrays, "imgname": arrays["imgname"].astype("S")})
    data = SpinNpz(tmp_path / "b.npz", pw3d_root, body=body32, **KW)
    assert data.records[0].image == pw3d_root / str(arrays["imgname"][0])
    np.savez(tmp_path / "c.npz", **{**arrays, "gender": np.array(["f", "x", "f"])})
    with pytest.raises(ValueError, match=r"c.npz record 1: unknown gender 'x'"):
        SpinNpz(tmp_path / "c.npz", pw3d_root, body=body32, **KW)
