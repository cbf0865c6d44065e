"""Robustness of the data sets (marker ``robust``, harness :mod:`robust`): one value, file or image
spoilt in a small data set written in the released layout, and what each loader does with it:
``clear`` is an error naming the file and the key, or the bad record skipped, reported by name and
the rest loading.

Faults that the data tests already feed to the same loader with an exact message (test_pw3d.py,
test_coco_style.py, test_h36m.py, test_surreal.py, test_spin.py, test_coco.py, test_up3d.py,
test_records.py, ../core/test_images.py, test_synth.py) are not repeated here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from robust import (
    BAD_SEQ,
    IMAGE_FAULTS,
    INF,
    NAN,
    SILENT,
    SMALL,
    Fixtures,
    Names,
    Outcome,
    dataset_verdict,
    enospc,
    expect,
    guarded,
    load_pkl,
    partial_write,
    refusal,
    save_pkl,
    truncate,
    with_value,
    write_fault_verdict,
    write_image_fault,
    write_npz_header_bomb,
)

from kinediff.body import BodyModel
from kinediff.data import COCO, PW3D, UP3D, Human36M, SpinNpz, Surreal, SynthBody
from kinediff.data.base import PersonDataset

pytestmark = pytest.mark.robust


def _set(path: tuple, value: Any) -> Callable[[Any], None]:
    """A mutation: ``data[path[0]][path[1]]... = value`` (a callable value gets the old one)."""
    def mutate(data: Any) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        old = target[path[-1]]
        target[path[-1]] = value(old) if callable(value) else value
    return mutate


def _delete(path: tuple) -> Callable[[Any], None]:
    def mutate(data: Any) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


# -- records made directly (Record + PersonDataset) -------------------------------------------------

def _k_fault(fault: str) -> Callable[[Any], np.ndarray]:
    def make(good) -> np.ndarray:
        k = np.array(good.K, dtype=np.float64)
        if fault == "nan":
            k[0, 2] = NAN
        elif fault == "inf":
            k[0, 0] = INF
        else:  # negative focal lengths
            k[0, 0] = k[1, 1] = -abs(k[0, 0])
        return k
    return make


def _joints(columns: int, fill: float, fault: float) -> Callable[[Any], np.ndarray]:
    """(17, columns) joints, visible / valid, one coordinate ``fault``."""
    def make(good) -> np.ndarray:
        if columns == 4:  # camera-frame metres
            v = np.concatenate([np.full((17, 2), 0.1), np.full((17, 1), 4.0), np.ones((17, 1))], 1)
        else:  # full-image pixels
            v = np.concatenate([np.full((17, 2), fill), np.ones((17, 1))], 1)
        v[3, 0] = fault
        return v
    return make


#: field:fault -> (the value, or a function of the good record giving it; what the message names)
RECORD_FAULTS: dict[str, tuple[Any, tuple]] = {
    "pose:2x72": (np.zeros((2, 72)), ("pose",)),
    "pose:70_values": (np.zeros(70), ("pose",)),
    "pose:str": ("pose", ("pose",)),
    "betas:nan": (with_value(np.zeros(10), (3,), NAN), ("betas", "shape")),
    "betas:inf": (with_value(np.zeros(10), (3,), INF), ("betas", "shape")),
    "betas:str": ("betas", ("betas", "shape")),
    "transl:nan": (np.array([0.0, NAN, 4.0]), ("transl", "trans")),
    "transl:inf": (np.array([0.0, 0.0, INF]), ("transl", "trans")),
    "K:nan": (_k_fault("nan"), ("K", "intrinsics", "focal")),
    "K:inf": (_k_fault("inf"), ("K", "intrinsics", "focal")),
    "K:negative_focal": (_k_fault("negative"), ("K", "intrinsics", "focal")),
    "K:2x3": (np.eye(3)[:2], ("K", "intrinsics", "focal")),
    "box:nan": ((10.0, 10.0, NAN, 40.0), ("box", "bbox")),
    "box:zero_width": ((10.0, 10.0, 0.0, 40.0), ("box", "bbox")),
    "box:negative_height": ((10.0, 10.0, 30.0, -40.0), ("box", "bbox")),
    "box:3_values": ((10.0, 10.0, 30.0), ("box", "bbox")),
    "box:str": ("box", ("box", "bbox")),
    "joints3d:nan": (_joints(4, 0.1, NAN), ("joints3d",)),
    "joints3d:inf": (_joints(4, 0.1, INF), ("joints3d",)),
    "keypoints2d:nan": (_joints(3, 50.0, NAN), ("keypoints2d", "keypoints")),
    "keypoints2d:inf": (_joints(3, 50.0, INF), ("keypoints2d", "keypoints")),
    "gender:none": (None, ("gender",)),
    "gender:int": (3, ("gender",)),
}


@pytest.mark.parametrize("case", RECORD_FAULTS)
def test_a_bad_record_value_is_refused_naming_the_field(fixtures: Fixtures, case):
    value, names = RECORD_FAULTS[case]
    good = fixtures.pw3d_records[:3]
    value = value(good[1]) if callable(value) else value
    bad_image = fixtures.fresh("record") / "bad_record.jpg"
    shutil.copy(good[1].image, bad_image)

    def build():
        bad = replace(good[1], image=bad_image, source="probe record 1", **{case.split(":")[0]: value})
        return PersonDataset([good[0], bad, good[2]], fixtures.body, **SMALL)

    expect(dataset_verdict(build, [names], lambda r: r.image == bad_image))


# -- 3DPW: the raw sequence files -------------------------------------------------------------------

def pw3d_raw_outcome(fixtures: Fixtures, names: Names, per_frame: bool,
                     mutate: Callable[[dict], None] | None = None,
                     raw: Callable[[bytes], bytes] | None = None) -> Outcome:
    """PW3D on a copy of the 3DPW fixture whose b_bad_00 sequence file is spoilt by ``mutate`` (its
    dict) or ``raw`` (its bytes); the bad records: its frame 2 (``per_frame``) or all of its
    frames. The message must name the file and ``names``."""
    root = fixtures.copy_of(fixtures.pw3d, "pw3d")
    path = root / "sequenceFiles" / "test" / f"{BAD_SEQ}.pkl"
    if raw is not None:
        path.write_bytes(raw(path.read_bytes()))
    else:
        data = load_pkl(path)
        mutate(data)
        save_pkl(path, data)
    bad_image = root / "imageFiles" / BAD_SEQ / "image_00002.jpg"

    def is_bad(r) -> bool:
        return r.image == bad_image if per_frame else r.image.parent.name == BAD_SEQ

    return dataset_verdict(lambda: PW3D(root, "test", body=fixtures.body, **SMALL), [Path(path.name), *names],
                           is_bad)


def _scale_rotation(frame: int, factor: float) -> Callable[[Any], np.ndarray]:
    def scaled(cams: Any) -> np.ndarray:
        cams = np.array(cams, dtype=np.float64)
        cams[frame, :3, :3] *= factor
        return cams
    return scaled


#: name -> (mutation of the sequence file's dict, what the message names, one frame bad)
PW3D_RAW_FAULTS: dict[str, tuple[Callable, Names, bool]] = {
    "poses:str": (_set(("poses", 0), "poses"), [("pose",)], False),
    "poses:fewer_frames": (_set(("poses", 0), lambda a: np.asarray(a)[:2]), [("pose",)], False),
    "betas:nan": (_set(("betas", 0), lambda a: with_value(a, (3,), NAN)), [("betas",)], False),
    "betas:inf": (_set(("betas", 0), lambda a: with_value(a, (3,), INF)), [("betas",)], False),
    "betas:2x300": (_set(("betas", 0), lambda a: np.stack([a, a])), [("betas",)], False),
    "betas:str": (_set(("betas", 0), "betas"), [("betas",)], False),
    "trans:2_values": (_set(("trans", 0), lambda a: np.asarray(a)[:, :2]), [("trans",)], False),
    "cam_intrinsics:nan": (_set(("cam_intrinsics",), lambda a: with_value(a, (0, 2), NAN)),
                           [("cam_intrinsics",)], False),
    "cam_intrinsics:inf": (_set(("cam_intrinsics",), lambda a: with_value(a, (0, 0), INF)),
                           [("cam_intrinsics",)], False),
    "cam_intrinsics:negative_focal": (_set(("cam_intrinsics",), lambda a: with_value(a, (1, 1), -150.0)),
                                      [("cam_intrinsics", "focal")], False),
    "cam_intrinsics:2x3": (_set(("cam_intrinsics",), lambda a: np.asarray(a)[:2]), [("cam_intrinsics",)],
                           False),
    "cam_intrinsics:str": (_set(("cam_intrinsics",), "K"), [("cam_intrinsics",)], False),
    "cam_poses:nan": (_set(("cam_poses",), lambda a: with_value(a, (1, 0, 3), NAN)), [("cam_poses",)], True),
    "cam_poses:inf": (_set(("cam_poses",), lambda a: with_value(a, (1, 2, 3), INF)), [("cam_poses",)], True),
    "cam_poses:zero_rotation": (_set(("cam_poses",), _scale_rotation(1, 0.0)), [("cam_poses", "rotation")],
                                True),
    "genders:none": (_set(("genders", 0), None), [("gender",)], False),
    "genders:int": (_set(("genders", 0), 3), [("gender",)], False),
    "img_frame_ids:nan": (_set(("img_frame_ids",), np.array([0.0, NAN, 4.0])), [("img_frame_ids",)], True),
    "sequence:missing": (_delete(("sequence",)), [("sequence",)], False),
}


@pytest.mark.parametrize("case", PW3D_RAW_FAULTS)
def test_a_spoilt_3dpw_sequence_value_is_named(fixtures, case):
    mutate, names, per_frame = PW3D_RAW_FAULTS[case]
    expect(pw3d_raw_outcome(fixtures, names, per_frame, mutate=mutate))


PW3D_RAW_FILES: dict[str, Callable[[bytes], bytes]] = {
    "text": lambda b: b"sequence,poses\n1,2\n",
    "list_not_dict": lambda b: save_bytes([1, 2, 3]),
    "pickle_of_string": lambda b: save_bytes("not a sequence"),
}


def save_bytes(obj: Any) -> bytes:
    import pickle

    return pickle.dumps(obj, protocol=2)


@pytest.mark.parametrize("case", PW3D_RAW_FILES)
def test_a_3dpw_sequence_file_that_is_no_sequence_is_named(fixtures, case):
    expect(pw3d_raw_outcome(fixtures, [], False, raw=PW3D_RAW_FILES[case]))


# -- 3DPW: the COCO-style file (3DPW_<split>.json) ---------------------------------------------------

def json_outcome(fixtures: Fixtures, source: Path, relpath: str, build: Callable[[Path], Any], names: Names,
                 is_bad: Callable[[Path], Callable[[Any], bool]], mutate: Callable[[Any], None] | None = None,
                 raw: Callable[[bytes], bytes] | None = None, report_names: Names | None = None) -> Outcome:
    """``build(root)`` on a copy of the fixture ``source`` whose JSON file ``relpath`` is spoilt by
    ``mutate`` (parsed) or ``raw`` (its bytes); the message must name the file and ``names``."""
    root = fixtures.copy_of(source, Path(relpath).stem)
    path = root / relpath
    if raw is not None:
        path.write_bytes(raw(path.read_bytes()))
    else:
        data = json.loads(path.read_text())
        mutate(data)
        path.write_text(json.dumps(data))
    return dataset_verdict(lambda: build(root), [Path(path.name), *names], is_bad(root), report_names)


def _pw3d_coco_entry(data: dict) -> tuple[dict, dict]:
    """The annotation and image of b_bad_00's frame 2 in 3DPW_test.json."""
    for im in data["images"]:
        if im.get("sequence") == BAD_SEQ and im.get("file_name") == "image_00002.jpg":
            return next(a for a in data["annotations"] if a["image_id"] == im["id"]), im
    raise AssertionError("3DPW_test.json has no b_bad_00 frame 2")


def _ann(path: tuple, value: Any, on_image: bool = False) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        ann, im = _pw3d_coco_entry(data)
        _set(path, value)(im if on_image else ann)
    return mutate


def _ann_joints(key: str, fill: list[float], index: tuple, value: float) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        ann, _ = _pw3d_coco_entry(data)
        joints = np.tile([fill], (17, 1))
        joints[index] = value
        ann[key] = joints.tolist()
    return mutate


POSE, SHAPE, TRANS = ("smpl_param", "pose"), ("smpl_param", "shape"), ("smpl_param", "trans")
FOCAL, PRINCPT = ("cam_param", "focal"), ("cam_param", "princpt")
#: name -> (mutation of 3DPW_test.json, what the message names)
PW3D_COCO_FAULTS: dict[str, tuple[Callable, Names]] = {
    "pose:nan": (_ann(POSE, lambda a: with_value(a, (5,), NAN).tolist()), [("pose",)]),
    "pose:inf": (_ann(POSE, lambda a: with_value(a, (5,), INF).tolist()), [("pose",)]),
    "pose:str": (_ann(POSE, "pose"), [("pose",)]),
    "shape:nan": (_ann(SHAPE, lambda a: with_value(a, (3,), NAN).tolist()), [("shape", "betas")]),
    "shape:inf": (_ann(SHAPE, lambda a: with_value(a, (3,), INF).tolist()), [("shape", "betas")]),
    "shape:5_values": (_ann(SHAPE, lambda a: a[:5]), [("shape", "betas")]),
    "shape:str": (_ann(SHAPE, "shape"), [("shape", "betas")]),
    "trans:nan": (_ann(TRANS, [0.0, NAN, 4.0]), [("trans",)]),
    "trans:inf": (_ann(TRANS, [0.0, 0.0, INF]), [("trans",)]),
    "trans:2_values": (_ann(TRANS, [0.0, 4.0]), [("trans",)]),
    "focal:inf": (_ann(FOCAL, [INF, 150.0], True), [("focal",)]),
    "princpt:nan": (_ann(PRINCPT, [NAN, 60.0], True), [("princpt",)]),
    "princpt:scalar": (_ann(PRINCPT, 80.0, True), [("princpt",)]),
    "bbox:inf": (_ann(("bbox",), [10.0, 10.0, INF, 60.0]), [("bbox", "box")]),
    "joint_cam:inf": (_ann_joints("joint_cam", [0.0, 0.0, 4000.0], (2, 1), INF), [("joint_cam",)]),
    "keypoints:nan": (_ann_joints("keypoints", [60.0, 50.0, 1.0], (4, 0), NAN), [("keypoints",)]),
}


def _pw3d_coco(fixtures: Fixtures) -> Callable[[Path], Any]:
    return lambda root: PW3D(root, "test", format="coco", body=fixtures.body, **SMALL)


def _bad_frame_2(root: Path) -> Callable[[Any], bool]:
    bad = root / "imageFiles" / BAD_SEQ / "image_00002.jpg"
    return lambda r: r.image == bad


@pytest.mark.parametrize("case", PW3D_COCO_FAULTS)
def test_a_spoilt_3dpw_coco_value_is_named(fixtures, case):
    mutate, names = PW3D_COCO_FAULTS[case]
    expect(json_outcome(fixtures, fixtures.pw3d, "3DPW_test.json", _pw3d_coco(fixtures), names, _bad_frame_2,
                        mutate=mutate))


JSON_FILE_FAULTS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda b: b"",
    "not_utf8": lambda b: b"\xff\xfe\x00garbage\x81",
    "list_not_object": lambda b: b"[1, 2, 3]",
    "images_missing": lambda b: json.dumps({"annotations": json.loads(b)["annotations"]}).encode(),
}


@pytest.mark.parametrize("case", JSON_FILE_FAULTS)
def test_a_3dpw_coco_file_that_is_no_annotation_file_is_named(fixtures, case):
    expect(json_outcome(fixtures, fixtures.pw3d, "3DPW_test.json", _pw3d_coco(fixtures), [],
                        lambda root: lambda r: True, raw=JSON_FILE_FAULTS[case]))


# -- Human3.6M (Pose2Mesh per-subject JSON) --------------------------------------------------------

def _h36m(fixtures: Fixtures) -> Callable[[Path], Any]:
    # protocol 1: every camera (1 and 4), so a spoilt camera leaves the other's records
    return lambda root: Human36M(root, "test", protocol=1, subjects=(9,), body=fixtures.body, **SMALL)


def _camera_4(root: Path) -> Callable[[Any], bool]:
    return lambda r: "_ca_04" in r.image.parent.name


def _frame_5(root: Path) -> Callable[[Any], bool]:
    return lambda r: r.image.name == "frame_000005.jpg"


def _camera_4_frame_5(root: Path) -> Callable[[Any], bool]:
    return lambda r: "_ca_04" in r.image.parent.name and r.image.name == "frame_000005.jpg"


def _h36m_bbox(value: Any) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        for im, a in zip(data["images"], data["annotations"], strict=True):
            if im["cam_idx"] == 4 and im["frame_idx"] == 5:
                a["bbox"] = value
    return mutate


def _cam(key: str, value: Any) -> Callable[[dict], None]:
    return _set(("4", key), value)


def _smpl(key: str, value: Any) -> Callable[[dict], None]:
    return _set(("2", "1", "5", key), value)


def _rotation_times(factor: float) -> Callable[[Any], list]:
    return lambda a: (np.asarray(a) * factor).tolist()


#: name -> (which file, mutation, what the message names, the bad records)
H36M_FAULTS: dict[str, tuple[str, Callable, Names, Callable]] = {
    "camera.R:nan": ("camera", _cam("R", lambda a: with_value(a, (0, 1), NAN).tolist()), [("R",)], _camera_4),
    "camera.R:zero": ("camera", _cam("R", _rotation_times(0.0)), [("R", "rotation")], _camera_4),
    "camera.R:2x3": ("camera", _cam("R", lambda a: a[:2]), [("R",)], _camera_4),
    "camera.t:nan": ("camera", _cam("t", lambda a: with_value(a, (2,), NAN).tolist()), [("t",)], _camera_4),
    "camera.t:str": ("camera", _cam("t", "t"), [("t",)], _camera_4),
    "camera.f:zero": ("camera", _cam("f", [0.0, 0.0]), [("f", "focal")], _camera_4),
    "camera.f:negative": ("camera", _cam("f", [-150.0, -150.0]), [("f", "focal")], _camera_4),
    "camera.f:scalar": ("camera", _cam("f", 150.0), [("f", "focal")], _camera_4),
    "camera.c:nan": ("camera", _cam("c", [NAN, 60.0]), [("c", "principal")], _camera_4),
    "camera.c:missing": ("camera", _delete(("4", "c")), [("c",)], _camera_4),
    "camera:not_a_dict": ("camera", _set(("4",), [1, 2, 3]), [("camera", "4")], _camera_4),
    "smpl.pose:nan": ("smpl_param", _smpl("pose", lambda a: with_value(a, (5,), NAN).tolist()), [("pose",)],
                      _frame_5),
    "smpl.pose:inf": ("smpl_param", _smpl("pose", lambda a: with_value(a, (5,), INF).tolist()), [("pose",)],
                      _frame_5),
    "smpl.shape:nan": ("smpl_param", _smpl("shape", lambda a: with_value(a, (2,), NAN).tolist()),
                       [("shape", "betas")], _frame_5),
    "smpl.shape:5_values": ("smpl_param", _smpl("shape", lambda a: a[:5]), [("shape", "betas")], _frame_5),
    "smpl.trans:inf": ("smpl_param", _smpl("trans", [0.0, INF, 0.0]), [("trans",)], _frame_5),
    "joint_3d:nan": ("joint_3d", _set(("2", "1", "5"), lambda a: with_value(a, (3, 1), NAN).tolist()),
                     [("joint",)], _frame_5),
    "joint_3d:16_joints": ("joint_3d", _set(("2", "1", "5"), lambda a: a[:16]), [("joint",)], _frame_5),
    "bbox:zero_width": ("data", _h36m_bbox([10.0, 10.0, 0.0, 50.0]), [("bbox", "box")], _camera_4_frame_5),
    "bbox:negative_height": ("data", _h36m_bbox([10.0, 10.0, 30.0, -50.0]), [("bbox", "box")],
                             _camera_4_frame_5),
    "bbox:3_values": ("data", _h36m_bbox([10.0, 10.0, 30.0]), [("bbox", "box")], _camera_4_frame_5),
}


@pytest.mark.parametrize("case", H36M_FAULTS)
def test_a_spoilt_h36m_value_is_named(fixtures, case):
    which, mutate, names, is_bad = H36M_FAULTS[case]
    expect(json_outcome(fixtures, fixtures.h36m, f"annotations/Human36M_subject9_{which}.json",
                        _h36m(fixtures), names, is_bad, mutate=mutate))


@pytest.mark.parametrize("which", ["camera", "smpl_param", "joint_3d", "data"])
def test_a_truncated_h36m_file_is_named(fixtures, which):
    expect(json_outcome(fixtures, fixtures.h36m, f"annotations/Human36M_subject9_{which}.json",
                        _h36m(fixtures), [], lambda root: lambda r: True, raw=lambda b: b[: len(b) // 2]))


# -- SURREAL raw clips -----------------------------------------------------------------------------

def _mat_at(key: str, index: tuple, value: float) -> Callable[[dict], None]:
    def mutate(mat: dict) -> None:
        mat[key] = with_value(mat[key], index, value).astype(mat[key].dtype)
    return mutate


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00not a video" * 50)


#: name -> (a mutation of clip c0002's _info.mat dict, or of the file ``suffix``; what the message
#: names; one frame bad (else the whole clip); the file's suffix)
SURREAL_FAULTS: dict[str, tuple[Callable, Names, bool, str]] = {
    "pose:inf": (_mat_at("pose", (5, 1), INF), [("pose",)], True, "_info.mat"),
    "shape:nan": (_mat_at("shape", (2, 1), NAN), [("shape", "betas")], True, "_info.mat"),
    "joints3D:nan": (_mat_at("joints3D", (0, 0, 1), NAN), [("joints3D",)], True, "_info.mat"),
    "joints2D:nan": (_mat_at("joints2D", (0, 3, 1), NAN), [("joints2D",)], True, "_info.mat"),
    "zrot:nan": (_mat_at("zrot", (1, 0), NAN), [("zrot",)], True, "_info.mat"),
    "camLoc:inf": (_mat_at("camLoc", (2, 0), INF), [("camLoc",)], False, "_info.mat"),
    "video:truncated": (truncate, [], False, ".mp4"),
    "segm:truncated": (truncate, [], False, "_segm.mat"),
}


@pytest.mark.parametrize("case", SURREAL_FAULTS)
def test_a_spoilt_surreal_clip_is_named_or_skipped_and_reported(fixtures, case):
    from scipy.io import loadmat, savemat

    mutate, names, per_frame, suffix = SURREAL_FAULTS[case]
    root = fixtures.copy_of(fixtures.surreal, "surreal")
    path = root / "val" / "run0" / "01_01" / f"01_01_c0002{suffix}"
    if suffix == "_info.mat":
        mat = {k: v for k, v in loadmat(str(path)).items() if not k.startswith("__")}
        mutate(mat)
        savemat(path, mat, do_compression=True)
    else:
        mutate(path)

    def is_bad(r) -> bool:
        if r.image.name != "01_01_c0002.mp4":
            return False
        return not per_frame or (isinstance(r.extra, dict) and r.extra.get("frame") == 1)

    expect(dataset_verdict(lambda: Surreal(root, "val", format="raw", body=fixtures.body, **SMALL),
                           [Path(path.name), *names], is_bad))


# -- SPIN-style npz --------------------------------------------------------------------------------

def spin_outcome(fixtures: Fixtures, names: Names, per_row: bool, mutate: Callable[[dict], None] | None = None,
                 raw: Callable[[Path], None] | None = None) -> Outcome:
    root = fixtures.copy_of(fixtures.pw3d, "spin")
    path = root / "spin_test.npz"
    if raw is not None:
        raw(path)
    else:
        with np.load(path) as data:
            arrays = dict(data)
        mutate(arrays)
        np.savez(path, **arrays)
    bad = root / "imageFiles" / BAD_SEQ / "image_00002.jpg"
    return dataset_verdict(lambda: SpinNpz(path, root, body=fixtures.body, **SMALL),
                           [Path("spin_test.npz"), *names], (lambda r: r.image == bad) if per_row else (lambda r: True))


def _row(key: str, index: tuple, value: float) -> Callable[[dict], None]:
    def mutate(arrays: dict) -> None:
        arrays[key] = with_value(arrays[key], index, value)
    return mutate


def _npz_key(key: str, value: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict], None]:
    def mutate(arrays: dict) -> None:
        arrays[key] = value(arrays[key])
    return mutate


#: name -> (a mutation of the npz's arrays, what the message names, one row bad)
SPIN_FAULTS: dict[str, tuple[Callable, Names, bool]] = {
    "center:inf": (_row("center", (4, 1), INF), [("center",)], True),
    "scale:nan": (_row("scale", (4,), NAN), [("scale",)], True),
    "pose:inf": (_row("pose", (4, 5), INF), [("pose",)], True),
    "shape:nan": (_row("shape", (4, 2), NAN), [("shape", "betas")], True),
    "pose:70_values": (_npz_key("pose", lambda a: a[:, :70]), [("pose",)], False),
    "imgname:shorter": (_npz_key("imgname", lambda a: a[:4]), [("imgname",)], False),
}


@pytest.mark.parametrize("case", SPIN_FAULTS)
def test_a_spoilt_spin_npz_value_is_named(fixtures, case):
    mutate, names, per_row = SPIN_FAULTS[case]
    expect(spin_outcome(fixtures, names, per_row, mutate=mutate))


def test_an_npz_member_of_python_objects_is_refused_naming_the_file(fixtures):
    def object_member(path: Path) -> None:
        with np.load(path) as data:
            arrays = dict(data)
        arrays["pose"] = np.array([np.zeros(72)] * 6 + [None], dtype=object)[:6]
        np.savez(path, **arrays)

    expect(spin_outcome(fixtures, [], False, raw=object_member))


# -- COCO raw (keypoints + NeuralAnnot / EFT fits) -------------------------------------------------

KEYPOINTS = "annotations/person_keypoints_train2017.json"
NEURALANNOT = "annotations/MSCOCO_train_SMPL_NeuralAnnot.json"
EFT = "eft_fit/COCO2014-All-ver01.json"


def _coco_ann(key: str, value: Any) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        a = next(a for a in data["annotations"] if a["id"] == 1001)
        a[key] = value(a[key]) if callable(value) else value
    return mutate


def _coco_fit(path: tuple, value: Any) -> Callable[[dict], None]:
    return _set(("1001", *path), value)


def _eft_fit(key: str, value: Any) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        entry = next(e for e in data["data"] if e["annotId"] == 1001)
        entry[key] = value(entry[key]) if callable(value) else value
    return mutate


#: name -> (file, fits, mutation, what the message names, what the report names)
COCO_FAULTS: dict[str, tuple[str, str | None, Callable, Names, Names | None]] = {
    "keypoints:inf": (KEYPOINTS, None, _coco_ann("keypoints", lambda a: with_value(a, (16,), INF).tolist()),
                      [("keypoints",)], None),
    "bbox:inf": (KEYPOINTS, None, _coco_ann("bbox", lambda a: with_value(a, (3,), INF).tolist()),
                 [("bbox", "box")], None),
    # COCO's documented filter: an empty box is skipped, counted and reported
    "bbox:zero_width": (KEYPOINTS, None, _coco_ann("bbox", lambda a: with_value(a, (2,), 0.0).tolist()),
                        [("bbox", "box")], [("box",)]),
    "neuralannot.pose:nan": (NEURALANNOT, "neuralannot",
                             _coco_fit(("smpl_param", "pose"), lambda a: with_value(a, (5,), NAN).tolist()),
                             [("pose",)], None),
    "neuralannot.trans:inf": (NEURALANNOT, "neuralannot", _coco_fit(("smpl_param", "trans"), [0.0, 0.0, INF]),
                              [("trans",)], None),
    "neuralannot.focal:nan": (NEURALANNOT, "neuralannot", _coco_fit(("cam_param", "focal"), [NAN, 150.0]),
                              [("focal",)], None),
    "neuralannot.focal:negative": (NEURALANNOT, "neuralannot",
                                   _coco_fit(("cam_param", "focal"), [-150.0, -150.0]), [("focal",)], None),
    "neuralannot.princpt:nan": (NEURALANNOT, "neuralannot", _coco_fit(("cam_param", "princpt"), [NAN, 50.0]),
                                [("princpt",)], None),
    "eft.parm_cam:nan": (EFT, "eft", _eft_fit("parm_cam", lambda a: with_value(a, (0,), NAN).tolist()),
                         [("parm_cam",)], None),
    "eft.parm_cam:inf_translation": (EFT, "eft", _eft_fit("parm_cam", lambda a: with_value(a, (1,), INF).tolist()),
                                     [("parm_cam",)], None),
    "eft.bbox_center:inf": (EFT, "eft", _eft_fit("bbox_center", lambda a: [a[0], INF]), [("bbox_center",)],
                            None),
    "eft.parm_shape:nan": (EFT, "eft", _eft_fit("parm_shape", lambda a: with_value(a, (1,), NAN).tolist()),
                           [("parm_shape", "shape")], None),
}


@pytest.mark.parametrize("case", COCO_FAULTS)
def test_a_spoilt_coco_value_is_named_or_skipped_and_reported(fixtures, case):
    relpath, smpl, mutate, names, report = COCO_FAULTS[case]

    def build(root: Path):
        return COCO(root, "train", smpl=smpl, body=fixtures.body, **SMALL)

    def is_bad(root: Path):
        return lambda r: isinstance(r.extra, dict) and r.extra.get("ann_id") == 1001

    expect(json_outcome(fixtures, fixtures.coco, relpath, build, names, is_bad, mutate=mutate,
                        report_names=report))


# -- UP-3D raw -------------------------------------------------------------------------------------

def up3d_outcome(fixtures: Fixtures, names: Names, suffix: str = "_body.pkl",
                 mutate: Callable[[dict], None] | None = None, raw: Callable[[Path], None] | None = None
                 ) -> Outcome:
    from kinediff.body.smpl_io import load_smpl_pickle

    root = fixtures.copy_of(fixtures.up3d, "up3d")
    path = root / f"00001{suffix}"
    if raw is not None:
        raw(path)
    else:
        data = {k: (np.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in load_smpl_pickle(path).items()}
        mutate(data)
        save_pkl(path, data)
    bad = root / "00001_image.png"
    return dataset_verdict(lambda: UP3D(root, "trainval", body=fixtures.body, **SMALL), [Path(path.name), *names],
                           lambda r: r.image == bad)


def _fit_at(key: str, index: tuple, value: float) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        data[key] = with_value(data[key], index, value)
    return mutate


#: name -> (a mutation of 00001_body.pkl's dict, what the message names)
UP3D_FIT_FAULTS: dict[str, tuple[Callable, Names]] = {
    "pose:inf": (_fit_at("pose", (5,), INF), [("pose",)]),
    "betas:nan": (_fit_at("betas", (2,), NAN), [("betas",)]),
    "trans:inf": (_fit_at("trans", (1,), INF), [("trans",)]),
    "rt:nan": (_fit_at("rt", (0,), NAN), [("rt",)]),
    "t:nan": (_fit_at("t", (2,), NAN), [("t",)]),
    "f:nan": (lambda d: d.__setitem__("f", np.array([NAN])), [("f",)]),
    "f:inf": (lambda d: d.__setitem__("f", np.array([INF])), [("f",)]),
}


@pytest.mark.parametrize("case", UP3D_FIT_FAULTS)
def test_a_spoilt_up3d_fit_value_is_named(fixtures, case):
    mutate, names = UP3D_FIT_FAULTS[case]
    expect(up3d_outcome(fixtures, names, mutate=mutate))


#: name -> (the file's suffix, how it is spoilt)
UP3D_FILE_FAULTS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "joints:truncated": ("_joints.npy", truncate),
    "body.pkl:empty": ("_body.pkl", lambda p: p.write_bytes(b"")),
    "crop_info:nan": ("_fit_crop_info.txt", lambda p: p.write_text("nan 160 0 120 0 160")),
}


@pytest.mark.parametrize("case", UP3D_FILE_FAULTS)
def test_a_damaged_up3d_file_is_named(fixtures, case):
    suffix, raw = UP3D_FILE_FAULTS[case]
    expect(up3d_outcome(fixtures, [], suffix, raw=raw))


# -- unreadable images in a data set ---------------------------------------------------------------

@pytest.mark.parametrize("fault", sorted(set(IMAGE_FAULTS) - {"garbage"}))
def test_an_unreadable_image_is_skipped_and_reported_by_name(fixtures, fault):
    root = fixtures.copy_of(fixtures.pw3d, "images")
    bad = root / "imageFiles" / BAD_SEQ / "image_00002.jpg"
    write_image_fault(bad, fault)
    expect(dataset_verdict(lambda: PW3D(root, "test", body=fixtures.body, **SMALL),
                           [(BAD_SEQ,), ("image_00002",)], lambda r: r.image == bad))


# -- a full disk while the SynthBody cache is written ----------------------------------------------

def test_a_full_disk_while_the_synthbody_cache_is_written(fixtures, tmp_path, monkeypatch):
    def torch_save_fault(obj, f, *args, **kwargs):
        partial_write(f)
        raise enospc()

    def call():
        with monkeypatch.context() as patch:
            patch.setattr(torch, "save", torch_save_fault)
            SynthBody(2, seed=9, body=fixtures.body, cache=True, cache_root=tmp_path, progress=False, **SMALL)

    # Accepted: the cache file is written atomically (nothing half-written, the OSError names it),
    # but the cache's own folder (<cache_root>/synthbody), made for it, stays: an empty folder of
    # kinediff's cache, not a damaged file.
    expect(write_fault_verdict(tmp_path, tmp_path / "synthbody", call), SILENT,
           because="the empty cache folder made for the file is kept")


# -- memory bombs (guarded) ------------------------------------------------------------------------

def _shared_poses(data: dict) -> None:
    row = [0.0] * 72
    block = [row] * 1000
    data["poses"] = [[block] * 100_000]  # 1e5 x 1e3 x 72 floats: ~58 GB once converted


def _shared_frame_ids(data: dict) -> None:
    data["img_frame_ids"] = [[0] * 10_000] * 1_000_000  # 1e10 ints: 80 GB once converted


def _pw3d_bomb(root: Path, key: str, cache: str) -> Outcome:
    """In the guarded child: PW3D on ``root`` whose b_bad_00 file holds a shared-reference bomb."""
    path = root / "sequenceFiles" / "test" / f"{BAD_SEQ}.pkl"
    data = load_pkl(path)
    (_shared_poses if key == "poses" else _shared_frame_ids)(data)
    save_pkl(path, data)
    body = BodyModel.synthetic(0, cache_dir=cache)
    return dataset_verdict(lambda: PW3D(root, "test", body=body, **SMALL), [Path(path.name), (key,)],
                           lambda r: r.image.parent.name == BAD_SEQ)


@pytest.mark.parametrize("key", ["poses", "img_frame_ids"])
def test_a_3dpw_pickle_that_expands_through_shared_references_is_refused(fixtures, cache_dir, key):
    root = fixtures.copy_of(fixtures.pw3d, "pw3d-bomb")
    expect(guarded(_pw3d_bomb, root, key, cache_dir, timeout=60))


def _spin_bomb(path: Path, root: Path, cache: str) -> Outcome:
    write_npz_header_bomb(path, "pose", (10**10 // 72, 72))
    body = BodyModel.synthetic(0, cache_dir=cache)
    return refusal(lambda: SpinNpz(path, root, body=body, **SMALL), [Path(path.name), ("pose",)])


def test_an_npz_whose_header_claims_80_gb_is_refused_before_allocation(fixtures, cache_dir):
    root = fixtures.copy_of(fixtures.pw3d, "spin-bomb")
    expect(guarded(_spin_bomb, root / "spin_test.npz", root, cache_dir, timeout=60))
