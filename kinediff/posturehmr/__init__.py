"""``PostureHMR``: the paper's pipeline (Fig. 2) composed from kinediff's components, and its config.

- :mod:`kinediff.posturehmr.config`: :class:`PostureHMRConfig` (the composition, with the
  components' nested configs), :data:`PAPER_PATH`, Table 3's rows (:func:`table3_configs`).
- :mod:`kinediff.posturehmr.model`: the :class:`PostureHMR` module (2D stage, reverse process,
  up-sampling; the two training stages' losses; prediction; pretrained folders).
- :mod:`kinediff.posturehmr.frames`: :func:`predict_frames`, people in whole images placed in the
  image's camera frame.
"""

from kinediff.posturehmr.config import (
    MOVED_FIELDS,
    NESTED_CONFIGS,
    NOISE_BETAS,
    PAPER_PATH,
    REVERSE_PROCESS_OPTIONS,
    SCHEDULE_OPTIONS,
    TABLE3_ROWS,
    PostureHMRConfig,
    table3_configs,
)
from kinediff.posturehmr.frames import PersonPrediction, predict_frames
from kinediff.posturehmr.model import PostureHMR

__all__ = ["MOVED_FIELDS", "NESTED_CONFIGS", "NOISE_BETAS", "PAPER_PATH", "REVERSE_PROCESS_OPTIONS",
           "SCHEDULE_OPTIONS", "TABLE3_ROWS", "PersonPrediction", "PostureHMR", "PostureHMRConfig",
           "predict_frames", "table3_configs"]
