"""The headline functions and classes carry a short runnable ``Example:`` in their docstring;
each is run here (doctest), so the examples cannot drift from the code."""

from __future__ import annotations

import doctest

import pytest

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.body import BodyModel, forward_kinematics, linear_blend_skinning
from kinediff.core.config import Config, Configurable
from kinediff.decoders import M2PDecoder
from kinediff.detect import PersonDetector
from kinediff.export import InferenceGraph, export_animation, export_mesh, export_npz
from kinediff.fit import fit_smpl
from kinediff.forward import FKSchedule
from kinediff.losses import trimap_iou_loss
from kinediff.mesh import MeshHierarchy
from kinediff.metrics import Evaluator
from kinediff.render import soft_silhouette
from kinediff.video import OneEuroFilter, SMPLSmoother, smooth_smpl

HEADLINERS = [forward_kinematics, linear_blend_skinning, FKSchedule, soft_silhouette, trimap_iou_loss,
              M2PDecoder, MeshHierarchy.from_body, Evaluator, PostureHMR.predict, BodyModel,
              Configurable, Config.update, PostureHMRConfig,
              OneEuroFilter, SMPLSmoother, smooth_smpl, export_mesh, export_npz, InferenceGraph,
              fit_smpl, export_animation, PersonDetector]


@pytest.mark.parametrize("obj", HEADLINERS, ids=lambda o: o.__qualname__)
def test_docstring_example_runs(obj, synthetic_path, cache_dir):
    tests = [t for t in doctest.DocTestFinder(recurse=False).find(obj, obj.__qualname__)
             if t.examples]
    assert tests, f"{obj.__qualname__} has no Example: block"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
