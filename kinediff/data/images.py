"""Reading image files for the data sets and for prediction."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["read_image"]


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """An image file as (3, H, W) float in [0, 1] (grey expanded, alpha dropped)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image at {path}")
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not a readable image (PNG, JPEG, ...): {err}") from err
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
