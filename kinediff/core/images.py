"""Image files as (3, H, W) float tensors in [0, 1], for the data sets and for prediction: one
error type (:class:`UnreadableImageError`) naming the file for whatever the decoder refuses."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kinediff.core.io import write_atomic

__all__ = ["UnreadableImageError", "read_image", "write_jpeg"]

#: PIL modes of 16-bit grey images, read at their full range (not clipped to 8 bits).
_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class UnreadableImageError(ValueError):
    """An image file that exists but cannot be decoded: not an image, truncated or damaged, too
    large for PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``), or in a pixel format
    kinediff does not read. The message names the file; a ``ValueError``, so code that catches
    those (the data sets' skip logic) catches it too."""


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """An image file as (3, H, W) float in [0, 1] (grey expanded, alpha dropped; 16-bit grey at
    its full range).

    Raises:
        FileNotFoundError: no file at ``path`` (a folder is no file).
        UnreadableImageError: (a ``ValueError``) the file cannot be decoded, whatever the decoder's
            own error was (``UnidentifiedImageError``, ``OSError``, ``DecompressionBombError``,
            ...); the message names the file and that error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image at {path}")
    try:
        with Image.open(path) as img:
            if img.mode in _MODES_16BIT:
                grey = np.asarray(img, dtype=np.float32) / 65535.0
                array = np.repeat(grey[..., None], 3, axis=-1)
            elif img.mode in ("I", "F"):
                raise UnreadableImageError(f"{path} is a {img.mode!r} (32-bit) image, which kinediff "
                                           f"does not read: save it as 8-bit RGB (or 16-bit grey)")
            else:
                array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except UnreadableImageError:
        raise
    except Image.DecompressionBombError as err:
        raise UnreadableImageError(f"{path} is too large to decode safely (PIL's decompression-bomb "
                                   f"limit, PIL.Image.MAX_IMAGE_PIXELS): {err}") from err
    except Exception as err:  # decoders signal damaged files with many types
        raise UnreadableImageError(f"{path} is not a readable image (PNG, JPEG, ...): "
                                   f"{type(err).__name__}: {err}") from err
    if array.ndim != 3 or 0 in array.shape:
        raise UnreadableImageError(f"{path} decodes to an empty image of shape {array.shape[:2]}")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


def write_jpeg(image: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """A (3, H, W) float image in [0, 1] (as :func:`read_image` returns) as a JPEG file at
    ``path``: rounded to 8 bits, ``quality`` (95: what the data sets' converters write), written
    atomically (:func:`~kinediff.core.io.write_atomic`: no half-written file, the folder made)."""
    pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return write_atomic(Path(path), lambda tmp: Image.fromarray(pixels).save(tmp, format="JPEG",
                                                                             quality=quality))
