"""The COCO-style annotation files (:mod:`kinediff.data.coco_style`) that 3DPW, Human3.6M, SURREAL,
UP-3D, COCO and MPI-INF-3DHP share: every bad value named with the file, the annotation and the
key; unknown genders refused, never read as neutral."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinediff.data import PW3D
from kinediff.data.base import Record
from kinediff.data.coco_style import coco_entries, coco_records, gender_name, write_coco_file

K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])


def _coco_file(tmp: Path, data) -> Path:
    path = tmp / "3DPW_test.json"
    path.write_text(json.dumps(data))
    return path


def _coco(tmp: Path, data):
    return coco_records(_coco_file(tmp, data), lambda im, where: tmp / "x.jpg")


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
    data = json.loads(json.dumps(coco_data))
    data["images"][0]["id"] = 0.0  # as a JSON writer that stores every number as a float
    data["annotations"][0]["image_id"] = 0.0
    image_id = _coco(tmp_path, data)[0].extra["image_id"]
    assert image_id == 0 and type(image_id) is int
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


@pytest.mark.parametrize(("value", "codes", "expected"), [
    ("m", None, "male"), ("f", None, "female"), (" Female ", None, "female"), (b"m", None, "male"),
    (np.str_("neutral"), None, "neutral"), (0, {0: "female", 1: "male"}, "female"),
    (1.0, {0: "female", 1: "male"}, "male"), (np.uint8(1), {0: "female", 1: "male"}, "male"),
])
def test_gender_name_reads_the_files_codes(value, codes, expected):
    assert gender_name(value, "f.json", codes) == expected


@pytest.mark.parametrize(("value", "codes", "shown"), [
    ("x", None, "'x'"), (1, None, "1"), (True, {0: "female", 1: "male"}, "True"),
    (2, {0: "female", 1: "male"}, "2"), (0.5, {0: "female", 1: "male"}, "0.5"), (None, None, "None"),
    (np.int64(7), None, "7"),
])
def test_gender_name_refuses_anything_else_naming_the_record(value, codes, shown):
    with pytest.raises(ValueError, match=rf"^f.json\[2\]: unknown gender {shown}; expected one of f, female"):
        gender_name(value, "f.json[2]", codes)


def test_coco_entries_are_read_back_by_coco_records(tmp_path):
    rng = np.random.default_rng(0)
    joints3d = np.concatenate([rng.normal(size=(17, 3)) + [0, 0, 4], rng.integers(0, 2, (17, 1))], 1)
    keypoints2d = np.concatenate([rng.uniform(0, 100, (17, 2)), rng.integers(0, 2, (17, 1))], 1)
    records = [Record(tmp_path / "a.jpg", rng.normal(size=72) * 0.3, rng.normal(size=10),
                      np.array([0.1, -0.2, 4.0]), K, gender="female", box=(10.0, 20.0, 30.0, 40.0),
                      joints3d=joints3d, keypoints2d=keypoints2d, extra={"pseudo_gt": True}),
               Record(tmp_path / "b.jpg", None, None, None, K * [[2], [2], [1]],
                      keypoints2d=keypoints2d)]
    images, annotations = [], []
    for i, record in enumerate(records):
        image, annotation = coco_entries(i, record, file_name=record.image.name)
        images.append(image)
        annotations.append(annotation)
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    back = coco_records(path, lambda im, where: tmp_path / im["file_name"])
    assert [r.image for r in back] == [r.image for r in records]
    a, b = back
    for key in ("pose", "betas", "transl", "K", "joints3d", "keypoints2d"):
        np.testing.assert_allclose(getattr(a, key), getattr(records[0], key), rtol=0, atol=1e-12,
                                   err_msg=key)
    assert a.gender == "female" and a.box == records[0].box and a.extra == {"image_id": 0, "pseudo_gt": True}
    assert b.pose is None and b.joints3d is None and b.box is None and b.gender == "neutral"
    np.testing.assert_array_equal(b.K, records[1].K)
    np.testing.assert_array_equal(b.keypoints2d, keypoints2d)
    # SURREAL's numeric gender codes written and read back through the codes
    _, annotation = coco_entries(0, records[0], gender=0)
    assert annotation["smpl_param"]["gender"] == 0


def test_write_coco_file_writes_info_images_and_annotations_atomically(tmp_path):
    images = [{"id": 0, "file_name": "a.jpg", "width": 4, "height": 4}]
    annotations = [{"id": 0, "image_id": 0, "keypoints": [0.0] * 51}]
    path = write_coco_file(tmp_path / "out" / "x.json", images, annotations, {"source": "test"})
    assert list(json.loads(path.read_text())) == ["info", "images", "annotations"]
    plain = write_coco_file(tmp_path / "y.json", images, annotations)
    assert json.loads(plain.read_text()) == {"images": images, "annotations": annotations}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.json"]  # no temporary left


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.__setitem__("annotations", {"a": 1}),
     "key 'annotations' must be a list of annotation objects, got dict"),
    (lambda d: d["annotations"][0].__setitem__("smpl_param", [1, 2]),
     "annotations\\[0\\]: key 'smpl_param' must be an object with pose, shape, trans and gender, got list"),
    (lambda d: d["annotations"][0].__setitem__("pseudo_gt", [1]),
     "annotations\\[0\\]: key 'pseudo_gt' must be true or false, got \\[1\\]"),
])
def test_wrong_json_types_name_the_file_and_the_key(tmp_path, mutate, message):
    """JSON of the wrong type where an object or a list belongs: errors naming the file and the
    key (they were AttributeErrors, or a misleading message about 'image_id')."""
    import json

    from kinediff.data.coco_style import coco_records

    data = {"images": [{"id": 1, "file_name": "a.jpg",
                        "cam_param": {"focal": [500, 500], "princpt": [50, 50]}}],
            "annotations": [{"image_id": 1, "bbox": [1, 2, 30, 40],
                             "smpl_param": {"pose": [0.0] * 72, "shape": [0.0] * 10,
                                            "trans": [0, 0, 3.0], "gender": "male"}}]}
    mutate(data)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{path}.*{message}"):
        coco_records(path, lambda image, where: tmp_path / image["file_name"])
