"""The MPI-INF-3DHP data set in the common sample format, whichever format it is read from, and
the converter from the raw files to the COCO-style layout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.checks import check_choice, check_dir, check_file
from kinediff.core.images import read_image, write_jpeg
from kinediff.core.io import write_atomic
from kinediff.core.video import close_video, read_video_frame
from kinediff.data.base import PersonDataset, Record
from kinediff.data.coco_style import coco_entries, write_coco_file
from kinediff.data.mpii3d.coco import mpii3d_coco_records
from kinediff.data.mpii3d.common import image_file_size
from kinediff.data.mpii3d.hybrik import mpii3d_hybrik_records
from kinediff.data.mpii3d.neuralannot import mpii3d_neuralannot_records
from kinediff.data.mpii3d.raw_test import TEST_LAYOUT, mpii3d_test_records
from kinediff.data.mpii3d.raw_train import TRAIN_LAYOUT, mpii3d_train_records
from kinediff.data.mpii3d.spin import mpii3d_spin_records

__all__ = ["FORMATS", "MPIINF3DHP", "SPLITS", "convert_mpii3d"]

#: The splits of :class:`MPIINF3DHP`.
SPLITS = ("train", "test")
#: The file formats :class:`MPIINF3DHP` reads (``format=``), one module each.
FORMATS = ("raw", "coco", "neuralannot", "hybrik", "spin")


class MPIINF3DHP(PersonDataset):
    """MPI-INF-3DHP in the common sample format (:mod:`kinediff.data.mpii3d` lists the formats; each
    format's module documents its layout).

    Samples carry ``joints3d`` / ``keypoints2d`` (``has_joints3d``, ``has_joints2d``); SMPL only
    from fits (``format="neuralannot"``, SPIN files with ``has_smpl``), as pseudo-GT.

    Args:
        root: the data folder of ``format`` (see its module).
        split: "train" or "test" (raw, hybrik, spin, coco; neuralannot is the training set).
        format: "raw", "coco", "neuralannot", "hybrik" or "spin".
        body: the SMPL model(s) labelling the pseudo-GT meshes (the files' fits are neutral-model
            fits: the neutral model converts them). Default the synthetic body.
        image_size, mesh_factors, crop_scale, gt_gender: see
            :class:`~kinediff.data.base.PersonDataset`.
        subjects, sequences: raw selection (training subjects 1-8 / sequences 1-2; test sequences
            1-6); default every folder present.
        cameras: raw training cameras, ids or a name of
            :data:`~kinediff.data.mpii3d.raw_train.MPII3D_CAMERA_SETS` (default "vnect", SPIN's
            set).
        frame_step: keep every n-th frame (default: 10 for the raw training set, as SPIN; 1
            otherwise; neuralannot counts ``frame_idx``, as Hand4Whole's 3).
        annotation: the file name of a spin (default ``mpi_inf_3dhp_<split>.npz``) or coco
            (default ``MPI-INF-3DHP_<split>.json``) annotation inside ``root``.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", format: str = "raw",
                 body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = 1.2,
                 gt_gender: str | None = None, subjects: tuple[int, ...] | None = None,
                 sequences: tuple[int, ...] | None = None, cameras: tuple[int, ...] | str = "vnect",
                 frame_step: int | None = None, annotation: str | None = None) -> None:
        check_choice(split, "split", SPLITS)
        check_choice(format, "format", FORMATS)
        bodies = BodySet.of(body)
        if format == "raw" and split == "train":
            records = mpii3d_train_records(root, subjects, sequences, cameras,
                                           10 if frame_step is None else frame_step)
        elif format == "raw":
            records = mpii3d_test_records(root, sequences, frame_step or 1)
        elif format == "neuralannot":
            if split != "train":
                raise ValueError("NeuralAnnot's MPI-INF-3DHP files cover the training set only")
            records = mpii3d_neuralannot_records(root, bodies, frame_step or 1)
        elif format == "hybrik":
            records = mpii3d_hybrik_records(root, split)
        elif format == "spin":
            root = check_dir(root, "the folder SPIN's imgname entries are relative to")
            records = mpii3d_spin_records(Path(root) / (annotation or f"mpi_inf_3dhp_{split}.npz"), root,
                                          bodies, crop_scale)
        else:
            records = mpii3d_coco_records(root, split, annotation)
        if frame_step is not None and format in ("hybrik", "spin", "coco"):
            records = records[::frame_step]
        super().__init__(records, bodies, image_size, mesh_factors, crop_scale, gt_gender)
        self.root, self.split, self.format = Path(root), split, format
        self._video: dict[str, Any] = {}

    def _read(self, record: Record) -> torch.Tensor:
        frame = record.extra.get("video_frame")
        if frame is None:
            return read_image(record.image)
        return read_video_frame(record.image, frame, self._video)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        univ = self.records[sample["index"]].extra.get("joints3d_univ")
        if univ is not None:
            sample["joints3d_univ"] = torch.as_tensor(univ, dtype=torch.float32)
        return sample

    def __getstate__(self) -> dict[str, Any]:  # an open video does not travel to workers
        state = dict(self.__dict__)
        state["_video"] = {}
        return state


def _frame_name(record: Record, split: str) -> str:
    """The file name, relative to the data root, of a raw record's image in the COCO-style file:
    the training set's frames in SPIN's extracted layout, the test set's as released."""
    e = record.extra
    if split == "train":
        return f"S{e['subject']}/Seq{e['sequence']}/imageFrames/video_{e['camera']}/frame_{e['frame'] + 1:06d}.jpg"
    return f"TS{e['sequence']}/imageSequence/img_{e['frame'] + 1:06d}.jpg"


def convert_mpii3d(src: str | os.PathLike, dst: str | os.PathLike, split: str = "train",
                   body: BodyLike | None = None, subjects: tuple[int, ...] | None = None,
                   sequences: tuple[int, ...] | None = None, cameras: tuple[int, ...] | str = "vnect",
                   frame_step: int | None = None, progress: bool = False) -> Path:
    """Write ``dst/MPI-INF-3DHP_<split>.json`` (COCO style: ``joint_cam`` mm, ``keypoints``,
    ``bbox``, K as ``cam_param``; the test split adds ``univ_joint_cam``) from the raw files in
    ``src`` (the selection arguments as :class:`MPIINF3DHP`), readable with
    ``MPIINF3DHP(dst, split, format="coco")``.

    ``file_name`` is relative to ``dst``: each image not already there is placed there -- copied,
    or, for frames only in a video, decoded and written as JPEG in SPIN's extracted layout
    (``S<s>/Seq<q>/imageFrames/video_<c>/frame_<n:06d>.jpg``). With ``dst`` = ``src`` only the
    missing frames are written. ``body`` is accepted for a uniform signature: raw MPI-INF-3DHP has
    no SMPL."""
    check_choice(split, "split", SPLITS)
    if split == "train":
        records = mpii3d_train_records(src, subjects, sequences, cameras, 10 if frame_step is None else frame_step)
    else:
        records = mpii3d_test_records(src, sequences, frame_step or 1)
    dst = Path(dst)
    images, annotations = [], []
    skipped: dict[str, str] = {}
    cache: dict[str, Any] = {}
    for i, r in enumerate(tqdm(records, desc="MPI-INF-3DHP", disable=not progress, unit="frame")):
        name = _frame_name(r, split)
        out = dst / name
        width, height = r.extra.get("size") or (0, 0)
        if not out.is_file():
            try:  # an unreadable frame is left out of the file, counted and reported at the end
                if r.extra.get("video_frame") is not None:
                    write_jpeg(read_video_frame(r.image, r.extra["video_frame"], cache), out)
                else:
                    source = check_file(r.image, TRAIN_LAYOUT if split == "train" else TEST_LAYOUT)
                    write_atomic(out, lambda tmp, source=source: shutil.copyfile(source, tmp))
            except (FileNotFoundError, ValueError, OSError) as err:
                skipped[r.source or name] = str(err)
                continue
        if not width:
            width, height = image_file_size(out) or (0, 0)
        image, annotation = coco_entries(i, r, file_name=name, width=int(width), height=int(height))
        keep = {k: r.extra[k] for k in ("subject", "sequence", "camera", "frame", "activity") if k in r.extra}
        image.update(keep)
        annotation.update(keep)
        if "joints3d_univ" in r.extra:
            annotation["univ_joint_cam"] = (np.asarray(r.extra["joints3d_univ"])[:, :3] * 1000.0).tolist()
        images.append(image)
        annotations.append(annotation)
    close_video(cache)
    if skipped:
        first = next(iter(skipped.items()))
        print(f"convert_mpii3d: left out {len(skipped)} unreadable frame(s) of {len(records)}, e.g. "
              f"{first[0]}: {first[1]}")
    return write_coco_file(dst / f"MPI-INF-3DHP_{split}.json", images, annotations)
