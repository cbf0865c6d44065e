"""``kinediff predict``: meshes for a user's own images from a pretrained model folder
(``PostureHMR.save_pretrained``) or a Trainer checkpoint.

People come from each image's person boxes (``boxes``, any number per image, or one ``bbox`` for
all), from a person detector (:class:`kinediff.detect.PersonDetector`, ``detector``), or else the
centred square of the image is used. Each box is enlarged as in
training (:data:`~kinediff.core.camera.CROP_SCALE`), cropped to the model's input size, and the
predicted mesh placed in the image's camera (:func:`~kinediff.posturehmr.predict_frames`),
assuming a focal length of ``focal`` pixels (default: the image's longer side, a 53-degree field of
view). Per person it writes the chosen formats (OBJ / PLY / GLB meshes in the camera frame,
metres; an NPZ with the camera, the box and, with ``fit_smpl``, SMPL parameters) and an overlay.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinediff.body import BodyModel
from kinediff.core.camera import CROP_SCALE, crop_intrinsics, crop_square, default_intrinsics
from kinediff.core.checks import check_number
from kinediff.core.images import read_image
from kinediff.core.io import load_json, write_atomic
from kinediff.export import camera_to_world, export_animation, export_mesh, export_npz
from kinediff.posturehmr import PostureHMR, PostureHMRConfig
from kinediff.posturehmr.frames import predict_frames
from kinediff.render import overlay_mesh
from kinediff.training import load_checkpoint, load_model_weights
from kinediff.video import Track, track_boxes
from kinediff.video.predict import fill_gaps, predict_tracks, read_track_file, read_video

__all__ = ["FORMATS", "VIDEO_FORMATS", "VIDEO_SUFFIXES", "check_box", "check_focal",
           "check_video_formats", "load_model", "predict_images", "predict_video_file", "read_boxes"]


def load_model(source: str | os.PathLike, body=None, device: str | torch.device = "cpu"):
    """A :class:`~kinediff.PostureHMR` from a pretrained folder (``PostureHMR.save_pretrained``:
    config, weights and the body's fingerprint, checked against ``body``) or from a Trainer
    checkpoint file (config and weights), in eval mode on ``device``.

    ``body``: the body model it was trained with (default: the synthetic body). A checkpoint
    without a config, or whose weights do not fit, raises ``ValueError`` saying what was expected.
    """

    body = body if body is not None else BodyModel.synthetic()
    if Path(source).is_dir():
        return PostureHMR.from_pretrained(source, body, device)
    data = load_checkpoint(source)
    if "config" not in data:
        raise ValueError(f"{source} holds no PostureHMRConfig: expected a checkpoint written "
                         f"by kinediff.training.Trainer (e.g. <run>/fk/3d_last.pt)")
    config = PostureHMRConfig.from_json(data["config"], str(source)).as_trained()
    if data.get("stage") == "2d":
        raise ValueError(f"{source} is a 2D-stage checkpoint; predict needs the 3D stage's "
                         f"(3d_last.pt)")
    try:
        model = PostureHMR(config, body)
    except ValueError as err:  # a config this body cannot build (hierarchy sizes, markers)
        raise ValueError(f"{source}: {err}") from None
    load_model_weights(model, data["model"], str(source))
    return model.to(device).eval()


#: The files ``kinediff predict --format`` can write per person.
FORMATS = ("obj", "ply", "glb", "npz")


def check_box(box: Sequence[float], where: str = "bbox") -> list[float]:
    """A person box ``(x, y, w, h)`` in pixels as four floats: four finite numbers, the width
    and height positive; else ``ValueError`` starting with ``where``."""
    items = None if isinstance(box, (str, bytes, dict)) or not hasattr(box, "__iter__") else list(box)
    values = None
    if items is not None and len(items) == 4 and not any(isinstance(v, (str, bytes, bool))
                                                         for v in items):
        try:
            values = [float(v) for v in items]
        except (TypeError, ValueError):
            values = None
    if values is None:
        raise ValueError(f"{where} must be four numbers X Y W H (pixels), got {box!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where} must be four finite numbers X Y W H, got {values}")
    if not (values[2] > 0 and values[3] > 0):
        raise ValueError(f"{where} must have a positive width and height (X Y W H), got {values}")
    return values


def check_focal(focal: float | None, where: str = "focal") -> float | None:
    """A focal length in pixels: None (the default) or a finite number > 0 (:func:`check_number`);
    else ``ValueError`` starting with ``where``."""
    return None if focal is None else check_number(focal, where, 0.0, low_open=True, what="pixels")


def read_boxes(path: str | os.PathLike) -> dict[str, list[list[float]]]:
    """Person boxes from a JSON file: ``{"image name or path": [[x, y, w, h], ...], ...}`` (an
    image's file name, stem or path as given on the command line; any number of boxes each).
    Every box is checked (:func:`check_box`): a bad one raises ``ValueError`` naming the file,
    the image's key and the box's index."""

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no boxes file {path}")
    data = load_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{path} must map image names to lists of [x, y, w, h] boxes, e.g. "
                         f'{{"photo.jpg": [[120, 40, 200, 380]]}}')
    return {key: [check_box(box, f"{path}: {key!r} box {i}") for i, box in enumerate(boxes)]
            for key, boxes in data.items()}


def _boxes_for(image: str | os.PathLike, boxes: dict[str, list] | None) -> list | None:
    if boxes is None:
        return None
    p = Path(image)
    for key in (str(image), p.name, p.stem):
        if key in boxes:
            return boxes[key]
    raise ValueError(f"the boxes file has no entry for {image} (keys are image names, stems or "
                     f"paths; give [] for an image without people)")


def _write_atomic_png(path: Path, pixels) -> None:
    """An image file written atomically (a failed write leaves no temporary file behind)."""
    # matplotlib: heavy, imported only where a figure is drawn
    import matplotlib.pyplot as plt

    write_atomic(path, lambda tmp: plt.imsave(tmp, pixels))


def predict_images(images: Sequence[str | os.PathLike], checkpoint: str | os.PathLike,
                   bbox: Sequence[float] | None = None, out_dir: str | os.PathLike = ".",
                   body=None, focal: float | None = None, device: str = "cpu", *,
                   boxes: dict[str, list] | None = None, fit_smpl: bool = False,
                   formats: Sequence[str] = ("obj",), overlay: bool = True,
                   detector=None, make_detector: Callable[[], Any] | None = None
                   ) -> list[dict[str, Any]]:
    """Predict every person of each image and write their files; returns one record per person.

    Args:
        images: image files (PNG, JPEG, ...).
        checkpoint: a pretrained folder or a Trainer checkpoint (as :func:`load_model`).
        bbox: one person box (x, y, w, h) for every image; ``boxes``: per image any number
            (:func:`read_boxes`); neither: the people ``detector`` finds (a
            :class:`kinediff.detect.PersonDetector`; an image where it finds nobody gives no
            record), or without one the centred square of each image. ``make_detector``: a
            function that builds the detector, called once, after the model and the first image
            needing it were read (a detector's weights may take a download).
        out_dir: the output folder. body: the body the model was trained with (default synthetic).
        focal: the images' focal length in pixels (default: the longer side).
        fit_smpl: also fit SMPL parameters to each mesh (:func:`kinediff.fit.fit_smpl`); they go
            into the NPZ.
        formats: of :data:`FORMATS`: ``obj``, ``ply``, ``glb`` (meshes in the image's camera frame,
            metres) and ``npz`` (vertices, faces, joints, the camera and box, and the SMPL
            parameters with ``fit_smpl``). Files are ``<image stem>[_<person>].<format>``.
        overlay: also write ``<stem>[_<person>]_overlay.png``, the mesh drawn over its crop.
    """
    # matplotlib: heavy, imported only where a figure is drawn
    import matplotlib

    matplotlib.use("Agg")

    if isinstance(formats, str):
        raise TypeError(f"formats must be a list of formats such as ['obj', 'npz'], got the string "
                        f"{formats!r}")
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"--format: unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    if bbox is not None and boxes is not None:
        raise ValueError("give one bbox for every image or a boxes file, not both")
    if bbox is not None:
        bbox = check_box(bbox, "bbox")
    check_focal(focal)
    body = body if body is not None else BodyModel.synthetic()
    model = load_model(checkpoint, body, device)
    if model.body.name.startswith("synthetic"):
        print("warning: this model was trained with kinediff's synthetic body, so on synthetic data "
              "only: its meshes for real photos are meaningless")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    faces = model.body.faces.cpu()
    records = []
    for path in images:
        image = read_image(path)  # UnreadableImageError (a ValueError) names an undecodable file
        _, h, w = image.shape
        image_boxes = _boxes_for(path, boxes)
        if image_boxes is None and bbox is None and detector is None and make_detector is not None:
            detector = make_detector()
        if image_boxes is None and bbox is None and detector is not None:
            image_boxes = detector([image])[0].boxes.cpu().tolist()
            if not image_boxes:
                print(f"{path}: the detector found nobody (score >= "
                      f"{detector.config.score_threshold:g}); give --bbox or --boxes")
                continue
        if image_boxes is None:
            m = min(h, w) / CROP_SCALE  # the centred square, once enlarged as every box is
            image_boxes = [list(bbox)] if bbox is not None else [[(w - m) / 2, (h - m) / 2, m, m]]
        for i, (x, y, bw, bh) in enumerate(image_boxes):  # a box must show part of the image
            if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
                raise ValueError(f"{path}: box {i} (X Y W H = {x:g} {y:g} {bw:g} {bh:g}) lies "
                                 f"outside the {w} x {h} image")
            if bw > 100 * max(h, w) or bh > 100 * max(h, w):
                raise ValueError(f"{path}: box {i} (W H = {bw:g} {bh:g}) is more than 100 times "
                                 f"the {w} x {h} image: a box is in the image's pixels")
        K = default_intrinsics(h, w, focal)
        people = predict_frames(model, [image], [image_boxes], K=[K], fit_smpl=fit_smpl)
        stem = Path(path).stem
        for j, person in enumerate(people):
            name = stem if len(people) == 1 else f"{stem}_{j}"
            files: dict[str, str] = {}
            for fmt in formats:
                target = out / f"{name}.{fmt}"
                if fmt == "npz":
                    smpl = None if person.smpl is None else {
                        k: person.smpl[k] for k in ("pose", "betas", "transl")}
                    export_npz(target, person.vertices, faces, smpl=smpl,
                               camera={"K": person.K, "image_size": (h, w)}, joints=person.joints,
                               box=torch.tensor(person.box), transl_body_to_camera=person.transl)
                else:
                    export_mesh(target, person.vertices, faces)
                files[fmt] = str(target)
            if overlay:
                cx, cy, side = person.crop
                view = 256
                crop = crop_square(image, cx, cy, side, view)
                Kv = crop_intrinsics(person.K, cx, cy, side, view).float()
                blended = overlay_mesh(crop[None], person.vertices[None].float(), faces, Kv)[0]
                png = out / f"{name}_overlay.png"
                _write_atomic_png(png, blended.permute(1, 2, 0).clamp(0, 1).numpy())
                files["overlay"] = str(png)
            records.append({"image": str(path), "person": j, "box": person.box, "crop": person.crop,
                            "translation": person.transl.tolist(), "files": files})
    return records


#: The suffixes ``kinediff predict`` reads as videos.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


#: The files ``kinediff predict VIDEO --format`` can write per track: the smoothed parameters and
#: meshes (``npz``), and animations (:func:`kinediff.export.export_animation`): a skinned glTF
#: (``glb-anim``, ``<stem>_track<id>.glb``), a skeleton (``bvh``) and ``fbx`` through Blender.
VIDEO_FORMATS = ("npz", "glb-anim", "bvh", "fbx")
_ANIMATION_SUFFIX = {"glb-anim": ".glb", "bvh": ".bvh", "fbx": ".fbx"}


def check_video_formats(formats: Sequence[str], where: str = "--format") -> list[str]:
    """The per-track formats of a video, checked against :data:`VIDEO_FORMATS`."""
    wanted = [f.strip() for f in formats if f.strip()]
    bad = [f for f in wanted if f not in VIDEO_FORMATS]
    if bad or not wanted:
        raise ValueError(f"{where} for a video takes {', '.join(VIDEO_FORMATS)} (comma-separated), "
                         f"got {', '.join(bad) or 'nothing'}")
    return wanted


def predict_video_file(video: str | os.PathLike, checkpoint: str | os.PathLike,
                       track_file: str | os.PathLike | None = None, out_dir: str | os.PathLike = ".",
                       body=None, focal: float | None = None, device: str = "cpu",
                       smooth: bool = True, min_cutoff: float = 1.0, beta: float = 1.0, *,
                       detector=None, make_detector: Callable[[], Any] | None = None,
                       formats: Sequence[str] = ("npz",), max_gap: int = 5,
                       min_hits: int = 3, iou_threshold: float = 0.3,
                       blender_python: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The people of a video file as smoothed SMPL bodies, one set of files per track.

    People come from ``track_file`` (:func:`kinediff.video.predict.read_track_file`'s JSON, the
    same tracks in every frame; its ``fps`` wins over the video's) or, without one, from
    ``detector`` (a :class:`kinediff.detect.PersonDetector`, or ``make_detector()``, built after
    the video and the model were read) on every frame, linked into
    identities by :func:`kinediff.video.track_boxes` (``max_gap``, ``min_hits``,
    ``iou_threshold``: tracks seen in fewer than ``min_hits`` frames are dropped as spurious).
    Each track is predicted, fitted and smoothed on its own frames
    (:func:`kinediff.video.predict.predict_tracks`).

    Files per track ``j`` (``formats``, :data:`VIDEO_FORMATS`):

    - ``npz``: ``<stem>_track<j>.npz`` with ``frames`` (n,) the frames it was seen in, ``boxes``
      (n, 4), ``pose`` (n, 24, 3), ``betas`` (n, 10), ``transl`` (n, 3), ``vertices`` (n, V, 3) in
      the camera frame, ``faces``, ``times`` (n,) seconds, ``K`` and ``fit_error`` (n,) metres;
    - ``glb-anim``, ``bvh``, ``fbx``: ``<stem>_track<j>.glb`` / ``.bvh`` / ``.fbx``, the track's
      motion from its first frame to its last (missed frames interpolated,
      :func:`kinediff.video.predict.fill_gaps`) turned to a y-up world
      (:func:`kinediff.export.camera_to_world`), keyed from its first frame at the video's rate.
    """
    check_focal(focal)
    wanted = check_video_formats(formats, "formats")
    finders = (track_file is not None) + (detector is not None) + (make_detector is not None)
    if finders != 1:
        raise ValueError("a video needs its people from one source: a track file (--boxes "
                         "TRACK.json) or a person detector (kinediff.detect.PersonDetector)"
                         + ("" if finders == 0 else ", not several"))
    frames, video_fps = read_video(video)
    if track_file is not None:
        boxes, fps = read_track_file(track_file)
        if len(boxes) != len(frames):
            raise ValueError(f"{track_file} gives boxes for {len(boxes)} frames; {video} has "
                             f"{len(frames)}")
        counts = {len(b) for b in boxes}
        if len(counts) != 1 or counts == {0}:
            raise ValueError(f"{track_file}: every frame must give the same, positive number of "
                             f"track boxes; got {sorted(counts)}")
        for f, frame_boxes in enumerate(boxes):
            for k, box in enumerate(frame_boxes):
                check_box(box, f"{track_file}: frame {f} box {k}")
        every = np.arange(len(frames))
        tracks = [Track(j, every, np.array([b[j] for b in boxes], dtype=np.float64),
                        np.full(len(frames), j)) for j in range(counts.pop())]
        fps = fps or video_fps
    body = body if body is not None else BodyModel.synthetic()
    model = load_model(checkpoint, body, device)
    if model.body.name.startswith("synthetic"):
        print("warning: this model was trained with kinediff's synthetic body, so on synthetic data "
              "only: its meshes for real video are meaningless")
    if track_file is None:
        detector = detector if detector is not None else make_detector()
        found = detector.detect(frames, progress=True)
        tracks = track_boxes([d.boxes.cpu().numpy() for d in found], iou_threshold=iou_threshold,
                             max_gap=max_gap, min_hits=min_hits)
        fps = video_fps
        boxes_found = sum(len(d.boxes) for d in found)
        print(f"{video}: {boxes_found} person boxes in {len(frames)} frames, {len(tracks)} tracks")
        if not tracks:
            raise ValueError(
                f"{video}: nobody to predict: the detector found {boxes_found} person boxes (score >= "
                f"{detector.config.score_threshold:g}) in {len(frames)} frames, and no identity was "
                f"seen in {min_hits} frames; lower --detector-threshold or give --boxes TRACK.json")
    _, h, w = frames[0].shape
    K = default_intrinsics(h, w, focal)
    result = predict_tracks(model, frames, tracks, fps=fps, K=K, smooth=smooth,
                            min_cutoff=min_cutoff, beta=beta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    faces = model.body.faces.cpu().numpy()
    records = []
    for track in result:
        stem = f"{Path(video).stem}_track{track.id}"
        files: dict[str, str] = {}
        if "npz" in wanted:
            arrays = {"frames": track.frames, "boxes": track.boxes, "pose": track.pose.numpy(),
                      "betas": track.betas.numpy(), "transl": track.transl.numpy(),
                      "vertices": track.vertices.numpy(), "faces": faces,
                      "times": track.times.numpy(), "K": track.K.numpy(),
                      "fit_error": track.fit_error.numpy()}
            path = out / f"{stem}.npz"
            write_atomic(path, lambda tmp, arrays=arrays: np.savez(tmp, **arrays))
            files["npz"] = str(path)
        animations = [f for f in wanted if f in _ANIMATION_SUFFIX]
        if animations:
            pose, transl = fill_gaps(track.frames, track.pose, track.transl)
            betas = track.betas.double().mean(0).numpy()
            pose, transl = camera_to_world(model.body, pose, betas, transl)
            for fmt in animations:
                path = out / f"{stem}{_ANIMATION_SUFFIX[fmt]}"
                export_animation(path, model.body, pose, betas, transl, fps=fps,
                                 start_frame=int(track.frames[0]), blender_python=blender_python)
                files[fmt] = str(path)
        records.append({"video": str(video), "track": track.id, "frames": len(track.frames),
                        "first_frame": int(track.frames[0]), "last_frame": int(track.frames[-1]),
                        "npz": files.get("npz"), "files": files})
    return records
