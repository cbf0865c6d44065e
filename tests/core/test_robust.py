"""Robustness of the image reader (marker ``robust``, harness :mod:`robust`): a damaged JPEG is
refused naming the file. The other faults (garbage, an empty file, a folder, a decompression bomb,
a cut PNG) are checked with exact messages in test_images.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from robust import expect, refusal, write_image_fault

from kinediff.core.images import read_image

pytestmark = pytest.mark.robust


@pytest.mark.parametrize("fault", ["truncated_jpeg", "header_only_jpeg"])
def test_a_damaged_jpeg_is_refused_naming_the_file(fixtures, fault):
    path = fixtures.fresh("image") / "photo.jpg"
    shutil.copy(fixtures.good_image, path)
    write_image_fault(path, fault)
    expect(refusal(lambda: read_image(path), [Path("photo.jpg")]))
