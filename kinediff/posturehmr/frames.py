"""Full-frame prediction: people in whole images, in the image's camera frame.

:meth:`PostureHMR.predict <kinediff.PostureHMR.predict>` works on crops and returns body-frame
meshes. :func:`predict_frames` takes whole images and person boxes (any number per image), crops
each person as in training (the box's longer side enlarged by
:data:`~kinediff.core.camera.CROP_SCALE`), predicts them in one batch, and places each mesh in its
image's camera: the translation whose projection through the crop's intrinsics best fits the
model's own 2D mesh (least squares, :func:`~kinediff.render.fit_translation`). The crop's
intrinsics and the image's describe the same camera (a pixel shift and scale), so the placed mesh
is in the full image's camera frame and projects through the image's ``K``.

Without a ``K``, the focal length defaults to the image's longer side in pixels (a 53-degree field
of view, :func:`default_intrinsics`) and the principal point to the image centre: the mesh's shape
and pose do not depend on it, its depth and so its translation do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kinediff.core.camera import (
    box_to_square,
    crop_intrinsics,
    crop_square,
    default_intrinsics,
    fit_translation,
    project_points,
)
from kinediff.fit import fit_smpl as fit

__all__ = ["PersonPrediction", "predict_frames"]


@dataclass
class PersonPrediction:
    """One person of :func:`predict_frames`.

    Attributes:
        image: the index of the person's image.
        box: the given (x, y, w, h) box, pixels.
        crop: (centre x, centre y, side) of the square crop, pixels.
        vertices: (V, 3) the mesh in the image's camera frame, metres.
        joints: (J, 3) the body's joints (``J_regressor`` of the mesh), same frame.
        transl: (3,) the translation that placed the body-frame mesh.
        K: (3, 3) the image's intrinsics used.
        mesh2d: (N, 2) the model's 2D coarse mesh in image pixels (None for image-feature models).
        fit_error_px: the mean distance in image pixels between the placed coarse mesh's projection
            and the model's 2D mesh (how well one translation explains it).
        smpl: with ``fit_smpl=True`` the fitted SMPL parameters in the camera frame (``pose``
            (24, 3), ``betas`` (10,), ``transl`` (3,)), their mesh ``vertices`` (V, 3) and the
            fit's mean vertex ``error`` (metres); else None.
    """

    image: int
    box: tuple[float, float, float, float]
    crop: tuple[float, float, float]
    vertices: torch.Tensor
    joints: torch.Tensor
    transl: torch.Tensor
    K: torch.Tensor
    mesh2d: torch.Tensor | None
    fit_error_px: float | None
    smpl: dict[str, torch.Tensor] | None = field(default=None)


def _check_box(box: Any, where: str, height: int, width: int) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: a box is (x, y, w, h) in pixels, got {box!r}") from None
    if not all(map(torch.isfinite, torch.tensor([x, y, w, h]))):
        raise ValueError(f"{where}: box {box!r} is not finite")
    if w <= 0 or h <= 0:
        raise ValueError(f"{where}: box {box!r} is empty (width and height must be positive)")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(f"{where}: box {box!r} lies outside the {width} x {height} image")
    return x, y, w, h


def predict_frames(model, images: Sequence[torch.Tensor] | torch.Tensor,
                   boxes: Sequence[Sequence[Sequence[float]]],
                   K: Sequence[torch.Tensor | None] | torch.Tensor | None = None,
                   fit_smpl: bool = False, batch_size: int = 32) -> list[PersonPrediction]:
    """Every boxed person of whole images, in the images' camera frames.

    Args:
        model: a :class:`~kinediff.PostureHMR` (eval mode is the caller's choice).
        images: whole images, each (3, H, W) float in [0, 1] (sizes may differ), or a (B, 3, H, W)
            tensor.
        boxes: per image a list of person boxes (x, y, w, h) in pixels (an empty list: nobody).
        K: per image its (3, 3) intrinsics, or None for :func:`default_intrinsics`; one (3, 3)
            tensor for all, or None.
        fit_smpl: also fit SMPL parameters to each mesh (:func:`kinediff.fit.fit_smpl`).
        batch_size: crops per forward pass.

    Returns:
        one :class:`PersonPrediction` per box, in image order then box order.
    """
    if isinstance(images, torch.Tensor):
        if images.dim() != 4:
            raise ValueError(f"images must be (B, 3, H, W) or a list of (3, H, W), got "
                             f"{tuple(images.shape)}")
        images = list(images)
    images = list(images)
    if len(boxes) != len(images):
        raise ValueError(f"boxes must give one list of boxes per image: {len(images)} images, "
                         f"{len(boxes)} lists")
    if K is None or isinstance(K, torch.Tensor):
        Ks: list[torch.Tensor | None] = [K] * len(images)
    else:
        Ks = list(K)
        if len(Ks) != len(images):
            raise ValueError(f"K must be one (3, 3) matrix or one per image: {len(images)} images, "
                             f"{len(Ks)} matrices")
    size = model.config.image_size
    crops, meta = [], []
    for i, (image, image_boxes) in enumerate(zip(images, boxes)):
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"image {i} must be (3, H, W) RGB in [0, 1], got {shape}")
        if not image.is_floating_point():
            raise ValueError(f"image {i} has dtype {image.dtype}: give floats in [0, 1] (e.g. "
                             f"image.float() / 255 for 8-bit images)")
        _, h, w = image.shape
        k_full = Ks[i]
        k_full = default_intrinsics(h, w) if k_full is None else torch.as_tensor(k_full).double()
        if k_full.shape != (3, 3) or not torch.isfinite(k_full).all() or not k_full[0, 0] > 0 \
                or not k_full[1, 1] > 0:
            raise ValueError(f"K of image {i} must be a finite (3, 3) matrix with positive focal "
                             f"lengths, got {k_full.tolist()}")
        for j, box in enumerate(image_boxes):
            box = _check_box(box, f"image {i} box {j}", h, w)
            cx, cy, side = box_to_square(box)
            crops.append(crop_square(image.float(), cx, cy, side, size))
            meta.append((i, box, (cx, cy, side), k_full, crop_intrinsics(k_full, cx, cy, side, size)))
    if not crops:
        return []
    device = next(model.parameters()).device
    people: list[PersonPrediction] = []
    with torch.no_grad():
        for start in range(0, len(crops), batch_size):
            part = meta[start:start + batch_size]
            batch = torch.stack(crops[start:start + batch_size]).to(device)
            pred = model.predict(batch)
            verts = pred["vertices"].double().cpu()
            k_crop = torch.stack([m[4] for m in part])
            coarse = model.hierarchy.downsample(pred["vertices"]).double().cpu()  # on the model's device
            if pred["mesh2d"] is not None:
                m2d = pred["mesh2d"].double().cpu()
                transl = fit_translation(coarse, m2d, k_crop)
            else:  # image-feature models have no 2D mesh: a 2 m tall body filling the crop
                m2d = None
                transl = torch.stack([torch.tensor([0.0, 0.0, float(k[0, 0]) * 2.0 / size],
                                                   dtype=torch.float64) for k in k_crop])
            cam = verts + transl[:, None]
            joints = torch.einsum("jv,bvc->bjc", model.body.J_regressor.double().cpu(), cam)
            for b, (i, box, crop, k_full, _) in enumerate(part):
                error, m2d_full = None, None
                if m2d is not None:
                    # crop pixels -> image pixels: the inverse of the crop's affine map
                    cx, cy, side = crop
                    m2d_full = m2d[b] * side / size + torch.tensor([cx - side / 2, cy - side / 2],
                                                                   dtype=torch.float64)
                    placed = project_points(coarse[b:b + 1] + transl[b], k_full,
                                            torch.zeros(1, 3, dtype=torch.float64))[0]
                    error = float((placed - m2d_full).norm(dim=-1).mean())
                people.append(PersonPrediction(i, box, crop, cam[b], joints[b], transl[b],
                                               k_full, m2d_full, error))
    if fit_smpl:
        body = model.body
        verts = torch.stack([p.vertices for p in people]).to(body.v_template)
        result = fit(verts, body)
        for i, p in enumerate(people):
            p.smpl = {"pose": result.pose[i].detach().cpu(), "betas": result.betas[i].detach().cpu(),
                      "transl": result.transl[i].detach().cpu(),
                      "vertices": result.vertices[i].detach().double().cpu(),
                      "error": float(result.error[i])}
    return people
