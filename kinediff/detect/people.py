"""People in whole images: boxes and scores from one of torchvision's COCO detection models.

Why torchvision's: its detection code is BSD-licensed, well kept and already installed beside torch
(kinediff's Makefile installs it; ``pip install 'kinediff[detect]'`` pulls it in), and its COCO
weights come through its own cache. ultralytics' YOLO models are AGPL-licensed, a licence a
library cannot impose on its users by default; OpenCV's built-in HOG people detector needs no
download but finds too few of the people in kinediff's synthetic clips to stand in
(``benchmarks/bench_video.py`` measures it).

Weights, in this order of preference: a local file (``weights="path/to/file.pth"``, a state dict
in torchvision's layout, or a dict holding one under ``"model"`` as torchvision's reference
scripts save it), or ``weights="coco"``: torchvision's COCO weights from its cache
(``$TORCH_HOME/hub/checkpoints``), downloaded from torchvision's URL when missing. With neither at
hand, the error names both. ``weights=None`` builds the model with random weights (tests).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from kinediff.core.checks import FilePath, Number, OneOf, Optional, check_int
from kinediff.core.config import Configurable
from kinediff.core.io import first_line

__all__ = ["DETECTORS", "PERSON_LABEL", "Detections", "PersonDetector", "detector_weights_file"]

#: torchvision's detection models kinediff runs, by name: (weights enum, keyword of the model's
#: own score threshold, number of classes).
DETECTORS: dict[str, tuple[str, str, int]] = {
    "fasterrcnn_resnet50_fpn_v2": ("FasterRCNN_ResNet50_FPN_V2_Weights", "box_score_thresh", 91),
    "fasterrcnn_mobilenet_v3_large_fpn": ("FasterRCNN_MobileNet_V3_Large_FPN_Weights",
                                          "box_score_thresh", 91),
    "retinanet_resnet50_fpn_v2": ("RetinaNet_ResNet50_FPN_V2_Weights", "score_thresh", 91),
    "keypointrcnn_resnet50_fpn": ("KeypointRCNN_ResNet50_FPN_Weights", "box_score_thresh", 2),
    "ssdlite320_mobilenet_v3_large": ("SSDLite320_MobileNet_V3_Large_Weights", "score_thresh", 91),
}
#: The label of a person in these models' outputs (COCO's category 1).
PERSON_LABEL = 1


class Detections(NamedTuple):
    """The people found in one image, highest score first.

    Attributes:
        boxes: (N, 4) float32 boxes (x, y, w, h) in image pixels (x right, y down from the top-left
            corner), as :func:`kinediff.video.track_boxes` and ``kinediff predict --boxes`` take.
        scores: (N,) float32 in [0, 1].
    """

    boxes: torch.Tensor
    scores: torch.Tensor


def _weights_enum(model: str):
    # torchvision: an optional dependency (kinediff[detect]), imported where a detector is built
    try:
        import torchvision
    except ImportError:
        raise ImportError("person detection needs torchvision: pip install 'kinediff[detect]'") from None
    return torchvision.models.get_weight(f"{DETECTORS[model][0]}.DEFAULT")


def detector_weights_file(model: str = "fasterrcnn_resnet50_fpn_v2") -> tuple[Path, str]:
    """Where torchvision keeps ``model``'s COCO weights and where it downloads them from:
    (``$TORCH_HOME/hub/checkpoints/<file>``, the URL). Copy the file there on a machine without
    internet, or pass it as ``weights=``."""
    url = _weights_enum(model).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def _read_state(path: str) -> dict[str, torch.Tensor]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no detector weights file {file}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError, KeyError,
            TypeError) as err:  # torch.load's errors for a file that is not one of its own
        raise ValueError(f"{file} is not a torch weights file: {type(err).__name__}: {err}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # torchvision's reference scripts save {"model": ..., ...}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{file} must hold a state dict (names to tensors) in torchvision's layout")
    return state


def _coco_state(model: str) -> dict[str, torch.Tensor]:
    cached, url = detector_weights_file(model)
    if cached.is_file():
        try:
            return _read_state(str(cached))
        except ValueError as err:
            raise ValueError(f"{err}; delete it to download it again from {url}") from None
    try:
        return torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True,
                                                  weights_only=True)
    except (OSError, RuntimeError, ValueError) as err:  # no network (URLError is an OSError), a
        # proxy, a partial download or a wrong hash: all the same to the user
        raise FileNotFoundError(
            f"no weights for the person detector {model}: torchvision's COCO weights are not in its "
            f"cache ({cached}) and could not be downloaded from {url} ({type(err).__name__}: {err}). "
            f"Either download that file into {cached.parent}, or pass a local file: "
            f"PersonDetector(weights='FILE') / kinediff predict --detector-weights FILE") from None


class PersonDetector(Configurable, nn.Module):
    """People in whole images (a torchvision COCO detector; module docstring for the choice).

    Args:
        model: one of :data:`DETECTORS` (default ``"fasterrcnn_resnet50_fpn_v2"``: box AP 46.7 on
            COCO by torchvision's model table, the most accurate of them; the MobileNet and SSDlite
            ones are faster on a CPU).
        weights: ``"coco"`` (torchvision's, from its cache or URL), a local state-dict file, or
            None (random weights: tests and timing only).
        score_threshold: keep people scoring at least this, in [0, 1] (0.5).

    Configurable (:mod:`kinediff.core.config`): ``detector.config`` holds every argument.

    Shape: images, a list of (3, H_i, W_i) float tensors in [0, 1] (sizes may differ) or one
    (B, 3, H, W) tensor -> a list of B :class:`Detections`, on the detector's device.

    Example:
        >>> import torch
        >>> from kinediff.detect import PersonDetector
        >>> _ = torch.manual_seed(0)
        >>> detector = PersonDetector("ssdlite320_mobilenet_v3_large", weights=None).eval()
        >>> found = detector([torch.rand(3, 240, 320)])
        >>> found[0].boxes.shape[1], found[0].boxes.dtype
        (4, torch.float32)
    """

    def __init__(self, model: Annotated[str, OneOf(*DETECTORS)] = "fasterrcnn_resnet50_fpn_v2",
                 weights: Annotated[str | None, Optional(FilePath())] = "coco",
                 score_threshold: Annotated[float, Number(0.0, 1.0)] = 0.5) -> None:
        super().__init__()
        c = self.config
        _, threshold_key, classes = DETECTORS[c.model]
        _weights_enum(c.model)  # torchvision present, or the extra named
        import torchvision  # optional dependency (kinediff[detect]): checked just above

        self.net = torchvision.models.get_model(c.model, weights=None, weights_backbone=None,
                                                num_classes=classes,
                                                **{threshold_key: c.score_threshold})
        if c.weights is not None:
            state = _coco_state(c.model) if c.weights == "coco" else _read_state(c.weights)
            source = "torchvision's COCO weights" if c.weights == "coco" else c.weights
            try:
                missing, unused = self.net.load_state_dict(state, strict=False)
            except RuntimeError as err:  # tensors of the right names but other shapes
                lines = [line.strip() for line in str(err).splitlines()]
                detail = next((line for line in lines if "size mismatch" in line),
                              first_line(str(err)))
                raise ValueError(f"{source} do not fit {c.model}: {detail} (a "
                                 f"detector fine-tuned with other classes? kinediff runs the COCO "
                                 f"layouts of DETECTORS)") from None
            if missing or unused:
                raise ValueError(f"{source} do not fit {c.model}: {len(missing)} tensors missing "
                                 f"(first: {list(missing)[:3]}), {len(unused)} unused (first: "
                                 f"{list(unused)[:3]})")
        self.score_threshold = c.score_threshold
        self.eval()

    def forward(self, images: Sequence[torch.Tensor] | torch.Tensor) -> list[Detections]:
        """The people of each image (class docstring for the shapes).

        Raises:
            ValueError: not a list of (3, H, W) float tensors or a (B, 3, H, W) tensor; an
                integer image (divide uint8 images by 255); NaN or inf.
        """
        batch = list(images) if isinstance(images, torch.Tensor) and images.dim() == 4 else images
        if isinstance(batch, (torch.Tensor, str, bytes)) or not isinstance(batch, Sequence):
            raise ValueError(f"images must be a list of (3, H, W) tensors or one (B, 3, H, W) tensor, "
                             f"got {type(images).__name__}"
                             f"{' of shape ' + str(tuple(images.shape)) if torch.is_tensor(images) else ''}")
        weights = next(self.net.parameters())
        device, dtype = weights.device, weights.dtype
        checked = []
        for i, image in enumerate(batch):
            if not torch.is_tensor(image) or image.dim() != 3 or image.shape[0] != 3 \
                    or min(image.shape[1:]) < 1:
                shape = tuple(image.shape) if torch.is_tensor(image) else type(image).__name__
                raise ValueError(f"image {i} must be a (3, H, W) tensor, got {shape}")
            if not image.is_floating_point():
                raise ValueError(f"image {i} must be float in [0, 1], got {image.dtype} (divide "
                                 f"uint8 images by 255)")
            if not torch.isfinite(image).all():
                raise ValueError(f"image {i} holds NaN or inf")
            checked.append(image.to(device=device, dtype=dtype))
        if not checked:
            return []
        with torch.no_grad():
            outputs = self.net(checked)
        found = []
        for out in outputs:
            keep = (out["labels"] == PERSON_LABEL) & (out["scores"] >= self.score_threshold)
            boxes, scores = out["boxes"][keep].float(), out["scores"][keep].float()
            order = scores.argsort(descending=True)
            xyxy = boxes[order]
            xywh = torch.cat([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1)
            found.append(Detections(xywh, scores[order]))
        return found

    def detect(self, images: Sequence[torch.Tensor], batch_size: int = 4,
               progress: bool = False) -> list[Detections]:
        """:meth:`forward` over many images (the frames of a video), ``batch_size`` at a time,
        with a progress bar when ``progress``."""
        size = check_int(batch_size, "batch_size", 1)
        found: list[Detections] = []
        for start in tqdm(range(0, len(images), size), desc="detecting people", unit="batch",
                          disable=not progress):
            found.extend(self(list(images[start:start + size])))
        return found
