"""The functional kinematics core: rotations, FK, LBS, blend shapes."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import kinediff.body
from kinediff.body import kinematics, lbs_blocks
from kinediff.body.blendshapes import blend_offsets, pose_features, pose_offsets, shape_offsets
from kinediff.body.kinematics import forward_kinematics
from kinediff.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from kinediff.body.skeleton import kinematic_levels
from kinediff.body.skinning import (
    linear_blend_skinning,
    linear_blend_skinning_affine,
    linear_blend_skinning_reference,
)
from kinediff.core.conventions import SMPL_PARENTS

vec3 = st.tuples(*[st.floats(-3.0, 3.0, allow_nan=False)] * 3)


@given(vec3)
def test_axis_angle_round_trip(v):
    aa = torch.tensor([v], dtype=torch.float64)
    angle = aa.norm()
    if angle > math.pi - 1e-3:  # keep within the principal range where the inverse is unique
        aa = aa / angle * (math.pi - 1e-3)
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    assert torch.allclose(back, aa, atol=1e-6)


@given(vec3)
def test_rotation_matrices_are_orthonormal(v):
    r = axis_angle_to_matrix(torch.tensor(v, dtype=torch.float64))
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.det(r).item() == pytest.approx(1.0, abs=1e-12)


def test_axis_angle_leading_dims():
    aa = torch.randn(2, 5, 24, 3, generator=torch.Generator().manual_seed(0))
    assert axis_angle_to_matrix(aa).shape == (2, 5, 24, 3, 3)
    assert matrix_to_axis_angle(axis_angle_to_matrix(aa)).shape == (2, 5, 24, 3)


@given(vec3)
def test_6d_round_trip(v):
    r = axis_angle_to_matrix(torch.tensor(v, dtype=torch.float64))
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(r)), r, atol=1e-12)


def test_6d_of_arbitrary_input_is_a_rotation():
    d6 = torch.randn(100, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = rotation_6d_to_matrix(d6)
    eye = torch.eye(3, dtype=torch.float64).expand(100, 3, 3)
    assert torch.allclose(r @ r.transpose(-1, -2), eye, atol=1e-12)
    assert torch.allclose(torch.det(r), torch.ones(100, dtype=torch.float64))


def _reference_fk(rotmats, joints, parents):
    """Joint-by-joint FK with 4x4 matrices: the textbook definition."""
    g = [None] * len(parents)
    for j, p in enumerate(parents):
        local = torch.eye(4, dtype=rotmats.dtype)
        local[:3, :3] = rotmats[j]
        local[:3, 3] = joints[j] - (joints[p] if p >= 0 else 0)
        g[j] = local if p < 0 else g[p] @ local
    return torch.stack(g)


def test_forward_kinematics_matches_textbook_definition():
    gen = torch.Generator().manual_seed(2)
    rot = axis_angle_to_matrix(torch.randn(24, 3, generator=gen, dtype=torch.float64))
    joints = torch.randn(24, 3, generator=gen, dtype=torch.float64)
    ref = _reference_fk(rot, joints, SMPL_PARENTS)
    out = forward_kinematics(rot, joints, SMPL_PARENTS)
    assert torch.allclose(out.global_transforms, ref, atol=1e-12)
    assert torch.allclose(out.joints, ref[:, :3, 3], atol=1e-12)
    # skinning transform of joint j maps the rest joint j onto the posed joint j
    moved = (out.skinning_transforms[:, :, :3] @ joints[:, :, None])[..., 0] + out.skinning_transforms[:, :, 3]
    assert torch.allclose(moved, out.joints, atol=1e-12)


@given(st.integers(0, 2**31 - 1))
def test_bone_lengths_are_invariant_under_fk(seed):
    gen = torch.Generator().manual_seed(seed)
    rot = axis_angle_to_matrix(torch.randn(3, 24, 3, generator=gen, dtype=torch.float64) * 2)
    joints = torch.randn(24, 3, generator=gen, dtype=torch.float64)
    posed = forward_kinematics(rot, joints, SMPL_PARENTS).joints
    par = torch.tensor([max(p, 0) for p in SMPL_PARENTS])
    rest_len = (joints - joints[par]).norm(dim=-1)
    posed_len = (posed - posed[:, par]).norm(dim=-1)
    assert torch.allclose(posed_len, rest_len.expand_as(posed_len), atol=1e-12)


def test_lbs_identity_and_rigid_motion():
    gen = torch.Generator().manual_seed(3)
    v = torch.randn(2, 50, 3, generator=gen, dtype=torch.float64)
    w = torch.rand(50, 24, generator=gen, dtype=torch.float64)
    w = w / w.sum(1, keepdim=True)
    eye = torch.eye(3, 4, dtype=torch.float64).expand(2, 24, 3, 4)
    assert torch.allclose(linear_blend_skinning(v, w, eye), v)
    r = axis_angle_to_matrix(torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64))
    t = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    same = torch.cat([r, t[:, None]], 1).expand(2, 24, 3, 4)
    assert torch.allclose(linear_blend_skinning(v, w, same), v @ r.T + t, atol=1e-12)


def test_skinning_reference_is_the_weighted_sum_of_rigid_motions():
    """The reference, v'_i = sum_j w_ij [R_j | t_j] [v_i; 1], against the sum written out vertex by
    vertex with homogeneous 4x4 matrices; leading dims broadcast as in linear_blend_skinning."""
    gen = torch.Generator().manual_seed(12)
    n, v, j = 2, 20, 5
    pts = torch.randn(n, v, 3, generator=gen, dtype=torch.float64)
    w = torch.rand(v, j, generator=gen, dtype=torch.float64)
    w = w / w.sum(1, keepdim=True)
    rot = axis_angle_to_matrix(torch.randn(n, j, 3, generator=gen, dtype=torch.float64))
    tf = torch.cat([rot, torch.randn(n, j, 3, 1, generator=gen, dtype=torch.float64)], -1)
    homo = torch.cat([tf, torch.tensor([0.0, 0, 0, 1], dtype=torch.float64).expand(n, j, 1, 4)], -2)
    expected = torch.stack([torch.stack([
        sum(w[i, k] * homo[b, k] for k in range(j)) @ torch.cat([pts[b, i], pts.new_ones(1)])
        for i in range(v)]) for b in range(n)])[..., :3]
    torch.testing.assert_close(linear_blend_skinning_reference(pts, w, tf), expected, atol=1e-12, rtol=0)
    one_rest = linear_blend_skinning_reference(pts[0], w, tf)  # one rest shape, n transform sets
    torch.testing.assert_close(one_rest[1], linear_blend_skinning_reference(pts[0], w, tf[1]))
    assert one_rest.shape == (n, v, 3)


def test_blend_shapes_are_linear():
    gen = torch.Generator().manual_seed(4)
    dirs = torch.randn(30, 3, 10, generator=gen, dtype=torch.float64)
    b1, b2 = torch.randn(2, 1, 10, generator=gen, dtype=torch.float64)
    assert torch.allclose(shape_offsets(b1 + b2, dirs),
                          shape_offsets(b1, dirs) + shape_offsets(b2, dirs))
    assert torch.allclose(shape_offsets(b1, dirs)[0], torch.einsum("k,vck->vc", b1[0], dirs))
    rot = axis_angle_to_matrix(torch.zeros(1, 24, 3, dtype=torch.float64))
    posedirs = torch.randn(207, 30 * 3, generator=gen, dtype=torch.float64)
    assert torch.count_nonzero(pose_offsets(rot, posedirs)) == 0


def test_kinematic_levels_of_smpl():
    levels = kinematic_levels(SMPL_PARENTS)
    assert sorted(j for level in levels for j in level) == list(range(1, 24))
    assert levels[0] == [1, 2, 3]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: axis_angle_to_matrix(torch.zeros(4, 4)), r"\(\*, 3\)"),
        (lambda: matrix_to_axis_angle(torch.zeros(4, 3)), r"\(\*, 3, 3\)"),
        (lambda: rotation_6d_to_matrix(torch.zeros(4, 5)), r"\(\*, 6\)"),
        (lambda: forward_kinematics(torch.zeros(24, 3, 3), torch.zeros(23, 3), SMPL_PARENTS),
         r"rest_joints must have shape \(\*, 24, 3\)"),
        (lambda: forward_kinematics(torch.zeros(5, 3, 3), torch.zeros(5, 3), SMPL_PARENTS),
         "parents has 24 entries"),
        (lambda: linear_blend_skinning(torch.zeros(10, 3), torch.zeros(9, 24),
                                       torch.zeros(24, 3, 4)), r"weights must have shape \(10, J\)"),
        (lambda: shape_offsets(torch.zeros(1, 11), torch.zeros(5, 3, 10)), "11 coefficients"),
        (lambda: pose_offsets(torch.zeros(1, 24, 3, 3), torch.zeros(200, 30)), r"\(207, V\*3\)"),
        (lambda: kinematic_levels([0, -1]), "parents\\[0\\] must be -1"),
        (lambda: kinematic_levels([-1, 2, 0]), "joint 1 has parent 2"),
    ],
)
def test_bad_inputs_name_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_affine_skinning_equals_materialised_rest_shapes():
    gen = torch.Generator().manual_seed(5)
    v, j, b, m = 300, 24, 3, 4
    base = torch.randn(v, 3, generator=gen, dtype=torch.float64)
    offsets = torch.randn(b, v, 3, generator=gen, dtype=torch.float64)
    coeffs = torch.rand(b, m, generator=gen, dtype=torch.float64)
    w = torch.rand(v, j, generator=gen, dtype=torch.float64)
    w = w / w.sum(1, keepdim=True)
    rot = axis_angle_to_matrix(torch.randn(b, m, j, 3, generator=gen, dtype=torch.float64))
    tf = torch.cat([rot, torch.randn(b, m, j, 3, 1, generator=gen, dtype=torch.float64)], -1)
    rest = base + coeffs[..., None, None] * offsets[:, None]
    expected = linear_blend_skinning(rest, w, tf)
    assert torch.allclose(linear_blend_skinning_affine(base, offsets, coeffs, w, tf), expected,
                          atol=1e-12)
    posedirs = torch.randn(207, v * 3, generator=gen, dtype=torch.float64) * 0.01
    feats = pose_features(rot)
    with_pose = linear_blend_skinning(rest + pose_offsets(rot, posedirs), w, tf)
    assert torch.allclose(linear_blend_skinning_affine(base, offsets, coeffs, w, tf, posedirs, feats),
                          with_pose, atol=1e-12)
    with pytest.raises(ValueError, match="both posedirs and pose_feats"):
        linear_blend_skinning_affine(base, offsets, coeffs, w, tf, posedirs)
    with pytest.raises(ValueError, match=r"coeffs must have shape \(3, M\)"):
        linear_blend_skinning_affine(base, offsets, coeffs[:2], w, tf)
    with pytest.raises(ValueError, match=r"skinning_transforms must have shape \(3, 4, 24, 3, 4\)"):
        linear_blend_skinning_affine(base, offsets, coeffs, w, tf[:, :3])


@pytest.mark.parametrize("influences", [1, 3, 24])
def test_fast_and_autograd_skinning_paths_agree(influences, monkeypatch, region_weights):
    """Without gradients on CPU, skinning takes a buffer-reusing path whose GEMM spans only the
    joints that move each chunk; it must equal the autograd path and a dense reference."""
    # blocks of one group of meshes (one sample's M meshes), chunks of 50 vertices
    monkeypatch.setattr(lbs_blocks, "skinning_blocks", lambda n, v, group, *args: (group, 50))
    gen = torch.Generator().manual_seed(7)
    v, j, n = 700, 24, 5
    w = region_weights(v, j, influences, gen)
    rot = axis_angle_to_matrix(torch.randn(n, j, 3, generator=gen, dtype=torch.float64))
    tf = torch.cat([rot, torch.randn(n, j, 3, 1, generator=gen, dtype=torch.float64)], -1)
    pts = torch.randn(n, v, 3, generator=gen, dtype=torch.float64)
    reference = linear_blend_skinning_reference(pts, w, tf)
    fast = linear_blend_skinning(pts, w, tf, backend="torch")
    slow = linear_blend_skinning(pts.clone().requires_grad_(), w, tf)
    assert slow.requires_grad and not fast.requires_grad
    torch.testing.assert_close(fast, reference, atol=1e-12, rtol=0)
    torch.testing.assert_close(slow.detach(), reference, atol=1e-12, rtol=0)
    base, offsets = pts[0], pts[1:3] - pts[0]
    coeffs = torch.rand(2, 3, generator=gen, dtype=torch.float64)
    tf2 = tf[:2, None].expand(2, 3, j, 3, 4).contiguous()
    fast = linear_blend_skinning_affine(base, offsets, coeffs, w, tf2, backend="torch")
    slow = linear_blend_skinning_affine(base, offsets.clone().requires_grad_(), coeffs, w, tf2)
    torch.testing.assert_close(fast, slow.detach(), atol=1e-12, rtol=0)
    # with per-mesh pose-corrective offsets (the exact blend): both paths equal skinning the
    # materialised rest shapes base + c * offsets + feats @ posedirs
    posedirs = torch.randn(6, 3 * v, generator=gen, dtype=torch.float64)
    feats = torch.randn(2, 3, 6, generator=gen, dtype=torch.float64)
    rest = (base + coeffs[..., None, None] * offsets[:, None]
            + (feats @ posedirs).unflatten(-1, (v, 3)))
    reference = linear_blend_skinning(rest, w, tf2)
    fast = linear_blend_skinning_affine(base, offsets, coeffs, w, tf2, posedirs, feats,
                                        backend="torch")
    slow = linear_blend_skinning_affine(base, offsets, coeffs, w, tf2, posedirs,
                                        feats.clone().requires_grad_())
    torch.testing.assert_close(fast, reference, atol=1e-12, rtol=0)
    torch.testing.assert_close(slow.detach(), reference, atol=1e-12, rtol=0)


def test_chunked_skinning_matches_one_chunk(monkeypatch):
    gen = torch.Generator().manual_seed(6)
    v = 1000
    pts = torch.randn(50, v, 3, generator=gen, dtype=torch.float64)
    w = torch.rand(v, 24, generator=gen, dtype=torch.float64)
    tf = torch.randn(50, 24, 3, 4, generator=gen, dtype=torch.float64)
    chunked = linear_blend_skinning(pts, w, tf)
    monkeypatch.setattr(lbs_blocks, "skinning_blocks", lambda n, v, *args: (n, v))
    assert torch.allclose(chunked, linear_blend_skinning(pts, w, tf), atol=1e-12)


def test_large_cpu_results_are_ordinary_tensors():
    """Large float CPU results come from numpy (huge pages); they must behave like any tensor."""
    like = torch.zeros(1, dtype=torch.float64)
    big = lbs_blocks.empty_output((64, 6890, 3), like)  # 10.6 MB
    small = lbs_blocks.empty_output((2, 10, 3), like)
    assert big.shape == (64, 6890, 3) and big.dtype == torch.float64 and big.is_contiguous()
    assert small.shape == (2, 10, 3) and small.dtype == torch.float64
    big.fill_(2.0)
    assert float(big.sum()) == 2.0 * big.numel()
    half = lbs_blocks.empty_output((64, 6890, 3), like.half())  # numpy-less dtype: a plain tensor
    assert half.dtype == torch.float16 and half.shape == (64, 6890, 3)


def test_blend_offsets_equal_the_two_blend_shapes():
    gen = torch.Generator().manual_seed(11)
    v, k, b = 500, 10, 4
    shapedirs = torch.randn(v, 3, k, generator=gen, dtype=torch.float64)
    posedirs = torch.randn(207, 3 * v, generator=gen, dtype=torch.float64)
    betas = torch.randn(b, 6, generator=gen, dtype=torch.float64)  # fewer than K: the first 6
    rot = axis_angle_to_matrix(torch.randn(b, 24, 3, generator=gen, dtype=torch.float64))
    expected = shape_offsets(betas, shapedirs) + pose_offsets(rot, posedirs)
    torch.testing.assert_close(blend_offsets(betas, shapedirs, rot, posedirs), expected)
    graded = blend_offsets(betas.clone().requires_grad_(), shapedirs, rot, posedirs)
    torch.testing.assert_close(graded.detach(), expected)
    graded.sum().backward()  # the gradient path works
    with pytest.raises(ValueError, match="posedirs must have shape"):
        blend_offsets(betas, shapedirs, rot, posedirs[:100])
    with pytest.raises(ValueError, match="shapedirs must have shape"):
        blend_offsets(betas, shapedirs[:10], rot, posedirs)
    with pytest.raises(ValueError, match="must share B"):
        blend_offsets(betas[:2], shapedirs, rot, posedirs)
    with pytest.raises(ValueError, match="betas has 12 coefficients"):
        blend_offsets(torch.zeros(b, 12, dtype=torch.float64), shapedirs, rot, posedirs)


def test_kinematics_keeps_its_own_names_and_refuses_unknown_ones():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kinematics.forward_kinematics is kinediff.body.forward_kinematics
        assert kinematics.FKResult is kinediff.body.FKResult
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        kinematics.no_such_name  # noqa: B018
    assert set(kinematics.__all__) == {"FKResult", "forward_kinematics"}
