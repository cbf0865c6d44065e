"""The file-record checks of :mod:`kinediff.core.checks` (what a data set's annotation files hold)
and :func:`kinediff.core.camera.camera_matrix`: each value accepted as documented, and each clear
error naming the file, the record and the key."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from kinediff.core.camera import camera_matrix
from kinediff.core.checks import (
    check_array,
    check_box,
    check_dir,
    check_file,
    check_finite,
    check_finite_array,
    check_ids,
    check_image_ref,
    check_int,
    check_intrinsics,
    check_key,
    check_name,
    check_numbers,
    check_pose_array,
    check_record_int,
    check_rotation,
    short_repr,
)


def test_dir_and_file_name_the_path_and_the_expected_layout(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    assert check_dir(tmp_path, "x") == tmp_path
    assert check_file(tmp_path / "a.json", "x") == tmp_path / "a.json"
    with pytest.raises(FileNotFoundError, match=r"^no directory .*nowhere; expected the 3DPW folder$"):
        check_dir(tmp_path / "nowhere", "the 3DPW folder")
    with pytest.raises(FileNotFoundError, match=r"^no directory .*a.json; expected x$"):
        check_dir(tmp_path / "a.json", "x")  # a file is no folder
    with pytest.raises(FileNotFoundError, match=r"^no file .*b.json; expected 3DPW_<split>.json$"):
        check_file(tmp_path / "b.json", "3DPW_<split>.json")
    with pytest.raises(FileNotFoundError, match=r"^no file .*; expected x$"):
        check_file(tmp_path, "x")  # a folder is no file


def test_record_reading_helpers_name_file_and_key():
    assert check_key({"pose": 1}, "pose", "f.json") == 1
    assert check_key([5, 6], 1, "f.json") == 6
    with pytest.raises(ValueError, match=r"^f\.json: missing or malformed key 'pose' \(KeyError\)$"):
        check_key({}, "pose", "f.json")
    with pytest.raises(ValueError, match=r"^f\.json: missing or malformed key 2 \(IndexError\)$"):
        check_key([5, 6], 2, "f.json")
    with pytest.raises(ValueError, match=r"^f\.json: missing or malformed key 'a' \(TypeError\)$"):
        check_key(None, "a", "f.json")
    out = check_array([[0, 1, 2]] * 2, (3,), "f.json", "t")
    assert out.dtype == np.float64 and out.shape == (2, 3)
    with pytest.raises(ValueError, match=r"^f\.json: key 'pose' has shape \(69,\), expected \(\.\.\., 72\)$"):
        check_array(np.zeros(69), (72,), "f.json", "pose")
    with pytest.raises(ValueError, match=r"^f\.json: key 'pose' is not numeric: "):
        check_array(["a"], (1,), "f.json", "pose")


def test_names_are_text_never_numbers():
    assert check_name({"file_name": "a.jpg"}, "file_name", "f") == "a.jpg"
    assert check_name({"file_name": b"\xc3\xa9.jpg"}, "file_name", "f") == "\u00e9.jpg"
    for value in (5, None, "", ["a.jpg"]):
        with pytest.raises(ValueError, match=rf"^f images\[0\]: key 'file_name' must be a non-empty file or "
                                             rf"folder name, got {re.escape(short_repr(value))}$"):
            check_name({"file_name": value}, "file_name", "f images[0]")
    with pytest.raises(ValueError, match=r"^f: missing or malformed key 'file_name' \(KeyError\)$"):
        check_name({}, "file_name", "f")


def test_numbers_are_numbers_and_arrays_have_their_shape():
    assert check_numbers([1, 2], "f", "k").dtype == np.float64
    assert check_numbers(np.array([True, False]), "f", "k").tolist() == [1.0, 0.0]
    for value, shown in ((["500", "500"], r"\['500', '500'\]"), (None, "None"), ({"a": 1}, r"\{'a': 1\}")):
        with pytest.raises(ValueError, match=rf"^f: key 'focal' is not numeric: got {shown}$"):
            check_numbers(value, "f", "focal")
    with pytest.raises(ValueError, match=r"^f: key 'k' is not numeric: "):
        check_numbers([[1, 2], [3]], "f", "k")  # ragged
    assert check_array(np.zeros((4, 3)), (4, 3), "f", "k", exact=True).shape == (4, 3)
    with pytest.raises(ValueError, match=r"^f: key 'k' has shape \(2, 4, 3\), expected \(4, 3\)$"):
        check_array(np.zeros((2, 4, 3)), (4, 3), "f", "k", exact=True)
    with pytest.raises(ValueError, match=r"^f: key 'k' holds 1 NaN and 0 infinite value\(s\), the first at "
                                         r"index \(1, 2\)$"):
        check_array([[0, 0, 0], [0, 0, math.nan]], (3,), "f", "k", finite=True)


def test_finite_arrays_count_and_locate_the_bad_entries():
    array = np.zeros((3, 4))
    assert check_finite_array(array, "f", "k") is array
    array[1, 2], array[2, 0], array[2, 3] = np.inf, np.nan, -np.inf
    with pytest.raises(ValueError, match=r"^seq.pkl person 0: key 'poses' holds 1 NaN and 2 infinite "
                                         r"value\(s\), the first at index \(1, 2\)$"):
        check_finite_array(array, "seq.pkl person 0", "poses")
    # the same counts as the tensor check
    with pytest.raises(ValueError, match=r"^poses contains NaN or infinite values \(1 NaN, 2 infinite\)$"):
        check_finite(torch.as_tensor(array), "poses")


def test_poses_are_72_or_24_by_3():
    pose = np.arange(72.0)
    np.testing.assert_array_equal(check_pose_array(pose.reshape(24, 3), "f", "pose"), pose)
    assert check_pose_array(pose.tolist(), "f", "pose").shape == (72,)
    for shape in ((69,), (24, 4), (1, 72)):
        with pytest.raises(ValueError, match=rf"^f: key 'pose' has shape {re.escape(str(shape))}, expected "
                                             r"\(72,\) or \(24, 3\)$"):
            check_pose_array(np.zeros(shape), "f", "pose")
    pose[5] = np.nan
    with pytest.raises(ValueError, match=r"^f: key 'pose' holds 1 NaN .* at index \(5,\)$"):
        check_pose_array(pose, "f", "pose")


@pytest.mark.parametrize("value", [4, 4.0, np.int64(4), np.float32(4.0), np.uint8(4)])
def test_record_integers_accept_integral_floats(value):
    assert check_record_int(value, "w", "id") == 4 and type(check_record_int(value, "w", "id")) is int


@pytest.mark.parametrize("value", [0.5, math.nan, math.inf, "4", True, np.bool_(True), None, [4]])
def test_record_integers_refuse_anything_else(value):
    with pytest.raises(ValueError, match=rf"^a.json annotations\[3\]: key 'image_id' must be an integer, got "
                                         rf"{re.escape(repr(value))}$"):
        check_record_int(value, "a.json annotations[3]", "image_id")


def test_check_int_reads_integral_floats_only_when_asked_and_cuts_long_values():
    assert check_int(3.0, "n", integral_floats=True) == 3
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got 3.0$"):
        check_int(3.0, "n")
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got 0$"):
        check_int(0.0, "n", integral_floats=True)  # the range still holds
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got \[0, 0, .*, 0\.\.\.$"):
        check_int([0] * 100, "n")
    assert short_repr("x" * 10) == "'xxxxxxxxxx'" and len(short_repr("x" * 500)) == 80


def test_ids_index_entries_and_refuse_repeats():
    images = [{"id": 3, "file_name": "a"}, {"id": 7.0, "file_name": "b"}]
    assert check_ids(images, "f.json") == {3: images[0], 7: images[1]}
    with pytest.raises(ValueError, match=r"^f.json images\[1\]: key 'id' 3 repeats an earlier entry's id$"):
        check_ids([{"id": 3}, {"id": 3}], "f.json")
    with pytest.raises(ValueError, match=r"^f.json images\[0\]: key 'id' must be an integer, got '3'$"):
        check_ids([{"id": "3"}], "f.json")
    with pytest.raises(ValueError, match=r"^f.json cams\[0\]: missing or malformed key 'id' \(KeyError\)$"):
        check_ids([{}], "f.json", "cams")


def test_an_annotation_names_one_of_the_images():
    images = check_ids([{"id": 3, "file_name": "a"}, {"id": 7, "file_name": "b"}], "f.json")
    assert check_image_ref({"image_id": 7.0}, images, "f.json annotations[0]") == (7, images[7])
    with pytest.raises(ValueError, match=r"^f.json annotations\[1\]: image_id 5 is not among the images$"):
        check_image_ref({"image_id": 5}, images, "f.json annotations[1]")
    with pytest.raises(ValueError, match=r"^f.json annotations\[2\]: key 'image_id' must be an integer"):
        check_image_ref({"image_id": "7"}, images, "f.json annotations[2]")


def test_boxes_have_a_positive_size():
    assert check_box([1, 2, 3, 4], "f") == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match=r"^f: key 'bbox' must have a positive width and height, got "
                                         r"\[1.0, 2.0, 0.0, 4.0\]$"):
        check_box([1, 2, 0, 4], "f")
    with pytest.raises(ValueError, match=r"^f: key 'box' has shape \(3,\), expected \(4,\)$"):
        check_box([1, 2, 3], "f", "box")
    with pytest.raises(ValueError, match=r"^f: key 'bbox' holds 0 NaN and 1 infinite"):
        check_box([1, 2, math.inf, 4], "f")


def test_intrinsics_and_rotations():
    K = np.array([[500.0, 0, 80], [0, 500, 60], [0, 0, 1]])
    np.testing.assert_array_equal(check_intrinsics(K.tolist(), "f"), K)
    with pytest.raises(ValueError, match=r"^f: key 'K' must have positive focal lengths K\[0, 0\] and "
                                         r"K\[1, 1\], got 500.0 and -500.0$"):
        check_intrinsics(K * [[1], [-1], [1]], "f")
    with pytest.raises(ValueError, match=r"^f: key 'cam' must have the last row \(0, 0, 1\), got "
                                         r"\[0.0, 0.0, 2.0\]$"):
        check_intrinsics(K * [[1], [1], [2]], "f", "cam")
    R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(check_rotation(R, "f", "R"), R)
    check_rotation(R * 1.004, "f", "R")  # within the tolerance
    with pytest.raises(ValueError, match=r"^f: key 'R' is not a rotation matrix \(\|R R\^T - I\| = 8, "
                                         r"det 27\)$"):
        check_rotation(np.eye(3) * 3, "f", "R")
    with pytest.raises(ValueError, match=r"^f: key 'R' is not a rotation matrix \(\|R R\^T - I\| = 0, "
                                         r"det -1\)$"):
        check_rotation(np.diag([1.0, 1, -1]), "f", "R")  # a reflection


def test_camera_matrix_from_focal_lengths_and_principal_point():
    K = camera_matrix([500, 510], (80.5, 60.5), "f")
    np.testing.assert_array_equal(K, [[500, 0, 80.5], [0, 510, 60.5], [0, 0, 1]])
    assert K.dtype == np.float64
    with pytest.raises(ValueError, match=r"^f: key 'focal' must hold positive focal lengths, got "
                                         r"\[0.0, 500.0\]$"):
        camera_matrix([0, 500], [1, 2], "f")
    with pytest.raises(ValueError, match=r"^f: key 'c' has shape \(3,\), expected \(2,\)$"):
        camera_matrix([500, 500], [1, 2, 3], "f", ("f", "c"))
    with pytest.raises(ValueError, match=r"^f: key 'cam_param.focal' holds 1 NaN"):
        camera_matrix([math.nan, 500], [1, 2], "f", ("cam_param.focal", "cam_param.princpt"))
