"""``kinediff predict``: meshes for a user's own images from a pretrained model folder
(``PostureHMR.save_pretrained``) or a Trainer checkpoint.

kinediff has no person detector: give each image's person box (``bbox``), or the centred square of
the image is used. The box is enlarged as in training (:data:`~kinediff.data.crops.CROP_SCALE`),
cropped to the model's input size, and the predicted mesh is placed in the crop's camera by the
translation that best fits its own 2D mesh (:func:`~kinediff.render.fit_translation`), assuming a
focal length of ``focal`` pixels in the original image (default: the image's longer side, a
53-degree field of view). Per image it writes ``<name>.obj`` (camera frame, metres) and
``<name>_overlay.png``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from kinediff.data.images import read_image  # re-exported: its home is kinediff.data

__all__ = ["load_model", "predict_images", "read_image"]


def load_model(source: str | os.PathLike | None = None, body=None,
               device: str | torch.device = "cpu", *, checkpoint: str | os.PathLike | None = None):
    """A :class:`~kinediff.PostureHMR` from a pretrained folder (``PostureHMR.save_pretrained``:
    config, weights and the body's fingerprint, checked against ``body``) or from a Trainer
    checkpoint file (config and weights), in eval mode on ``device``.

    ``body``: the body model it was trained with (default: the synthetic body). A checkpoint
    without a config, or whose weights do not fit, raises ``ValueError`` saying what was expected.
    ``checkpoint=``: the argument's name before kinediff 0.2 (deprecated).
    """
    if checkpoint is not None:
        import warnings

        if source is not None:
            raise TypeError("give the model as source (checkpoint= is its deprecated name), not both")
        warnings.warn("load_model(checkpoint=...) is now load_model(source=...) (a pretrained folder "
                      "or a checkpoint file)", DeprecationWarning, stacklevel=2)
        source = checkpoint
    if source is None:
        raise TypeError("load_model needs source: a pretrained folder or a Trainer checkpoint")
    from kinediff.body import BodyModel
    from kinediff.posturehmr import PostureHMR, PostureHMRConfig
    from kinediff.training import load_checkpoint, load_model_weights

    body = body if body is not None else BodyModel.synthetic()
    if Path(source).is_dir():
        return PostureHMR.from_pretrained(source, body, device)
    data = load_checkpoint(source)
    if "config" not in data:
        raise ValueError(f"{source} holds no PostureHMRConfig: expected a checkpoint written "
                         f"by kinediff.training.Trainer (e.g. <run>/fk/3d_last.pt)")
    # the HRNet initialisation file is not part of a trained model (the weights replace it)
    config = PostureHMRConfig.from_json(data["config"])
    config = replace(config, head=replace(config.head, pretrained=None))
    if data.get("stage") == "2d":
        raise ValueError(f"{source} is a 2D-stage checkpoint; predict needs the 3D stage's "
                         f"(3d_last.pt)")
    model = PostureHMR(config, body)
    load_model_weights(model, data["model"], str(source))
    return model.to(device).eval()


def predict_images(images: Sequence[str | os.PathLike], checkpoint: str | os.PathLike,
                   bbox: Sequence[float] | None = None, out_dir: str | os.PathLike = ".",
                   body=None, focal: float | None = None, device: str = "cpu") -> list[dict[str, Any]]:
    """Predict and write an OBJ and an overlay PNG per image; returns one record per image.
    ``checkpoint``: a pretrained folder or a Trainer checkpoint (as :func:`load_model`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import trimesh

    from kinediff.data.crops import box_to_square, crop_intrinsics, crop_square
    from kinediff.render import fit_translation, overlay_mesh

    model = load_model(checkpoint, body, device)
    size = model.config.image_size
    out = Path(out_dir)
    records = []
    for path in images:
        image = read_image(path)
        out.mkdir(parents=True, exist_ok=True)
        _, h, w = image.shape
        if bbox is not None:
            if len(bbox) != 4:
                raise ValueError(f"bbox must be X Y W H, got {list(bbox)}")
            x, y, bw, bh = bbox
            if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
                raise ValueError(f"bbox {list(bbox)} lies outside the {w} x {h} image {path}")
            cx, cy, side = box_to_square((x, y, bw, bh))
        else:
            cx, cy, side = w / 2, h / 2, float(min(h, w))
        crop = crop_square(image, cx, cy, side, size)
        f = float(focal) if focal is not None else float(max(h, w))
        K_full = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
        K = crop_intrinsics(K_full, cx, cy, side, size)
        pred = model.predict(crop[None].to(device))
        verts = pred["vertices"].cpu()
        if pred["mesh2d"] is not None:
            transl = fit_translation(model.hierarchy.downsample(verts), pred["mesh2d"].cpu(), K)
        else:  # image-feature models have no 2D mesh: a 2 m tall body filling the crop
            transl = torch.tensor([[0.0, 0.0, float(K[0, 0]) * 2.0 / size]])
        cam = verts + transl[:, None]
        stem = Path(path).stem
        obj = out / f"{stem}.obj"
        trimesh.Trimesh(cam[0].numpy(), model.body.faces.cpu().numpy(), process=False).export(obj)
        view = 256
        Kv = K.clone()
        Kv[:2] *= view / size
        big = torch.nn.functional.interpolate(crop[None], size=(view, view), mode="bilinear",
                                              align_corners=False)
        blended = overlay_mesh(big, cam, model.body.faces.cpu(), Kv)[0]
        png = out / f"{stem}_overlay.png"
        plt.imsave(png, blended.permute(1, 2, 0).clamp(0, 1).numpy())
        records.append({"image": str(path), "obj": str(obj), "overlay": str(png),
                        "crop": (cx, cy, side), "translation": transl[0].tolist()})
    return records
