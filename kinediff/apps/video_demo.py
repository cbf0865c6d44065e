"""``kinediff demo --video``: a whole synthetic video, no boxes given, into Blender.

A short clip of two synthetic people walking across each other (the nearer one hides the other
while they cross) is rendered with kinediff's rasterizer; the people are found in every frame
(a :class:`~kinediff.detect.PersonDetector` when its weights are at hand, otherwise the clip's own
boxes, said so on screen), linked into identities (:func:`~kinediff.video.track_boxes`),
predicted, fitted with SMPL and smoothed per identity
(:func:`~kinediff.video.predict.predict_tracks`), and written as animations
(:func:`~kinediff.export.export_animation`). The output folder holds:

- ``clip.mp4``: the synthetic input (with PyAV; ``clip.gif`` otherwise);
- ``demo.gif``: side by side, the frame with each identity's box in its colour, and the fitted,
  smoothed bodies drawn over it in the same colours; ``demo.png``: its first, middle and last
  frames, one above the other;
- ``clip_track<j>.glb`` and ``.bvh``: each identity's motion (Blender: File > Import > glTF 2.0);
- ``results.json``: the tracks, identity switches against the clip's truth, and the time of each
  stage.

Everything here is synthetic: the people, the model (trained for a minute or two on SynthBody
unless ``model`` is given) and so its meshes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from kinediff.apps.predict import load_model
from kinediff.apps.quickstart import QuickstartSettings, quickstart_configs
from kinediff.body import BodyModel
from kinediff.body.rotations import matrix_to_axis_angle
from kinediff.core.checks import check_int
from kinediff.core.io import write_atomic
from kinediff.data import SynthBody
from kinediff.data.limits import root_orientation
from kinediff.data.synthetic import part_colors
from kinediff.detect import PersonDetector
from kinediff.export import camera_to_world, export_animation
from kinediff.posturehmr import PostureHMR
from kinediff.render.zbuffer import render_flat
from kinediff.training import Trainer
from kinediff.video import box_iou, track_boxes
from kinediff.video.predict import fill_gaps, predict_tracks

__all__ = ["IDENTITY_COLORS", "count_identity_switches", "run_video_demo", "walking_clip"]

#: RGB in [0, 1] of identities 0, 1, 2, ... (repeating).
IDENTITY_COLORS = ((0.95, 0.35, 0.20), (0.20, 0.55, 0.95), (0.30, 0.80, 0.35), (0.90, 0.75, 0.15))


def _walk_poses(frames: int, fps: float, phase: float, dtype=torch.float32) -> torch.Tensor:
    """(T, 24, 3) a walking cycle (about 1 Hz): hips and knees, arms down and swinging."""
    t = torch.arange(frames, dtype=dtype) / fps
    swing = torch.sin(2 * math.pi * 0.9 * t + phase)
    pose = torch.zeros(frames, 24, 3, dtype=dtype)
    pose[:, 1, 0] = -0.5 * swing  # L_hip about x
    pose[:, 2, 0] = 0.5 * swing
    pose[:, 4, 0] = 0.7 * (0.5 + 0.5 * swing)  # knees bend as the leg swings back
    pose[:, 5, 0] = 0.7 * (0.5 - 0.5 * swing)
    pose[:, 16, 2] = -1.2  # arms down
    pose[:, 17, 2] = 1.2
    pose[:, 16, 1] = 0.35 * swing  # and swinging against the legs
    pose[:, 17, 1] = 0.35 * swing
    return pose


def walking_clip(body, frames: int = 24, fps: float = 12.0, size: int = 256, seed: int = 0
                 ) -> dict[str, Any]:
    """Two people walking across each other, rendered.

    Person 0 walks right 4 m from the camera; person 1 walks left 5.5 m away, hidden behind
    person 0 while they cross. Shapes from ``seed``.

    Returns:
        dict with ``frames`` (T, 3, S, S) in [0, 1], ``boxes`` (T, 2, 4) each person's true box
        (x, y, w, h; the whole body, hidden parts included), ``K`` (3, 3), ``pose`` (T, 2, 24, 3),
        ``betas`` (2, 10) and ``transl`` (T, 2, 3) in the camera frame, ``fps``.
    """
    g = torch.Generator().manual_seed(seed)
    dtype = body.v_template.dtype
    betas = (0.8 * torch.randn(2, body.num_betas, generator=g)).clamp(-2, 2).to(dtype)
    t = torch.linspace(0, 1, frames, dtype=dtype)
    people = []
    for p, (depth, start, end, yaw) in enumerate(((4.0, -1.3, 1.3, math.pi / 2),
                                                   (5.5, 1.5, -1.5, -math.pi / 2))):
        pose = _walk_poses(frames, fps, phase=1.7 * p, dtype=dtype)
        root = root_orientation(torch.tensor([yaw], dtype=dtype), torch.zeros(1, dtype=dtype),
                                torch.zeros(1, dtype=dtype))
        pose[:, 0] = matrix_to_axis_angle(root)[0]
        b = betas[p][None].expand(frames, -1)
        with torch.no_grad():
            rest = body(pose, b)
        pelvis = rest.joints[:, 0]
        target = torch.stack([start + (end - start) * t, torch.full_like(t, 0.1),
                              torch.full_like(t, depth)], 1)
        people.append({"pose": pose, "transl": target - pelvis, "vertices": rest.vertices + (
            target - pelvis)[:, None]})
    K = torch.tensor([[1.2 * size, 0, size / 2], [0, 1.2 * size, size / 2], [0, 0, 1]], dtype=dtype)
    faces = body.faces
    nv = body.num_vertices
    colors = part_colors(body).to(dtype)
    tints = torch.tensor([[1.0, 0.85, 0.8], [0.8, 0.9, 1.0]], dtype=dtype)
    both_faces = torch.cat([faces, faces + nv])
    both_colors = torch.cat([colors * tints[0], colors * tints[1]]).clamp(0, 1)
    ramp = torch.linspace(0, 1, size, dtype=dtype)
    background = torch.stack([0.55 + 0.2 * ramp[:, None].expand(size, size),
                              0.60 + 0.1 * ramp[None, :].expand(size, size),
                              torch.full((size, size), 0.55, dtype=dtype)])
    verts = torch.cat([people[0]["vertices"], people[1]["vertices"]], 1)
    images = []
    for start in range(0, frames, 8):
        chunk = verts[start:start + 8]
        img, _ = render_flat(chunk, both_faces, K, both_colors, size,
                             background[None].expand(len(chunk), -1, -1, -1),
                             torch.tensor([0.3, 0.5, 1.0], dtype=dtype))
        images.append(img)
    uv = torch.stack([p["vertices"] for p in people], 1)  # (T, 2, V, 3)
    pix = (uv @ K.T)[..., :2] / (uv @ K.T)[..., 2:]
    lo, hi = pix.amin(2), pix.amax(2)
    boxes = torch.cat([lo, hi - lo], -1)
    return {"frames": torch.cat(images).float().clamp(0, 1), "boxes": boxes.float(), "K": K.float(),
            "pose": torch.stack([p["pose"] for p in people], 1),
            "transl": torch.stack([p["transl"] for p in people], 1), "betas": betas, "fps": fps}


def count_identity_switches(tracks, truth: np.ndarray, iou: float = 0.5) -> int:
    """Identity switches against the true boxes ``truth`` (T, P, 4): per true person, how often
    the track covering it (the one whose box overlaps it at IoU >= ``iou``) changes from one
    covered frame to the next."""
    switches = 0
    for p in range(truth.shape[1]):
        last = None
        for f in range(truth.shape[0]):
            best, best_iou = None, iou
            for track in tracks:
                at = np.flatnonzero(track.frames == f)
                if at.size:
                    value = float(box_iou(track.boxes[at[0]][None], truth[f, p][None])[0, 0])
                    if value >= best_iou:
                        best, best_iou = track.id, value
            if best is not None:
                switches += int(last is not None and best != last)
                last = best
    return switches


def _train_model(body, steps_2d: int, steps_3d: int, n_train: int, out: Path, seed: int,
                 progress: bool) -> PostureHMR:
    """The quickstart's tiny FK model, trained briefly on SynthBody (synthetic)."""
    s = QuickstartSettings(n_train=n_train, steps_2d=steps_2d, steps_3d=steps_3d)
    cfg = quickstart_configs(s)["fk"]
    data = SynthBody(n_train, seed=2 * seed + 1, body=body, image_size=cfg.image_size,
                     mesh_factors=cfg.mesh_factors, yaw_range=s.yaw_range, cache=True,
                     progress=progress)
    torch.manual_seed(seed)
    model = PostureHMR(cfg, body)
    model.init_coefficients(data.batch(range(min(len(data), 256))))
    for stage, steps in (("2d", steps_2d), ("3d", steps_3d)):
        Trainer(model, stage, data, out / "model", epochs=10_000, max_steps=steps, seed=seed,
                progress=progress, tensorboard=False).fit()
    return model.eval()


def _draw_boxes(image: np.ndarray, boxes: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with each (identity, box) drawn as a 2-pixel frame."""
    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    for ident, (x, y, w, h) in boxes:
        color = tuple(int(255 * c) for c in IDENTITY_COLORS[ident % len(IDENTITY_COLORS)])
        draw.rectangle([x, y, x + w, y + h], outline=color, width=2)
        draw.text((x + 3, y + 2), f"#{ident}", fill=color)
    return np.asarray(im)


def run_video_demo(out_dir: str | Path = "kinediff-video-demo", seed: int = 0, frames: int = 24,
                   fps: float = 12.0, model: str | Path | None = None,
                   detector_weights: str | Path | None = None,
                   detector: str = "fasterrcnn_mobilenet_v3_large_fpn", steps_2d: int = 150,
                   steps_3d: int = 200, n_train: int = 1024, progress: bool = True,
                   log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the video demo (module docstring); returns what ``results.json`` holds.

    Args:
        out_dir: the output folder.
        seed: the clip's shapes and the training's seed.
        frames, fps: the clip's length and rate.
        model: a pretrained folder or 3D-stage checkpoint (as ``kinediff predict --model`` /
            ``--checkpoint``; e.g. the quickstart's ``kinediff-quickstart/fk/3d_last.pt``); None
            trains the quickstart's tiny model for ``steps_2d`` + ``steps_3d`` steps on
            ``n_train`` SynthBody crops.
        detector_weights: a weights file for ``detector``; None tries torchvision's COCO weights
            (cache, then URL) and, without them, uses the clip's own boxes.
    """
    frames = check_int(frames, "frames", 2, 600)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    body = BodyModel.synthetic()
    clip = walking_clip(body, frames, fps, seed=seed)
    timings["clip_s"] = time.perf_counter() - t0
    images = clip["frames"]
    pixels = (images.permute(0, 2, 3, 1) * 255).round().byte().numpy()
    log(f"[1/5] a synthetic clip: {frames} frames at {fps:g} fps, two people crossing "
        f"({_write_clip(out, pixels, fps)})")

    t0 = time.perf_counter()
    found, source = _people(images, detector, detector_weights, clip["boxes"], log)
    timings["detection_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tracks = track_boxes(found, min_hits=3)
    timings["tracking_s"] = time.perf_counter() - t0
    switches = count_identity_switches(tracks, clip["boxes"].numpy())
    log(f"[2/5] people from {source}: {sum(len(b) for b in found)} boxes -> {len(tracks)} "
        f"identities, {switches} identity switches against the clip's truth")

    t0 = time.perf_counter()
    if model is None:
        log(f"[3/5] no --model: training the quickstart's tiny model for {steps_2d} + {steps_3d} "
            f"steps on SynthBody (synthetic; pass the quickstart's checkpoint to skip this)")
        net = _train_model(body, steps_2d, steps_3d, n_train, out, seed, progress)
    else:
        log(f"[3/5] model: {model}")
        net = load_model(model, body)
    timings["model_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = predict_tracks(net, list(images), tracks, fps=fps, K=clip["K"])
    timings["prediction_s"] = time.perf_counter() - t0
    log(f"[4/5] predicted, fitted and smoothed {sum(len(r.frames) for r in result)} bodies in "
        f"{timings['prediction_s']:.1f} s ({len(images) / timings['prediction_s']:.2f} frames/s)")

    files = {"clip": str(next(out.glob("clip.*")))}
    for track in result:
        pose, transl = fill_gaps(track.frames, track.pose, track.transl)
        betas = track.betas.double().mean(0).numpy()
        pose, transl = camera_to_world(body, pose, betas, transl)
        for suffix in (".glb", ".bvh"):
            path = out / f"clip_track{track.id}{suffix}"
            export_animation(path, body, pose, betas, transl, fps=fps,
                             start_frame=int(track.frames[0]))
            files[f"track{track.id}{suffix}"] = str(path)
    gif, png = _side_by_side(out / "demo.gif", pixels, result, body, clip["K"], fps)
    files["gif"], files["png"] = str(gif), str(png)
    log(f"[5/5] {files['gif']}: boxes and fitted bodies in each identity's colour; "
        f"{len(result)} animations (.glb for Blender, .bvh)")
    results = {"data": "synthetic clip, synthetic body", "people_from": source,
               "frames": frames, "fps": fps,
               "tracks": [{"id": r.id, "frames": [int(f) for f in r.frames],
                           "fit_error_mm": float(r.fit_error.mean()) * 1000} for r in result],
               "identity_switches": switches, "timings": timings, "files": files,
               "model": "trained here (synthetic, briefly)" if model is None else str(model)}
    write_atomic(out / "results.json", lambda tmp: tmp.write_text(json.dumps(results, indent=2)))
    for key, path in files.items():
        log(f"  {key}: {path}")
    return results


def _people(images: torch.Tensor, detector: str, weights, truth: torch.Tensor, log
            ) -> tuple[list[np.ndarray], str]:
    """Per frame the person boxes, and where they came from."""
    try:
        net = PersonDetector(detector, weights=str(weights) if weights is not None else "coco")
    except (FileNotFoundError, ImportError, ValueError) as err:  # missing, no torchvision, corrupt
        if weights is not None:
            raise
        log(f"note: no person detector at hand ({str(err).split('. Either')[0]}); using the "
            f"clip's own boxes instead")
        return [b.numpy() for b in truth], "the clip's known boxes (no detector weights at hand)"
    found = net.detect(list(images), progress=True)
    return [d.boxes.cpu().numpy() for d in found], f"the {detector} detector"


def _write_clip(out: Path, pixels: np.ndarray, fps: float) -> str:
    """``clip.mp4`` with PyAV, else ``clip.gif``; returns the file's name."""
    try:
        import av  # PyAV (kinediff[video]): optional
    except ImportError:
        _gif(out / "clip.gif", pixels, fps)
        return str(out / "clip.gif")
    path = out / "clip.mp4"

    def write(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = pixels.shape[2], pixels.shape[1], "yuv420p"
            for image in pixels:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    write_atomic(path, write)
    return str(path)


def _gif(path: Path, pixels: np.ndarray, fps: float) -> Path:
    first, *rest = [Image.fromarray(p) for p in pixels]
    return write_atomic(path, lambda tmp: first.save(tmp, format="GIF", save_all=True,
                                                     append_images=rest,
                                                     duration=round(1000 / fps), loop=0))


def _side_by_side(path: Path, pixels: np.ndarray, result, body, K: torch.Tensor,
                  fps: float) -> tuple[Path, Path]:
    """The GIF: left the frame and each identity's box, right the fitted bodies over it; and a
    PNG of its first, middle and last frames."""
    t, size = pixels.shape[0], pixels.shape[1]
    left, right = [], []
    colors = torch.tensor(IDENTITY_COLORS)
    shade = part_colors(body) * 0.35 + 0.65
    for f in range(t):
        boxes, verts, face_colors = [], [], []
        for track in result:
            at = np.flatnonzero(track.frames == f)
            if at.size:
                boxes.append((track.id, track.boxes[at[0]]))
                verts.append(track.vertices[at[0]].float())
                face_colors.append(shade * colors[track.id % len(colors)])
        left.append(_draw_boxes(pixels[f], boxes))
        frame = torch.from_numpy(pixels[f]).permute(2, 0, 1).float() / 255 * 0.5
        if verts:
            nv = body.num_vertices
            faces = torch.cat([body.faces + k * nv for k in range(len(verts))])
            img, _ = render_flat(torch.cat(verts)[None], faces, K, torch.cat(face_colors).clamp(0, 1),
                                 size, frame[None])
            frame = img[0]
        right.append((frame.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy())
    both = np.concatenate([np.stack(left), np.stack(right)], axis=2)
    strip = np.concatenate([both[0], both[t // 2], both[-1]], axis=0)
    png = write_atomic(path.with_suffix(".png"),
                       lambda tmp: Image.fromarray(strip).save(tmp, format="PNG"))
    return _gif(path, both, fps), png
