"""Robustness of the body model's inputs (marker ``robust``, harness :mod:`robust`): what
test_body_model.py and ../test_compile.py do not already check with exact messages (a sheared
rotation matrix, axis-angles at float32's and float64's range, an infinite translation, a NumPy
pose)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from robust import INF, expect, refusal

pytestmark = pytest.mark.robust


def _sheared() -> dict:
    pose = torch.eye(3).expand(1, 24, 3, 3).clone()
    pose[0, 5, 0, 1] = 0.7
    return {"pose": pose}


def _angle(angle: float, dtype: torch.dtype) -> dict:
    pose = torch.zeros(1, 24, 3, dtype=dtype)
    pose[0, 4, 0] = angle
    return {"pose": pose}


#: name -> (the body's arguments, what the message names, the body in float64)
BODY_FAULTS = {
    "rotmats:shear": (_sheared, [("pose", "rotation")], False),
    "axis_angle:3e38": (lambda: _angle(3e38, torch.float32), [("pose",)], False),
    "axis_angle:1e300_float64": (lambda: _angle(1e300, torch.float64), [("pose",)], True),
    "transl:inf": (lambda: {"pose": torch.zeros(1, 24, 3), "transl": torch.tensor([[0.0, INF, 0.0]])},
                   [("transl",)], False),
    "pose:numpy": (lambda: {"pose": np.zeros((1, 24, 3), np.float32)}, [("pose",)], False),
}


@pytest.mark.parametrize("case", BODY_FAULTS)
def test_a_bad_body_input_is_refused_naming_it(body32, case):
    make, names, double = BODY_FAULTS[case]
    body = copy.deepcopy(body32).double() if double else body32
    expect(refusal(lambda: body(**make()), names))
