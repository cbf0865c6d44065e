"""kinediff.core.checks: every check passes good input and raises its documented message on bad input."""

import re

import numpy as np
import pytest
import torch

from kinediff.core import checks as ck


def raises(exc, message):
    """pytest.raises matching ``message`` literally and in full."""
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


def test_shape_text():
    assert ck.shape_text(("B", "N", 3)) == "(B, N, 3)"
    assert ck.shape_text((4,)) == "(4,)"
    assert ck.shape_text(()) == "()"
    assert ck.shape_text((1, 64, 64)) == str((1, 64, 64))


def test_check_tensor():
    ck.check_tensor(torch.zeros(2), "x")
    with raises(TypeError, "x must be a torch.Tensor, got ndarray"):
        ck.check_tensor(np.zeros(2), "x")
    with raises(TypeError, "x must be a torch.Tensor, got list"):
        ck.check_tensor([1.0], "x")


def test_check_shape():
    ck.check_shape(torch.zeros(2, 5, 2), "verts2d", ("B", "V", 2))
    ck.check_shape(torch.zeros(3), "use_mask", (3,))
    ck.check_shape(torch.zeros(()), "scalar", ())
    with raises(ValueError, "verts2d must have shape (B, V, 2), got (2, 5, 3)"):
        ck.check_shape(torch.zeros(2, 5, 3), "verts2d", ("B", "V", 2))
    with raises(ValueError, "verts2d must have shape (B, V, 2), got (5, 2)"):
        ck.check_shape(torch.zeros(5, 2), "verts2d", ("B", "V", 2))
    with raises(ValueError, "use_mask must have shape (1,), got (2,)"):
        ck.check_shape(torch.zeros(2), "use_mask", (1,))
    with raises(ValueError, "gt_mask must have shape (1, 64, 64), got (1, 32, 32)"):
        ck.check_shape(torch.zeros(1, 32, 32), "gt_mask", (1, 64, 64))


@pytest.mark.parametrize(
    "x, name, shape, message",
    [  # the messages of kinediff.body.kinematics' _check_last (tests/body/test_kinematics.py pins them)
        (torch.zeros(4, 4), "axis_angle", (3,), "axis_angle must have shape (*, 3), got (4, 4)"),
        (torch.zeros(4, 3), "matrix", (3, 3), "matrix must have shape (*, 3, 3), got (4, 3)"),
        (torch.zeros(4, 5), "d6", (6,), "d6 must have shape (*, 6), got (4, 5)"),
        (torch.zeros(23, 3), "rest_joints", (24, 3), "rest_joints must have shape (*, 24, 3), got (23, 3)"),
        (torch.zeros(3), "matrix", (3, 3), "matrix must have shape (*, 3, 3), got (3,)"),
        (torch.zeros(5, 3, 4), "rotmats", (None, 3, 3),
         "rotmats must have shape (*, N, 3, 3), got (5, 3, 4)"),
        (torch.zeros(10, 2), "vertices", (None, 3), "vertices must have shape (*, N, 3), got (10, 2)"),
        (torch.zeros(2, 23, 3, 4), "skinning_transforms", (24, 3, 4),
         "skinning_transforms must have shape (*, 24, 3, 4), got (2, 23, 3, 4)"),
    ],
)
def test_check_last_dims_messages(x, name, shape, message):
    with raises(ValueError, message):
        ck.check_last_dims(x, name, shape)


def test_check_last_dims_accepts_any_leading_dims_and_rejects_non_tensors():
    ck.check_last_dims(torch.zeros(3), "axis_angle", (3,))
    ck.check_last_dims(torch.zeros(2, 7, 3), "axis_angle", (3,))
    ck.check_last_dims(torch.zeros(4, 24, 3, 3), "rotmats", (None, 3, 3))
    ck.check_last_dims(torch.zeros(3, 3), "matrix", (3, 3))
    with raises(TypeError, "d6 must be a torch.Tensor, got ndarray"):
        ck.check_last_dims(np.zeros((4, 6)), "d6", (6,))


def test_check_pair_shape():
    ck.check_pair_shape(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), ("B", "N", 3))
    with raises(ValueError, "pred and gt must both have shape (B, N, 3); got (2, 5, 3) and (2, 4, 3)"):
        ck.check_pair_shape(torch.zeros(2, 5, 3), torch.zeros(2, 4, 3), ("B", "N", 3))
    with raises(ValueError, "pred and gt must both have shape (B, N, 3); got (2, 5, 2) and (2, 5, 2)"):
        ck.check_pair_shape(torch.zeros(2, 5, 2), torch.zeros(2, 5, 2), ("B", "N", 3))
    with raises(ValueError, "vertex_l1: pred and gt must both have shape (B, N, 3); got (5, 3) and (5, 3)"):
        ck.check_pair_shape(torch.zeros(5, 3), torch.zeros(5, 3), ("B", "N", 3), context="vertex_l1")
    with raises(ValueError, "a and b must both have shape (B, 2); got (1, 3) and (1, 2)"):
        ck.check_pair_shape(torch.zeros(1, 3), torch.zeros(1, 2), ("B", 2), names=("a", "b"))


def test_check_same_shape():
    ck.check_same_shape(torch.zeros(1, 4), torch.ones(1, 4), "mask")
    with raises(ValueError, "pred_mesh2d and gt_mesh2d differ in shape: (1, 4, 2) and (1, 5, 2)"):
        ck.check_same_shape(torch.zeros(1, 4, 2), torch.zeros(1, 5, 2), ("pred_mesh2d", "gt_mesh2d"))
    with raises(ValueError, "mask shapes differ: (1, 8, 8) and (1, 8, 9)"):
        ck.check_same_shape(torch.zeros(1, 8, 8), torch.zeros(1, 8, 9), "mask")


def test_check_faces():
    ck.check_faces(torch.tensor([[0, 1, 2]]), 3)
    ck.check_faces(torch.zeros(0, 3, dtype=torch.long), 0)  # no faces: nothing to index
    with raises(ValueError, "faces must have shape (F, 3), got (4,)"):
        ck.check_faces(torch.zeros(4, dtype=torch.long), 3)
    with raises(ValueError, "faces index vertices in [0, 7] but verts2d has 5 vertices"):
        ck.check_faces(torch.tensor([[0, 1, 7]]), 5)
    with raises(ValueError, "faces index vertices in [-1, 2] but vertices has 3 vertices"):
        ck.check_faces(torch.tensor([[-1, 1, 2]]), 3, "vertices")


def test_check_mesh2d():
    ck.check_mesh2d(torch.zeros(2, 3, 2), torch.tensor([[0, 1, 2]]))
    with raises(ValueError, "verts2d must have shape (B, V, 2), got (3, 2)"):
        ck.check_mesh2d(torch.zeros(3, 2), torch.tensor([[0, 1, 2]]))
    with raises(ValueError, "faces must have shape (F, 3), got (1, 4)"):
        ck.check_mesh2d(torch.zeros(2, 3, 2), torch.tensor([[0, 1, 2, 0]]))
    with raises(ValueError, "faces index vertices in [0, 3] but verts2d has 3 vertices"):
        ck.check_mesh2d(torch.zeros(2, 3, 2), torch.tensor([[0, 1, 3]]))


def test_check_image_size():
    assert ck.check_image_size(8) == (8, 8)
    assert ck.check_image_size((4, 6)) == (4, 6)
    assert ck.check_image_size([4, 6]) == (4, 6)
    with raises(ValueError, "image_size must be positive, got 0"):
        ck.check_image_size(0)
    with raises(ValueError, "image_size must be positive, got (4, 0)"):
        ck.check_image_size((4, 0))


def test_check_choice():
    ck.check_choice("auto", "backend", ("torch", "pytorch3d", "auto"))
    with raises(ValueError, "backend must be 'torch', 'pytorch3d' or 'auto', got 'cuda'"):
        ck.check_choice("cuda", "backend", ("torch", "pytorch3d", "auto"))
    with raises(ValueError, "reduction must be 'mean' or 'sum', got 'max'"):
        ck.check_choice("max", "reduction", ("mean", "sum"))
    with raises(ValueError, "mode must be 'a', got 'b'"):
        ck.check_choice("b", "mode", ("a",))
    with raises(ValueError, "reduction must be 'sum' (over xyz) or 'mean', got None"):
        ck.check_choice(None, "reduction", ("sum", "mean"), shown="'sum' (over xyz) or 'mean'")


def test_check_number():
    assert ck.check_number(1e-9, "length_scale", 0.0, low_open=True) == 1e-9
    assert type(ck.check_number(np.float32(0.5), "x")) is float
    with raises(ValueError, "length_scale must be a finite number > 0, got 0"):
        ck.check_number(0, "length_scale", 0.0, low_open=True)
    with raises(ValueError, "length_scale must be a finite number > 0, got nan"):
        ck.check_number(float("nan"), "length_scale", 0.0, low_open=True)
    with raises(ValueError, "sigma must be a finite number > 0 (for a differentiable render loss), got -1.0"):
        ck.check_number(-1.0, "sigma", 0.0, low_open=True, what="for a differentiable render loss")
    with raises(ValueError, "sigma must be a finite number >= 0, got -1"):
        ck.check_number(-1, "sigma", 0.0)
    with raises(ValueError, "rate must be a finite number in [0, 1), got 1.0"):
        ck.check_number(1.0, "rate", 0.0, 1.0, high_open=True)
    for bad in (True, "1", None, float("inf")):
        with raises(ValueError, f"x must be a finite number, got {bad!r}"):
            ck.check_number(bad, "x")


def test_check_int():
    assert ck.check_int(1, "width") == 1
    assert type(ck.check_int(np.int64(3), "width")) is int
    with raises(ValueError, "max_elements must be an integer >= 1, got 0"):
        ck.check_int(0, "max_elements")
    with raises(ValueError, "width must be an integer >= 1 (pixels), got 0"):
        ck.check_int(0, "width", what="pixels")
    with raises(ValueError, "posture_steps must be an integer >= 1, got 0.5"):
        ck.check_int(0.5, "posture_steps")
    with raises(ValueError, "dim must be an integer in [1, 2048], got 4096"):
        ck.check_int(4096, "dim", 1, 2048)
    with raises(ValueError, "level must be an integer, got True"):
        ck.check_int(True, "level", None)
