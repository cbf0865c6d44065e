"""``PostureHMR``: the paper's pipeline (Fig. 2) composed from kinediff's components, and its config.

- :mod:`kinediff.posturehmr.config`: :class:`PostureHMRConfig` (the composition, with the
  components' own configs nested), Table 3's rows (:func:`table3_configs`).
- :mod:`kinediff.posturehmr.model`: the :class:`PostureHMR` module (2D stage, reverse process,
  up-sampling; the two training stages' losses; prediction; pretrained folders).
- :mod:`kinediff.posturehmr.frames`: :func:`predict_frames`, people in whole images placed in the
  image's camera frame.
- :mod:`kinediff.posturehmr.pretrained`: the shareable pretrained folder (never SMPL data).
"""

from kinediff.posturehmr.config import CONDITIONS, TABLE3_ROWS, PostureHMRConfig, table3_configs
from kinediff.posturehmr.frames import PersonPrediction, predict_frames
from kinediff.posturehmr.model import DEGENERATE_RADIUS_PX, PostureHMR

__all__ = ["CONDITIONS", "DEGENERATE_RADIUS_PX", "TABLE3_ROWS", "PersonPrediction", "PostureHMR",
           "PostureHMRConfig", "predict_frames", "table3_configs"]
