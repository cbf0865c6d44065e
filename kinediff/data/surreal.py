"""SURREAL through the Pose2Mesh / I2L-MeshNet COCO-style annotations.

Layout under ``root``::

    surreal_<split>.json     images {id, file_name, width, height, cam_param {focal, princpt}},
                             annotations {image_id, bbox, smpl_param {pose, shape, trans, gender}}
    images/<file_name>       the frames, extracted from the videos

SMPL parameters are in the camera frame; ``gender`` may be a string or SURREAL's code
(0 = female, 1 = male). SURREAL's own videos are 320 x 240 with f = 600 px and c = (160, 120).
Not yet read: the raw ``*_info.mat`` / ``_segm.mat`` files (their camera and root conventions need
the SURREAL generation code's extrinsics; planned with a converter to this format).
"""

from __future__ import annotations

import os
from pathlib import Path

from kinediff.data.base import PersonDataset, require_dir, require_file
from kinediff.data.pw3d import _get, coco_records

__all__ = ["Surreal"]

LAYOUT = ("the SURREAL folder with surreal_<split>.json (Pose2Mesh / I2L-MeshNet COCO-style "
          "annotations) and images/<file_name>")


class Surreal(PersonDataset):
    """SURREAL in the common sample format (gendered GT, as the SURREAL protocol uses).

    Args:
        root: the folder (see the module doc). split: "train", "val" or "test".
        annotation: the JSON file name, if not ``surreal_<split>.json``.
        body, image_size, mesh_factors, crop_scale: as :class:`~kinediff.data.pw3d.PW3D`.
    """

    def __init__(self, root: str | os.PathLike, split: str = "val", annotation: str | None = None,
                 body=None, image_size: int = 256, mesh_factors: tuple[int, ...] = (4, 4),
                 crop_scale: float = 1.2) -> None:
        from kinediff.body import BodyModel

        root = require_dir(root, LAYOUT)
        path = require_file(root / (annotation or f"surreal_{split}.json"), LAYOUT)
        records = coco_records(path, lambda im, where: root / "images" / str(
            _get(im, "file_name", where)), gender_codes={0: "female", 1: "male"})
        super().__init__(records, body if body is not None else BodyModel.synthetic(), image_size,
                         mesh_factors, crop_scale)
        self.root, self.split = Path(root), split
