"""The layer below every component: what they all share.

- :mod:`kinediff.core.checks`: the one check vocabulary (arguments, tensors, config fields).
- :mod:`kinediff.core.config`: the one config mechanism (the constructor is the config) and the
  saved-config format.
- :mod:`kinediff.core.io`: files (atomic writes, the cache, JSON, load errors).
- :mod:`kinediff.core.arrays`, :mod:`kinediff.core.images`, :mod:`kinediff.core.video`: reading
  NumPy and MATLAB files, images and video frames, each failure named and sizes bounded.
- :mod:`kinediff.core.conventions`: joint sets and maps, genders, keypoint regressors.
- :mod:`kinediff.core.camera`: projection, placing a mesh in an image, crops, intrinsics.
- :mod:`kinediff.core.version`: ``__version__``.

Nothing here imports any other part of kinediff (``tests/test_layers.py`` checks the layer order).
"""
