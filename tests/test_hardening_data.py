"""Bad input to the data loaders (kinediff.data): every bad record, file or value gets a clear error
naming file, record and key, or a documented behaviour (a record skipped, counted and reported);
nothing is silently accepted, and no epoch dies on one bad record.

Fixtures are written by the tests in the real formats (kinediff.data.writers*), then damaged.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import kinediff.core.checks as checks
from kinediff.body.smpl_io import PickleFileError, check_pickle_size, load_restricted_pickle, load_smpl_pickle
from kinediff.data import PW3D, Human36M, SpinNpz, UnreadableImageError, read_image
from kinediff.data.base import PersonDataset, Record, require_int
from kinediff.data.files import check_mat_v5_size, read_npy, read_npz
from kinediff.data.pw3d import coco_records
from kinediff.data.writers import write_3dpw_raw, write_h36m

KW = dict(image_size=32, mesh_factors=(4, 4, 4))
SEQ = "courtyard_fixture_00.pkl"
K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])


# -- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pw3d_root(tmp_path_factory, body32):
    """3DPW raw (one person, three frames), its COCO-style JSON and a SPIN-style npz of it."""
    from kinediff.data import convert_3dpw

    root = tmp_path_factory.mktemp("hard_3dpw")
    write_3dpw_raw(root, body32, frames=3)
    convert_3dpw(root, root, "test", body=body32)
    records = PW3D(root, "test", body=body32, **KW).records
    boxes = [r.box for r in records]
    np.savez(root / "3dpw_test.npz", imgname=np.array([str(r.image.relative_to(root)) for r in records]),
             center=np.array([[b[0] + b[2] / 2, b[1] + b[3] / 2] for b in boxes]),
             scale=np.array([max(b[2], b[3]) * 1.2 / 200 for b in boxes]),
             pose=np.stack([r.pose for r in records]), shape=np.stack([r.betas for r in records]),
             gender=np.array(["f"] * 3))
    return root


@pytest.fixture(scope="module")
def raw_data(pw3d_root):
    return pickle.loads((pw3d_root / "sequenceFiles" / "test" / SEQ).read_bytes(), encoding="latin1")


@pytest.fixture(scope="module")
def coco_data(pw3d_root):
    return json.loads((pw3d_root / "3DPW_test.json").read_text())


@pytest.fixture(scope="module")
def image_path(pw3d_root):
    return pw3d_root / "imageFiles" / "courtyard_fixture_00" / "image_00000.jpg"


def _copy(root: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(root, dst)
    return dst


def _raw_with(pw3d_root, tmp_path, data) -> Path:
    """A copy of the 3DPW fixture whose sequence file holds ``data``."""
    root = _copy(pw3d_root, tmp_path / "raw")
    (root / "sequenceFiles" / "test" / SEQ).write_bytes(pickle.dumps(data, protocol=2))
    return root


def _edited(data, edit):
    data = pickle.loads(pickle.dumps(data))
    edit(data)
    return data


def _coco_file(tmp: Path, data) -> Path:
    path = tmp / "3DPW_test.json"
    path.write_text(json.dumps(data))
    return path


def _coco(tmp: Path, data):
    return coco_records(_coco_file(tmp, data), lambda im, where: tmp / "x.jpg")


# -- records: finiteness, exact shapes, positive focal lengths and boxes, genders, types --------------

@given(index=st.integers(0, 71), value=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_any_non_finite_pose_entry_is_refused_naming_record_and_key(index, value):
    pose = np.zeros(72)
    pose[index] = value
    message = rf"f.json\[3\]: key 'pose' holds .* the first at index \({index},\)"
    with pytest.raises(ValueError, match=message):
        Record("x.png", pose, np.zeros(10), np.array([0, 0, 3.0]), K, source="f.json[3]")


@given(shape=st.lists(st.integers(1, 80), min_size=1, max_size=3).map(tuple).filter(
    lambda s: s not in ((72,), (24, 3))))
def test_any_other_pose_shape_is_refused_in_a_coco_file(tmp_path_factory, coco_data, shape):
    data = json.loads(json.dumps(coco_data))
    data["annotations"][1]["smpl_param"]["pose"] = np.zeros(shape).tolist()
    dims = ", ".join(map(str, shape))
    with pytest.raises(ValueError, match=rf"annotations\[1\]: key 'smpl_param.pose' has shape "
                                         rf"\({dims},?\), expected \(72,\) or \(24, 3\)"):
        _coco(tmp_path_factory.mktemp("shape"), data)


@given(rows=st.integers(2, 4), key=st.sampled_from(["shape", "trans"]))
def test_stacked_betas_or_translations_are_refused_not_truncated(tmp_path_factory, coco_data, rows, key):
    data = json.loads(json.dumps(coco_data))
    value = data["annotations"][0]["smpl_param"][key]
    data["annotations"][0]["smpl_param"][key] = [value] * rows
    with pytest.raises(ValueError, match=rf"annotations\[0\]: key 'smpl_param.{key}' has shape \({rows}, "):
        _coco(tmp_path_factory.mktemp("stack"), data)


@pytest.mark.parametrize(("where", "value", "message"), [
    ("focal", ["500", "500"], r"key 'cam_param.focal' is not numeric: got \['500', '500'\]"),
    ("focal", [0.0, 500.0], r"key 'cam_param.focal' must hold positive focal lengths"),
    ("focal", [-500.0, -500.0], r"key 'cam_param.focal' must hold positive focal lengths"),
    ("focal", [float("nan"), 500.0], r"key 'cam_param.focal' holds 1 NaN"),
    ("focal", [500.0, 500.0, 1.0], r"key 'cam_param.focal' has shape \(3,\), expected \(2,\)"),
    ("focal", 500.0, r"key 'cam_param.focal' has shape \(\), expected \(2,\)"),
    ("princpt", [float("inf"), 60.0], r"key 'cam_param.princpt' holds 0 NaN and 1 infinite"),
    ("princpt", None, r"key 'cam_param.princpt' is not numeric"),
])
def test_bad_camera_parameters_are_refused(tmp_path, coco_data, where, value, message):
    data = json.loads(json.dumps(coco_data))
    data["images"][0]["cam_param"][where] = value
    with pytest.raises(ValueError, match=r"3DPW_test.json annotations\[0\] \(image 0\): " + message):
        _coco(tmp_path, data)


@pytest.mark.parametrize(("box", "message"), [
    ([10, 10, 0, 40], "must have a positive width and height"),
    ([10, 10, 30, -40], "must have a positive width and height"),
    ([10, float("nan"), 30, 40], "holds 1 NaN"),
    (["10", "10", "30", "40"], "is not numeric"),
    ([10, 10, 30], r"has shape \(3,\), expected \(4,\)"),
])
def test_bad_boxes_are_refused(tmp_path, coco_data, box, message):
    data = json.loads(json.dumps(coco_data))
    data["annotations"][2]["bbox"] = box
    with pytest.raises(ValueError, match=r"annotations\[2\]: key 'bbox' " + message):
        _coco(tmp_path, data)


@given(value=st.one_of(st.floats(allow_nan=True).filter(lambda v: not float(v).is_integer()),
                       st.text(max_size=3), st.booleans(), st.none()))
def test_an_image_id_that_is_not_an_integer_is_refused(tmp_path_factory, coco_data, value):
    data = json.loads(json.dumps(coco_data))
    data["annotations"][0]["image_id"] = value
    with pytest.raises(ValueError, match=r"annotations\[0\]: key 'image_id' must be an integer"):
        _coco(tmp_path_factory.mktemp("id"), data)


def test_integral_ids_read_as_integers_and_repeated_ids_are_refused(tmp_path, coco_data):
    assert require_int(4.0, "w", "id") == 4 and require_int(np.int64(4), "w", "id") == 4
    data = json.loads(json.dumps(coco_data))
    data["images"][1]["id"] = 0
    with pytest.raises(ValueError, match=r"images\[1\]: key 'id' 0 repeats an earlier entry's id"):
        _coco(tmp_path, data)
    data = json.loads(json.dumps(coco_data))
    data["images"][0]["file_name"] = 5
    with pytest.raises(ValueError, match=r"key 'file_name' must be a non-empty file or folder name, got 5"):
        PW3D(_copy_json(tmp_path, data), "test", format="coco")


def _copy_json(tmp: Path, data) -> Path:
    (tmp / "3DPW_test.json").write_text(json.dumps(data))
    return tmp


@pytest.mark.parametrize("gender", ["x", 7, "", None])
def test_unknown_genders_are_refused_never_read_as_neutral(tmp_path, coco_data, gender):
    data = json.loads(json.dumps(coco_data))
    data["annotations"][0]["smpl_param"]["gender"] = gender
    with pytest.raises(ValueError, match=r"annotations\[0\]: unknown gender"):
        _coco(tmp_path, data)
    with pytest.raises(ValueError, match=r"r\[0\]: unknown gender"):
        Record("x.png", np.zeros(72), np.zeros(10), np.array([0, 0, 3.0]), K, gender=str(gender),
               source="r[0]")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("joint_cam", [[float("nan")] * 3] * 17, "key 'joint_cam' holds 51 NaN"),
    ("keypoints", [[1.0, float("inf"), 1.0]] * 17, "key 'keypoints' holds 0 NaN and 17 infinite"),
    ("joint_valid", [1.0] * 16, r"key 'joint_valid' has shape \(16,\), expected \(17,\)"),
])
def test_bad_joints_are_refused(tmp_path, coco_data, key, value, message):
    data = json.loads(json.dumps(coco_data))
    data["annotations"][0].update({"joint_cam": [[0.0, 0.0, 3000.0]] * 17, key: value})
    with pytest.raises(ValueError, match=r"annotations\[0\]: " + message):
        _coco(tmp_path, data)


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


# -- 3DPW raw: values, lengths, genders -------------------------------------------------------------

@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["betas"].__setitem__(0, d["betas"][0][:5]), r"person 0: key 'betas' has shape \(5,\)"),
    (lambda d: d.__setitem__("genders", ["q"]), "person 0: unknown gender 'q'"),
    (lambda d: d.__setitem__("img_frame_ids", d["img_frame_ids"] + 0.5),
     "key 'img_frame_ids' must hold non-negative integers"),
    (lambda d: d.__setitem__("cam_poses", d["cam_poses"] * np.array([2.0, 2, 2, 1])[:, None]),
     "person 0 frame 0: key 'cam_poses' is not a rotation matrix"),
    (lambda d: d.__setitem__("cam_intrinsics", np.eye(3) * [0.0, 1.0, 1.0]),
     "key 'cam_intrinsics' must have positive focal lengths"),
    (lambda d: d["poses"].__setitem__(0, np.stack([d["poses"][0]] * 2, 1)),
     r"person 0: keys 'poses' and 'trans' must have shapes"),
    # inconsistent lengths within the sequence
    (lambda d: d["trans"].__setitem__(0, d["trans"][0][:2]),
     "person 0: key 'trans' has 2 frames but 'cam_poses' has 3"),
    (lambda d: d["campose_valid"].__setitem__(0, np.ones(5)), "key 'campose_valid' has 5 frames"),
    (lambda d: d.__setitem__("img_frame_ids", d["img_frame_ids"][:2]), "key 'img_frame_ids' has 2 frames"),
    (lambda d: d.__setitem__("cam_poses", d["cam_poses"][:2]),
     "key 'img_frame_ids' has 3 frames but 'cam_poses' has 2"),
    (lambda d: d["poses2d"].__setitem__(0, d["poses2d"][0][:2]), "key 'poses2d' has 2 frames"),
    (lambda d: d.__setitem__("genders", []), "key 'genders' has 0 entries but 'poses' has 1 persons"),
    (lambda d: d.__setitem__("betas", d["betas"] * 2), "key 'betas' has 2 entries but 'poses' has 1"),
])
def test_3dpw_raw_bad_values_and_lengths_name_file_person_and_key(pw3d_root, raw_data, tmp_path, body32,
                                                                   edit, message):
    root = _raw_with(pw3d_root, tmp_path, _edited(raw_data, edit))
    with pytest.raises(ValueError, match=rf"{SEQ}.*{message}"):
        PW3D(root, "test", body=body32, **KW)


@given(key=st.sampled_from(["poses", "trans", "poses2d"]), frame=st.integers(0, 2),
       value=st.sampled_from([np.nan, np.inf]))
def test_3dpw_raw_any_non_finite_frame_value_is_refused(pw3d_root, raw_data, tmp_path_factory, body32, key,
                                                        frame, value):
    def edit(d):
        array = np.array(d[key][0], dtype=np.float64)
        array[frame].flat[-1] = value
        d[key][0] = array

    root = _raw_with(pw3d_root, tmp_path_factory.mktemp("nan"), _edited(raw_data, edit))
    with pytest.raises(ValueError, match=rf"{SEQ} person 0 frame {frame}: key '{key}' holds"):
        PW3D(root, "test", body=body32, **KW)


@given(cut=st.integers(0, 10_000))
def test_3dpw_any_truncated_pickle_names_the_file(pw3d_root, tmp_path_factory, body32, cut):
    blob = (pw3d_root / "sequenceFiles" / "test" / SEQ).read_bytes()
    root = _copy(pw3d_root, tmp_path_factory.mktemp("cut") / "r")
    (root / "sequenceFiles" / "test" / SEQ).write_bytes(blob[:cut % len(blob)])
    with pytest.raises(PickleFileError, match=rf"3DPW file .*{SEQ} is (empty|not a readable pickle)"):
        PW3D(root, "test", body=body32, **KW)


def test_pickle_errors_are_both_unpickling_and_value_errors(tmp_path):
    path = tmp_path / "seq.pkl"
    for blob in (b"", b"\x80\x02}q\x00(X", b"\x00garbage", pickle.dumps([1, 2])[:-1]):
        path.write_bytes(blob)
        with pytest.raises(pickle.UnpicklingError) as info:
            load_restricted_pickle(path)
        assert isinstance(info.value, ValueError) and str(path) in str(info.value)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"the SMPL pickle .*seq.pkl is empty or ends early"):
        load_smpl_pickle(path)


# -- memory: expanding pickles, absurd array sizes ----------------------------------------------------

@given(depth=st.integers(23, 40))  # 2**23 x 72 x 8 bytes > 4 GiB
def test_a_small_pickle_that_expands_through_shared_references_is_refused(tmp_path_factory, depth):
    x = [0.0] * 72
    for _ in range(depth):
        x = [x, x]
    path = tmp_path_factory.mktemp("bomb") / "seq.pkl"
    path.write_bytes(pickle.dumps({"poses": [x]}, protocol=2))
    assert path.stat().st_size < 5000
    with pytest.raises(PickleFileError, match=r"seq.pkl: \['poses'\]\[0\].* expands to \d+ entries once its "
                                              r"shared references are expanded"):
        load_restricted_pickle(path)


@given(refs=st.integers(1, 200), size=st.integers(1, 50))
def test_the_expansion_limit_counts_every_reference(refs, size):
    data = {"a": [np.zeros(size)] * refs}  # one array referenced refs times
    listed = 1 + refs * size  # the list and, at each reference, the array's entries
    total = 1 + 1 + listed  # the dict, its key, the list
    check_pickle_size(data, "f", limit=8 * total)  # exactly at the limit: accepted
    with pytest.raises(PickleFileError, match=rf"f: the top-level object expands to {total} entries"):
        check_pickle_size(data, "f", limit=8 * (total - 1))
    with pytest.raises(PickleFileError, match=rf"f: \['a'\] expands to {listed} entries"):
        check_pickle_size(data, "f", limit=8 * (listed - 1))


def test_self_references_deep_nesting_and_huge_sparse_matrices_are_refused(tmp_path):
    import scipy.sparse as sp

    loop: list = []
    loop.append(loop)
    with pytest.raises(PickleFileError, match=r"f: \[0\] contains itself"):
        check_pickle_size(loop, "f")
    deep: list = [1.0]
    for _ in range(100):
        deep = [deep]
    with pytest.raises(PickleFileError, match="nests containers more than 64 levels deep"):
        check_pickle_size(deep, "f")
    with pytest.raises(PickleFileError, match=r"f: \['J'\]: a sparse matrix \(once dense\) of shape "
                                              r"\(1000000, 1000000\) would take 7.28 TiB"):
        check_pickle_size({"J": sp.csc_matrix((10**6, 10**6))}, "f")
    path = tmp_path / "big.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc")  # bytes claiming 1 TiB
    with pytest.raises(PickleFileError, match="big.pkl"):
        load_restricted_pickle(path)


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
    from scipy.io import savemat

    from kinediff.data.mpii3d import read_mat
    from kinediff.data.writers_mpii3d import write_mat_v73

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


# -- npz / npy readers ---------------------------------------------------------------------------------

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


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_npz_member_damage_and_pickled_members_are_named(pw3d_root, tmp_path):
    good = (pw3d_root / "3dpw_test.npz").read_bytes()
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
    np.testing.assert_array_equal(read_npz(pw3d_root / "3dpw_test.npz", "x")["scale"],
                                  np.load(pw3d_root / "3dpw_test.npz")["scale"])


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


# -- Human3.6M -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def h36m_root(tmp_path_factory, body32):
    root = tmp_path_factory.mktemp("hard_h36m")
    write_h36m(root, body32)
    return root


@pytest.mark.parametrize(("kind", "edit", "message"), [
    ("camera", lambda d: d["4"].update(f=[float("nan"), 500.0]),
     r"camera.json camera 4: key 'f' holds 1 NaN"),
    ("camera", lambda d: d["4"].update(f=["500", "500"]), r"camera 4: key 'f' is not numeric"),
    ("camera", lambda d: d["4"].update(c=[1.0, 2.0, 3.0]),
     r"camera 4: key 'c' has shape \(3,\), expected \(2,\)"),
    ("camera", lambda d: d["4"].update(R=(np.eye(3) * 3).tolist()), r"camera 4: key 'R' is not a rotation"),
    ("smpl_param", lambda d: d["2"]["1"]["5"].update(trans=[0.0, float("nan"), 0.0]),
     r"smpl_param.json action 2 subaction 1 frame 5: key 'trans' holds 1 NaN"),
    ("smpl_param", lambda d: d["2"]["1"]["5"].update(pose=[[0.0] * 72] * 2),
     r"frame 5: key 'pose' has shape \(2, 72\)"),
    ("joint_3d", lambda d: d["2"]["1"]["5"][3].__setitem__(0, float("inf")),
     r"joint_3d.json action 2 subaction 1 frame 5: key 'joints' holds 0 NaN and 1 infinite"),
    ("data", lambda d: [im.update(cam_idx=4.5) for im in d["images"] if im["cam_idx"] == 4],
     r"key 'cam_idx' must be an integer, got 4.5"),
    ("data", lambda d: d["annotations"][4].update(bbox=[1, 1, float("nan"), 5]),
     r"data.json annotations\[4\]: key 'bbox' holds 1 NaN"),
])
def test_h36m_bad_values_name_file_record_and_key(h36m_root, tmp_path, body32, kind, edit, message):
    root = _copy(h36m_root, tmp_path / "h36m")
    path = root / "annotations" / f"Human36M_subject9_{kind}.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        Human36M(root, "test", subjects=(9,), body=body32, **KW)


# -- samples: failures while a sample is made are skipped, counted per record, reported ----------------

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


# -- images: one exception type naming the file ----------------------------------------------------------

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def test_undecodable_images_raise_one_error_type_naming_the_file(tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"  # 20000 x 20000 declared in 60 bytes
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b""))
    Image.fromarray(np.full((8, 8), 7, np.int32)).save(tmp_path / "i32.tif")
    (tmp_path / "garbage.jpg").write_bytes(b"not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    for name, cause in (("bomb.png", "too large to decode safely"), ("garbage.jpg", "UnidentifiedImageError"),
                        ("empty.png", "UnidentifiedImageError"), ("i32.tif", "32-bit")):
        with pytest.raises(UnreadableImageError, match=rf"{name} .*{cause}"):
            read_image(tmp_path / name)
    assert issubclass(UnreadableImageError, ValueError)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(FileNotFoundError, match="no image at .*dir.png"):
        read_image(tmp_path / "dir.png")


@given(cut=st.integers(0, 4000))
def test_a_truncated_image_is_refused_or_read_whole(tmp_path_factory, cut):
    from PIL import Image

    folder = tmp_path_factory.mktemp("img")
    rgb = (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "full.png")
    blob = (folder / "full.png").read_bytes()
    (folder / "cut.png").write_bytes(blob[:cut % len(blob)])
    try:
        image = read_image(folder / "cut.png")
    except UnreadableImageError as err:
        assert "cut.png" in str(err)
    else:  # only the trailing IEND chunk was cut: every pixel is there
        np.testing.assert_array_equal((image.permute(1, 2, 0).numpy() * 255).round(), rgb)


def test_16_bit_grey_is_read_at_its_full_range(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((4, 6), 30000, np.uint16)).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image.shape == (3, 4, 6)
    torch.testing.assert_close(image, torch.full((3, 4, 6), 30000 / 65535))


# -- kinediff's own cache ----------------------------------------------------------------------------------

def test_a_damaged_synthbody_cache_names_the_file_and_says_deleting_it_is_safe(tmp_path, body32):
    from kinediff.core.io import read_cached
    from kinediff.data import SynthBody

    def make():
        return SynthBody(3, image_size=32, body=body32, mesh_factors=(4, 4, 4), cache=True,
                         cache_root=tmp_path, progress=False)

    reference = make()[1]
    path = next(tmp_path.rglob("*.pt"))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"{path.name}: kinediff's cached SynthBody render is damaged "
                                         r"\(RuntimeError: .*\); deleting the file is safe"):
        make()
    torch.save({"image": torch.zeros(3, dtype=torch.uint8)}, path)
    with pytest.raises(ValueError, match=r"SynthBody render is damaged \(missing \['mask'"):
        make()
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match=r"damaged \(holds a list, not a dict\); deleting the file is safe"):
        make()
    path.unlink()  # as the message says: rebuilt, the same samples
    torch.testing.assert_close(make()[1]["image"], reference["image"])
    with pytest.raises(ValueError, match=r"x.bin: kinediff's cached thing is damaged \(ZeroDivisionError"):
        read_cached(tmp_path / "x.bin", lambda p: 1 / 0, "thing")


# -- COCO, MPI-INF-3DHP, UP-3D -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def coco_root(tmp_path_factory, body32):
    from kinediff.data.writers_coco import write_coco

    root = tmp_path_factory.mktemp("hard_coco")
    write_coco(root, body32)
    return root


@pytest.mark.parametrize(("smpl", "edit", "message"), [
    (None, lambda k, n, e: k["annotations"][0].update(keypoints=[float("nan")] * 51),
     r"person_keypoints_train2017.json annotations\[0\]: key 'keypoints' holds 51 NaN"),
    (None, lambda k, n, e: k["annotations"][0].update(bbox=[1.0, 2.0, float("nan"), 4.0]),
     r"annotations\[0\]: key 'bbox' holds 1 NaN"),
    (None, lambda k, n, e: k["images"][0].update(width="160"), r"image 139: key 'width' is not numeric"),
    (None, lambda k, n, e: k["annotations"][0].update(image_id=139.5), r"key 'image_id' must be an integer"),
    ("neuralannot", lambda k, n, e: n[next(iter(n))]["cam_param"].update(focal=[0.0, 1.0]),
     r"NeuralAnnot.json annotation \d+: key 'cam_param.focal' must hold positive focal lengths"),
    ("neuralannot",
     lambda k, n, e: n[next(iter(n))]["smpl_param"].update(shape=[0.0] * 9 + [float("nan")]),
     r"NeuralAnnot.json annotation \d+: key 'smpl_param.shape' holds 1 NaN"),
    ("eft", lambda k, n, e: e["data"][0].update(parm_pose=np.full((24, 3, 3), np.nan).tolist()),
     r"COCO2014-All-ver01.json data\[0\]: key 'parm_pose' holds 216 NaN"),
    ("eft", lambda k, n, e: e["data"][0].update(bbox_scale=float("nan")),
     r"data\[0\]: key 'bbox_scale' holds 1 NaN"),
])
def test_coco_bad_values_name_file_record_and_key(coco_root, tmp_path, body32, smpl, edit, message):
    from kinediff.data import COCO

    root = _copy(coco_root, tmp_path / "coco")
    files = {"k": root / "annotations" / "person_keypoints_train2017.json",
             "n": root / "annotations" / "MSCOCO_train_SMPL_NeuralAnnot.json",
             "e": root / "eft_fit" / "COCO2014-All-ver01.json"}
    data = {k: json.loads(p.read_text()) for k, p in files.items()}
    edit(data["k"], data["n"], data["e"])
    for k, p in files.items():
        p.write_text(json.dumps(data[k]))
    with pytest.raises(ValueError, match=message):
        COCO(root, "train", smpl=smpl, body=body32, **KW)


@pytest.mark.parametrize(("line", "message"), [
    ("  intrinsic   0 0 80 0 0 100 60 0 0 0 1 0 0 0 0 1", r"camera 0: key 'intrinsic' must have positive"),
    ("  intrinsic   100 0 80 0 0 100 60 0 0 0 1 0 0 0 0", r"camera 0: key 'intrinsic' has shape \(15,\)"),
    ("  extrinsic   2 0 0 0 0 2 0 0 0 0 2 0 0 0 0 1", r"camera 0: key 'extrinsic' is not a rotation matrix"),
    ("  extrinsic   1 0 0 nan 0 1 0 0 0 0 1 0 0 0 0 1", r"camera 0: key 'extrinsic' holds 1 NaN"),
    ("  size        0 128", r"camera 0: key 'size' must be a positive width and height"),
])
def test_mpii3d_calibration_bad_values_name_camera_and_key(tmp_path, line, message):
    from kinediff.data.mpii3d import read_calibration

    key = line.split()[0]
    good = {"intrinsic": "  intrinsic   100 0 80 0 0 100 60 0 0 0 1 0 0 0 0 1",
            "extrinsic": "  extrinsic   1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1", "size": "  size        128 128"}
    good[key] = line
    path = tmp_path / "camera.calibration"
    path.write_text("\n".join(["Skeletool Camera Calibration File V1.0", "name          0", *good.values()]))
    with pytest.raises(ValueError, match=r"camera.calibration " + message):
        read_calibration(path)


def test_mpii3d_hybrik_bad_values_name_file_record_and_key(tmp_path, body32):
    from kinediff.data.mpii3d import MPIINF3DHP
    from kinediff.data.writers_mpii3d import write_mpii3d_hybrik

    write_mpii3d_hybrik(tmp_path, body32)
    path = tmp_path / "annotation_mpi_inf_3dhp_train.json"
    good = json.loads(path.read_text())
    for edit, message in (
            (lambda d: d["annotations"][1]["keypoints_cam"][3].__setitem__(2, float("nan")),
             r"annotations\[1\]: key 'keypoints_cam' holds 1 NaN"),
            (lambda d: d["annotations"][0]["cam_param"].update(intrinsic_param=[[0, 0, 1, 0]] * 3),
             r"annotations\[0\]: key 'cam_param.intrinsic_param' must have positive focal lengths"),
            (lambda d: d["images"][0].update(width=0), r"keys 'width' and 'height' must be positive")):
        data = json.loads(json.dumps(good))
        edit(data)
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=message):
            MPIINF3DHP(tmp_path, "train", format="hybrik", body=body32, **KW)


def test_up3d_bad_fits_and_joint_files_name_the_file(tmp_path, body32):
    from kinediff.data import UP3D
    from kinediff.data.writers_up3d import write_up3d

    write_up3d(tmp_path, body32, samples=2, splits={"train": (0, 1), "val": (), "test": (), "trainval": ()})
    fit = pickle.loads((tmp_path / "00001_body.pkl").read_bytes(), encoding="latin1")
    (tmp_path / "00001_body.pkl").write_bytes(pickle.dumps({**fit, "pose": np.full(72, np.nan)}, protocol=2))
    with pytest.raises(ValueError, match=r"00001_body.pkl \(UP-3D index 1\): key 'pose' holds 72 NaN"):
        UP3D(tmp_path, "train", body=body32, **KW)
    (tmp_path / "00001_body.pkl").write_bytes(pickle.dumps(fit, protocol=2)[:60])
    with pytest.raises(PickleFileError, match=r"00001_body.pkl: .* is not a readable pickle"):
        UP3D(tmp_path, "train", body=body32, **KW)
    (tmp_path / "00001_body.pkl").write_bytes(pickle.dumps(fit, protocol=2))
    nan_joints = _npy_bytes(np.full((3, 14), np.nan))
    for blob, message in ((b"", "is empty"), (b"garbage", "is not a NumPy .npy array"),
                          (nan_joints, r"\(UP-3D index 0\): key 'joints' holds 42 NaN")):
        (tmp_path / "00000_joints.npy").write_bytes(blob)
        with pytest.raises(ValueError, match=r"00000_joints.npy.*" + message):
            UP3D(tmp_path, "train", body=body32, **KW)
