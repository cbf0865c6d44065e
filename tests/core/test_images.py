"""Image files (:mod:`kinediff.core.images`): one exception type naming the file for whatever the
decoder refuses, and 16-bit grey at its full range."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from kinediff.core.images import UnreadableImageError, read_image, write_jpeg


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def test_undecodable_images_raise_one_error_type_naming_the_file(tmp_path):
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
    Image.fromarray(np.full((4, 6), 30000, np.uint16)).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image.shape == (3, 4, 6)
    torch.testing.assert_close(image, torch.full((3, 4, 6), 30000 / 65535))


def test_rgb_grey_and_alpha_images_read_as_rgb_in_the_unit_range(tmp_path):
    rgb = (np.random.default_rng(1).random((5, 7, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.concatenate([rgb, np.zeros((5, 7, 1), np.uint8)], -1)).save(tmp_path / "rgba.png")
    want = torch.as_tensor(rgb).permute(2, 0, 1).float() / 255
    for name, expected in (("rgb.png", want), ("grey.png", want[:1].expand(3, -1, -1)), ("rgba.png", want)):
        image = read_image(tmp_path / name)
        assert image.dtype == torch.float32 and image.shape == (3, 5, 7) and image.is_contiguous()
        torch.testing.assert_close(image, expected, rtol=0, atol=0, msg=name)
    with pytest.raises(FileNotFoundError, match="no image at .*missing.png"):
        read_image(tmp_path / "missing.png")


def test_write_jpeg_writes_what_read_image_reads_back(tmp_path):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 1, 1, generator=g).expand(3, 16, 24).contiguous()  # flat: no JPEG ringing
    path = write_jpeg(image, tmp_path / "a" / "frame.jpg")  # the folder is made
    again = read_image(path)
    assert again.shape == (3, 16, 24)
    # 8-bit rounding plus JPEG's colour conversion: a few levels of 255 on a flat image
    assert (again - image).abs().max() < 4 / 255
    assert sorted(p.name for p in path.parent.iterdir()) == ["frame.jpg"]  # no temporary left
    with Image.open(path) as img:
        assert img.format == "JPEG"
