"""Whole video, no boxes: person detection + tracking + prediction (fit and smoothing included), in
frames per second, on each device; and whether OpenCV's HOG people detector could stand in for a
detector without weights.

- detection: :class:`kinediff.detect.PersonDetector` against the same torchvision model called
  bare, on the same 480 x 640 frames (ratio kinediff / torchvision: the wrapper's own cost), for the
  default Faster R-CNN ResNet50-FPN v2 and the MobileNet one. Random weights: the computation of
  COCO weights is the same, the boxes are not (timing only);
- tracking: :func:`kinediff.video.track_boxes` on 10 people x 300 frames of boxes;
- prediction: :func:`kinediff.video.predict.predict_tracks` (crop, network, SMPL fit, One Euro) on
  the video demo's synthetic clip (2 people), the tiny config and the library default;
- HOG: ``cv2.HOGDescriptor`` with its default people detector on the same synthetic clip (and the
  clip upscaled 2x): recall and precision at IoU >= 0.5 against the clip's true boxes, against a
  detector's usual >= 90 % recall on such clear, upright, unoccluded-most-of-the-time people.

    python benchmarks/bench_video.py [--frames 24] [--repeats 3] [--json PATH]

Synthetic data throughout: the figures are costs, and HOG's recall on synthetic renders.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from _timing import devices, median_seconds, write_json

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.apps.video_demo import walking_clip
from kinediff.body import BodyModel
from kinediff.detect import PersonDetector
from kinediff.video import Track, box_iou, track_boxes
from kinediff.video.predict import predict_tracks


def detection_rows(device: torch.device, repeats: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    frames = [torch.rand(3, 480, 640, generator=g).to(device) for _ in range(2)]
    for name in ("fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn"):
        torch.manual_seed(0)
        det = PersonDetector(name, weights=None).to(device)
        bare = det.net  # the same torchvision model, called directly

        def ours():
            det(frames)

        def theirs():
            with torch.no_grad():
                bare(frames)

        t_ours = median_seconds(ours, device, repeats)
        t_bare = median_seconds(theirs, device, repeats)
        rows.append({"stage": f"detection ({name}, 480x640)", "device": device.type,
                     "fps": len(frames) / t_ours, "peer_fps": len(frames) / t_bare,
                     "ratio": t_ours / t_bare})
    return rows


def tracking_row() -> dict:
    rng = np.random.default_rng(0)
    start = rng.uniform(0, 600, size=(10, 2))
    speed = rng.uniform(-3, 3, size=(10, 2))
    boxes = [np.concatenate([start + speed * f, np.full((10, 2), [40, 90])], 1) for f in range(300)]
    t0 = time.perf_counter()
    tracks = track_boxes(boxes)
    seconds = time.perf_counter() - t0
    return {"stage": f"tracking (10 people, 300 frames, {len(tracks)} tracks)", "device": "cpu",
            "fps": 300 / seconds, "peer_fps": None, "ratio": None}


def prediction_rows(device: torch.device, clip: dict, body, repeats: int) -> list[dict]:
    rows = []
    frames = [f.to(device) for f in clip["frames"]]
    t = len(frames)
    tracks = [Track(j, np.arange(t), clip["boxes"][:, j].numpy().astype(np.float64),
                    np.zeros(t, dtype=np.int64)) for j in range(2)]
    for label, cfg in (("tiny", PostureHMRConfig.tiny()), ("default", PostureHMRConfig())):
        torch.manual_seed(0)
        model = PostureHMR(cfg, body).to(device).eval()

        def run():
            predict_tracks(model, frames, tracks, fps=clip["fps"], K=clip["K"].to(device))

        seconds = median_seconds(run, device, repeats if label == "tiny" else 1, warmup=1)
        rows.append({"stage": f"prediction + fit + smoothing ({label} config, 2 people)",
                     "device": device.type, "fps": t / seconds, "peer_fps": None, "ratio": None})
    return rows


def hog_rows(clip: dict) -> list[dict]:
    try:
        import cv2  # OpenCV: not a kinediff dependency, measured here only
    except ImportError:
        return [{"hog": "opencv not installed (pip install 'opencv-python-headless<5')"}]
    if not hasattr(cv2, "HOGDescriptor"):  # OpenCV 5 moved it out of the main package
        return [{"hog": f"OpenCV {cv2.__version__} has no HOGDescriptor (4.x has)"}]
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    pixels = (clip["frames"].permute(0, 2, 3, 1) * 255).round().byte().numpy()
    truth = clip["boxes"].numpy()
    rows = []
    for scale in (1, 2):
        hits = found_total = 0
        t0 = time.perf_counter()
        for f, image in enumerate(pixels):
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            if scale != 1:
                bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            rects, _ = hog.detectMultiScale(bgr, winStride=(4, 4), padding=(8, 8), scale=1.05)
            boxes = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / scale
            found_total += len(boxes)
            if len(boxes):
                iou = box_iou(truth[f], boxes)
                hits += int((iou.max(1) >= 0.5).sum())
        seconds = time.perf_counter() - t0
        people = truth.shape[0] * truth.shape[1]
        rows.append({"hog_scale": scale, "recall": hits / people,
                     "precision": hits / found_total if found_total else 0.0,
                     "boxes": found_total, "people": people, "fps": len(pixels) / seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    body = BodyModel.synthetic()
    clip = walking_clip(body, args.frames)
    rows = []
    for device in devices():
        rows += detection_rows(device, args.repeats)
        rows += prediction_rows(device, clip, body, args.repeats)
    rows.append(tracking_row())
    print("| stage | device | frames/s | torchvision alone (frames/s) | kinediff / torchvision time |")
    print("|---|---|---|---|---|")
    for r in rows:
        peer = f"{r['peer_fps']:.2f}" if r["peer_fps"] else "-"
        ratio = f"{r['ratio']:.3f}" if r["ratio"] else "-"
        print(f"| {r['stage']} | {r['device']} | {r['fps']:.2f} | {peer} | {ratio} |")
    print("\nthe whole path per frame (detection + tracking + prediction, 2 people), frames/s:")
    track = next(r for r in rows if r["stage"].startswith("tracking"))
    for det in (r for r in rows if r["stage"].startswith("detection")):
        for pred in (r for r in rows if r["stage"].startswith("prediction")
                     and r["device"] == det["device"]):
            fps = 1 / (1 / det["fps"] + 1 / track["fps"] + 1 / pred["fps"])
            name = det["stage"].split("(")[1].split(",")[0]
            config = pred["stage"].split("(")[1].split(" config")[0]
            print(f"  {det['device']}: {name} + {config} config: {fps:.2f}")
            rows.append({"stage": f"whole path ({name}, {config} config)", "device": det["device"],
                         "fps": fps, "peer_fps": None, "ratio": None})
    hog = hog_rows(clip)
    print("\nOpenCV HOG people detector on the synthetic clip (IoU >= 0.5 against the true boxes):")
    for r in hog:
        if "hog" in r:
            print(r["hog"])
            continue
        print(f"  frames x{r['hog_scale']}: recall {r['recall']:.2f}, precision {r['precision']:.2f} "
              f"({r['boxes']} boxes for {r['people']} people), {r['fps']:.1f} frames/s")
    write_json(rows + [dict(r, stage="hog") for r in hog], args.json)


if __name__ == "__main__":
    main()
