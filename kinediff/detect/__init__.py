"""Person detection in whole images and video frames (needs torchvision: ``pip install
'kinediff[detect]'``).

Public names: :class:`PersonDetector` (torchvision's COCO detectors, :data:`DETECTORS`),
:class:`Detections`, :data:`PERSON_LABEL`, :func:`detector_weights_file`
(:mod:`kinediff.detect.people`). Boxes come as (x, y, w, h) image pixels, as
:func:`kinediff.video.track_boxes` takes them.
"""

from kinediff.detect.people import (
    DETECTORS,
    PERSON_LABEL,
    Detections,
    PersonDetector,
    detector_weights_file,
)

__all__ = ["DETECTORS", "PERSON_LABEL", "Detections", "PersonDetector", "detector_weights_file"]
