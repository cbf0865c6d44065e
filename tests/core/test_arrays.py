"""NumPy and MATLAB files (:mod:`kinediff.core.arrays`): every failure a ``ValueError`` naming the
file and the array, and every declared array size bounded before anything is allocated."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.io import savemat

from kinediff.core import checks
from kinediff.core.arrays import check_mat_v5_size, read_mat, read_npy, read_npz
from kinediff.testing.mpii3d import write_mat_v73


def _npz_with_member(path: Path, name: str, header: dict, payload: bytes = b"") -> Path:
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, header)
    with zipfile.ZipFile(path, "a" if path.exists() else "w") as z:
        z.writestr(name + ".npy", hdr.getvalue() + payload)
    return path


@given(shape=st.lists(st.integers(1, 10**6), min_size=1, max_size=3).filter(
    lambda s: int(np.prod(s, dtype=np.int64)) * 8 > 4 << 30))
def test_an_npz_member_claiming_more_than_the_limit_is_refused_before_allocation(tmp_path_factory, shape):
    path = _npz_with_member(tmp_path_factory.mktemp("npz") / "a.npz", "big",
                            {"descr": "<f8", "fortran_order": False, "shape": tuple(shape)}, b"\0" * 64)
    with pytest.raises(ValueError, match=r"a.npz key 'big': an array of shape .* would take .*, more than "
                                         r"kinediff reads from a file \(4 GiB\)"):
        read_npz(path, "x")


def test_a_zip_bomb_npz_member_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "MAX_FILE_ARRAY_BYTES", 1 << 20)
    n = 4 << 20  # 4 Mi float64: 32 MiB of zeros, deflated to ~32 KiB
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.npy", hdr.getvalue() + bytes(8 * n))
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"bomb.npz key 'bomb': an array of shape \(4194304,\) would take "
                                         r"32 MiB, more than kinediff reads from a file \(1 MiB\)"):
        read_npz(path, "x")


def test_mat_files_are_bounded_before_allocation(tmp_path, monkeypatch):
    path = tmp_path / "x_info.mat"
    savemat(path, {"pose": np.zeros((72, 50_000))}, do_compression=True)  # 28 MiB of zeros, ~30 KiB
    check_mat_v5_size(path)  # within the default limit
    monkeypatch.setattr(checks, "MAX_FILE_ARRAY_BYTES", 1 << 20)
    with pytest.raises(ValueError, match=r"x_info.mat: a compressed MATLAB variable inflates to more than "
                                         r"1 MiB"):
        read_mat(path, ["pose"])
    h5py = pytest.importorskip("h5py")
    v73 = tmp_path / "annot_data.mat"
    write_mat_v73(v73, {"annot2": np.zeros((2, 17, 1, 3))})
    with h5py.File(v73, "a") as f:
        del f["annot2"]
        f.create_dataset("annot2", shape=(10**5, 10**6), dtype="f8", chunks=(100, 100))
    with pytest.raises(ValueError, match=r"annot_data.mat: variable 'annot2' of shape \(100000, 1000000\) "
                                         r"would take 745 GiB"):
        read_mat(v73, ["annot2"])


def test_check_file_array_size_messages():
    checks.check_file_array_size((3, 4), 8, "f")
    with pytest.raises(ValueError, match=r"f: an array has an invalid shape \(-1,\)"):
        checks.check_file_array_size((-1,), 8, "f")
    with pytest.raises(ValueError, match=r"f: x of shape \(2, 3\) would take 48 bytes, more than kinediff "
                                         r"reads from a file \(40 bytes\)"):
        checks.check_file_array_size((2, 3), 8, "f", "x", limit=40)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_npz_member_damage_and_pickled_members_are_named(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"pose": rng.normal(size=(3, 72)), "scale": rng.uniform(0.5, 1, 3)}
    np.savez(tmp_path / "good.npz", **arrays)
    good = (tmp_path / "good.npz").read_bytes()
    bad = bytearray(good)
    bad[good.index(b"pose.npy") + 200] ^= 0xFF
    (tmp_path / "crc.npz").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match=r"crc.npz key 'pose': damaged data \(BadZipFile: Bad CRC-32"):
        read_npz(tmp_path / "crc.npz", "x")
    np.savez(tmp_path / "obj.npz", imgname=np.array(["a", None], dtype=object))
    with pytest.raises(ValueError, match=r"obj.npz key 'imgname' holds Python objects \(a pickled array\)"):
        read_npz(tmp_path / "obj.npz", "x")
    header = {"descr": "<f8", "fortran_order": False, "shape": (100,)}
    _npz_with_member(tmp_path / "short.npz", "pose", header, b"\0" * 16)
    with pytest.raises(ValueError, match=r"short.npz key 'pose': damaged data"):
        read_npz(tmp_path / "short.npz", "x")
    for name, blob, message in (("e.npy", b"", "is empty"),
                                ("g.npy", b"garbage!", "is not a NumPy .npy array"),
                                ("o.npy", _npy_bytes(np.array([None])), "holds Python objects"),
                                ("t.npy", _npy_bytes(np.zeros(50))[:200], "damaged data")):
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(ValueError, match=rf"{name}.*{message}"):
            read_npy(tmp_path / name, "x")
    read = read_npz(tmp_path / "good.npz", "x")
    assert set(read) == {"pose", "scale"}
    np.testing.assert_array_equal(read["scale"], arrays["scale"])
    assert set(read_npz(tmp_path / "good.npz", "x", ("scale", "other"))) == {"scale"}
    np.save(tmp_path / "good.npy", arrays["pose"])
    np.testing.assert_array_equal(read_npy(tmp_path / "good.npy", "x"), arrays["pose"])
    with pytest.raises(FileNotFoundError, match=r"no file .*none.npz; expected a SPIN-style file"):
        read_npz(tmp_path / "none.npz", "a SPIN-style file")
