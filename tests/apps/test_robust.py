"""Robustness of the applications (marker ``robust``, harness :mod:`robust`): ``predict``'s boxes
and focal length, boxes that show nothing of the image, and a full disk while its files are
written."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from robust import SILENT, enospc, expect, partial_write, write_fault_verdict

from kinediff.apps.fit import fit_mesh_files
from kinediff.apps.predict import check_box, check_focal, predict_images

pytestmark = pytest.mark.robust

numbers = st.floats(allow_nan=True, allow_infinity=True, width=32)


@given(st.tuples(numbers, numbers, numbers, numbers))
def test_check_box_accepts_exactly_finite_boxes_with_a_positive_size(box):
    good = all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0
    if good:
        assert check_box(box, "--bbox") == [float(v) for v in box]
    else:
        with pytest.raises(ValueError, match="^--bbox must"):
            check_box(box, "--bbox")


@given(numbers)
def test_check_focal_accepts_exactly_finite_positive_numbers(focal):
    if math.isfinite(focal) and focal > 0:
        assert check_focal(focal, "--focal") == focal
    else:
        with pytest.raises(ValueError, match="^--focal must be a finite number > 0"):
            check_focal(focal, "--focal")


@pytest.mark.parametrize("box", [[1, 2, 3], ["a", 1, 2, 3], "1234", None, {"x": 1}, [True, 1, 2, 3]])
def test_check_box_refuses_what_is_not_four_numbers(box):
    with pytest.raises(ValueError, match="must be four numbers X Y W H"):
        check_box(box, "box")


@pytest.mark.parametrize(("box", "message"), [
    ([0, 0, 1e30, 1e30], "more than 100 times the 40 x 30 image"),
    ([500, 5, 10, 10], "lies outside the 40 x 30 image"),
    ([-50, 5, 10, 10], "lies outside the 40 x 30 image"),
])
def test_predict_refuses_boxes_that_show_nothing_of_the_image(fixtures, tmp_path, box, message):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(photo)
    with pytest.raises(ValueError, match=rf"photo.png: box 0 .*{message}"):
        predict_images([photo], fixtures.model_dir, bbox=box, out_dir=tmp_path / "out", body=fixtures.body)


def test_a_full_disk_while_the_overlay_is_written(fixtures, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt  # matplotlib: a heavy optional dependency (kinediff[viz])

    def imsave_fault(fname, *args, **kwargs):
        partial_write(fname, b"\x89PNG half")
        raise enospc()

    def call():
        with monkeypatch.context() as patch:
            patch.setattr(plt, "imsave", imsave_fault)
            predict_images([fixtures.good_image], fixtures.model_dir, out_dir=tmp_path, body=fixtures.body)

    # Accepted: predict writes each file atomically, one after the other, so the overlay's failed
    # write leaves nothing half-written, but the mesh file written before it (image_00000.obj,
    # complete and right) stays; the OSError names the overlay.
    expect(write_fault_verdict(tmp_path, tmp_path / "image_00000_overlay.png", call), SILENT,
           because="the complete mesh file written before the failing overlay is kept")


def test_fit_refuses_a_mesh_file_with_non_finite_coordinates_naming_it(body32, tmp_path):
    v = body32.v_template.numpy().astype(np.float64)
    v[10, 1] = np.nan
    lines = [f"v {a} {b} {c}" for a, b, c in v] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in body32.faces.tolist()]
    (tmp_path / "person.obj").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'person.obj'}: key 'vertices' holds 1 NaN and 0 "
                                         r"infinite value\(s\), the first at index \(10, 1\)"):
        fit_mesh_files([tmp_path / "person.obj"], body32, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was fitted or written
