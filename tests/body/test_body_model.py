"""BodyModel against the real smplx package (and built from smplx's models), and its invariants."""

from __future__ import annotations

import pytest
import smplx
import torch
from hypothesis import given
from hypothesis import strategies as st
from tolerances import atol_for

from kinediff.body import BodyModel, axis_angle_to_matrix, save_smpl
from kinediff.core.conventions import SMPL_PARENTS

from ..conftest import random_pose


@pytest.fixture(scope="module")
def smplx64(synthetic_path):
    return smplx.SMPL(model_path=str(synthetic_path), dtype=torch.float64)


@pytest.fixture(scope="module")
def smplx32(synthetic_path):
    return smplx.SMPL(model_path=str(synthetic_path), dtype=torch.float32)


def _smplx_forward(model, pose, betas, transl=None):
    if pose.dim() == 4:
        return model(betas=betas, global_orient=pose[:, :1], body_pose=pose[:, 1:], transl=transl,
                     pose2rot=False)
    return model(betas=betas, global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(len(pose), -1),
                 transl=transl)


@given(seed=st.integers(0, 2**31 - 1), with_transl=st.booleans(), matrices=st.booleans())
def test_equals_smplx_float64(body64, smplx64, seed, with_transl, matrices):
    gen = torch.Generator().manual_seed(seed)
    pose = random_pose(3, gen, scale=0.8)
    betas = torch.randn(3, 10, generator=gen, dtype=torch.float64) * 2
    transl = torch.randn(3, 3, generator=gen, dtype=torch.float64) if with_transl else None
    if matrices:
        pose = axis_angle_to_matrix(pose)
    ours = body64(pose, betas, transl)
    ref = _smplx_forward(smplx64, pose, betas, transl)
    assert (ours.vertices - ref.vertices).abs().max() < 1e-5
    assert (ours.joints - ref.joints[:, :24]).abs().max() < 1e-5


def test_equals_smplx_float32(body32, smplx32):
    gen = torch.Generator().manual_seed(7)
    pose = random_pose(8, gen, dtype=torch.float32)
    betas = torch.randn(8, 10, generator=gen)
    transl = torch.randn(8, 3, generator=gen)
    for p in (pose, axis_angle_to_matrix(pose)):
        ours = body32(p, betas, transl)
        ref = _smplx_forward(smplx32, p, betas, transl)
        assert (ours.vertices - ref.vertices).abs().max() < 1e-4
        assert (ours.joints - ref.joints[:, :24]).abs().max() < 1e-4


# -- BodyModel.from_smplx ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smplx_folder(body64, tmp_path_factory):
    """A folder smplx.create reads: the synthetic body as the file save_smpl writes."""
    folder = tmp_path_factory.mktemp("smplx_models")
    save_smpl(body64, folder / "smpl" / "SMPL_NEUTRAL.pkl")
    return folder


@pytest.fixture(scope="module")
def smplx_created(smplx_folder):
    return {dtype: smplx.create(str(smplx_folder), model_type="smpl", gender="neutral", dtype=dtype)
            for dtype in (torch.float64, torch.float32)}


def _close(ours, ref, dtype):
    """Within atol_for (1024 ulps at the coordinates' size): the two compute the same sums
    in another order."""
    ours, ref = ours.detach(), ref.detach()
    return float((ours - ref).abs().max()) <= atol_for(ref, dtype)


@given(seed=st.integers(0, 2**31 - 1), with_transl=st.booleans())
def test_from_smplx_equals_smplx(smplx_created, seed, with_transl):
    gen = torch.Generator().manual_seed(seed)
    for dtype, model in smplx_created.items():
        body = BodyModel.from_smplx(model)
        assert body.v_template.dtype == dtype and body.num_betas == 10
        pose = axis_angle_to_matrix(random_pose(3, gen, scale=0.8, dtype=dtype))
        betas = (torch.randn(3, 10, generator=gen) * 2).to(dtype)
        transl = torch.randn(3, 3, generator=gen).to(dtype) if with_transl else None
        ours = body(pose, betas, transl)
        ref = _smplx_forward(model, pose, betas, transl)
        assert _close(ours.vertices, ref.vertices, dtype)
        assert _close(ours.joints, ref.joints[:, :24], dtype)


def test_from_smplx_axis_angle(smplx_created):
    # smplx's Rodrigues takes the angle of rot_vecs + 1e-8 (smplx/lbs.py, batch_rodrigues), which
    # turns each joint by up to about 1e-8 rad more than the pose says: a few 1e-8 m on a body,
    # below float32 rounding but far above float64's
    gen = torch.Generator().manual_seed(5)
    for dtype, model in smplx_created.items():
        body = BodyModel.from_smplx(model)
        pose = random_pose(4, gen, scale=0.8, dtype=dtype)
        betas = (torch.randn(4, 10, generator=gen) * 2).to(dtype)
        ours, ref = body(pose, betas), _smplx_forward(model, pose, betas)
        if dtype == torch.float32:
            assert _close(ours.vertices, ref.vertices, dtype)
            assert _close(ours.joints, ref.joints[:, :24], dtype)
        else:
            assert (ours.vertices - ref.vertices).abs().max() < 1e-7
            assert (ours.joints - ref.joints[:, :24]).abs().max() < 1e-7


def test_from_smplx_holds_the_models_arrays(smplx_created, smplx_folder):
    model = smplx_created[torch.float32]
    body = BodyModel.from_smplx(model)
    assert torch.equal(body.v_template, model.v_template)
    assert torch.equal(body.shapedirs, model.shapedirs)
    assert torch.equal(body.posedirs, model.posedirs)
    assert torch.equal(body.J_regressor, model.J_regressor)
    assert torch.equal(body.weights, model.lbs_weights)
    assert torch.equal(body.parents, model.parents)
    assert torch.equal(body.faces, model.faces_tensor)
    # smplx rounds the file through float32, as from_smpl(dtype=float32) does: the same body
    from_file = BodyModel.from_smpl(smplx_folder, dtype=torch.float32)
    assert body.name == from_file.name == "smpl-neutral"
    assert body.fingerprint() == from_file.fingerprint()
    assert all(torch.equal(a, b) for a, b in zip(body.state_dict().values(),
                                                 from_file.state_dict().values()))
    assert BodyModel.from_smplx(model, name="mine").name == "mine"
    layer = smplx.build_layer(str(smplx_folder), model_type="smpl", gender="neutral")
    assert type(layer).__name__ == "SMPLLayer"
    assert all(torch.equal(a, b) for a, b in zip(BodyModel.from_smplx(layer).state_dict().values(),
                                                 body.state_dict().values()))


@pytest.mark.parametrize("cls", [smplx.SMPLH, smplx.SMPLX, smplx.MANO, smplx.FLAME, smplx.SMPLXLayer])
def test_from_smplx_refuses_other_smplx_models(cls):
    model = cls.__new__(cls)  # the class is what is refused: no model file needed
    with pytest.raises(TypeError, match=f"got smplx.{cls.__name__}: a BodyModel is SMPL's 24-joint"):
        BodyModel.from_smplx(model)


def test_from_smplx_refuses_what_is_not_an_smplx_model(body64, smplx_folder):
    with pytest.raises(TypeError, match="takes an smplx.SMPL model .*got BodyModel$"):
        BodyModel.from_smplx(body64)
    with pytest.raises(TypeError, match=r"\(a path: use BodyModel\.from_smpl\)"):
        BodyModel.from_smplx(smplx_folder)
    with pytest.raises(TypeError, match="got dict"):
        BodyModel.from_smplx({"v_template": torch.zeros(3, 3)})
    with pytest.raises(TypeError, match="has no tensor 'v_template'"):
        BodyModel.from_smplx(smplx.SMPL.__new__(smplx.SMPL))  # never built from a file


def test_zero_pose_and_shape_give_the_template(body64):
    out = body64(torch.zeros(2, 24, 3, dtype=torch.float64), torch.zeros(2, 10, dtype=torch.float64))
    assert torch.allclose(out.vertices, body64.v_template.expand(2, -1, -1), rtol=0, atol=1e-12)
    assert torch.allclose(out.joints, (body64.J_regressor @ body64.v_template).expand(2, -1, -1))
    assert torch.allclose(out.rotmats, torch.eye(3, dtype=torch.float64).expand(2, 24, 3, 3))


@given(seed=st.integers(0, 2**31 - 1))
def test_bone_lengths_do_not_change_with_pose(body64, seed):
    gen = torch.Generator().manual_seed(seed)
    betas = torch.randn(1, 10, generator=gen, dtype=torch.float64)
    par = torch.tensor([max(p, 0) for p in SMPL_PARENTS])
    rest = body64.rest_joints(betas)
    posed = body64(random_pose(4, gen, scale=1.5), betas.expand(4, -1)).joints
    assert torch.allclose((posed - posed[:, par]).norm(dim=-1),
                          (rest - rest[:, par]).norm(dim=-1).expand(4, -1), atol=1e-10)


def test_gradients_reach_pose_betas_and_transl(body64):
    gen = torch.Generator().manual_seed(11)
    pose = random_pose(2, gen).requires_grad_()
    betas = torch.randn(2, 10, generator=gen, dtype=torch.float64).requires_grad_()
    transl = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    out = body64(pose, betas, transl)
    (out.vertices.square().sum() + out.joints.sum()).backward()
    for t in (pose, betas, transl):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    # gradient check of the whole model on a small random direction
    p = random_pose(1, gen).requires_grad_()
    b = torch.randn(1, 10, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, b: body64(p, b).joints, (p, b), eps=1e-6, atol=1e-5)


def test_batch_members_are_independent(body64):
    gen = torch.Generator().manual_seed(12)
    pose = random_pose(5, gen)
    betas = torch.randn(5, 10, generator=gen, dtype=torch.float64)
    together = body64(pose, betas).vertices
    for i in range(5):
        alone = body64(pose[i:i + 1], betas[i:i + 1]).vertices
        assert torch.allclose(together[i:i + 1], alone, atol=1e-12)


def test_float32_and_float64_agree(body32, body64):
    gen = torch.Generator().manual_seed(13)
    pose = random_pose(2, gen)
    betas = torch.randn(2, 10, generator=gen, dtype=torch.float64)
    v64 = body64(pose, betas).vertices
    v32 = body32(pose.float(), betas.float()).vertices
    assert v32.dtype == torch.float32 and v64.dtype == torch.float64
    assert (v64 - v32.double()).abs().max() < atol_for(v64, torch.float32, ulps=256)


def test_flat_pose_fewer_betas_and_broadcast_betas(body64):
    gen = torch.Generator().manual_seed(14)
    pose = random_pose(3, gen)
    betas = torch.randn(1, 4, generator=gen, dtype=torch.float64)
    full = torch.nn.functional.pad(betas, (0, 6)).expand(3, -1)
    a = body64(pose.reshape(3, 72), betas).vertices
    b = body64(pose, full).vertices
    assert torch.allclose(a, b)


def test_rest_helpers_and_transforms(body64):
    gen = torch.Generator().manual_seed(15)
    betas = torch.randn(2, 10, generator=gen, dtype=torch.float64)
    assert torch.allclose(body64.rest_vertices(betas), body64.v_template + body64.shape_offsets(betas))
    assert torch.allclose(body64.rest_joints(betas), body64.J_regressor @ body64.rest_vertices(betas))
    pose = random_pose(2, gen)
    transl = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    out = body64(pose, betas, transl)
    assert torch.allclose(out.transforms[..., :3, 3], out.joints)
    assert torch.allclose(body64.pose_offsets(torch.zeros(1, 24, 3, dtype=torch.float64)),
                          torch.zeros(1, body64.num_vertices, 3, dtype=torch.float64))


def test_device_and_dtype_follow_to(body32):
    body = BodyModel.from_dict(body32.to_smpl_dict(), dtype=torch.float32).to(torch.float64)
    out = body(torch.zeros(1, 24, 3, dtype=torch.float64))
    assert out.vertices.dtype == torch.float64
    assert body.joint_template.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pose=torch.zeros(2, 23, 3)), r"pose must have shape \(B, 24, 3\)"),
        (dict(pose=torch.zeros(2, 24, 4)), r"got \(2, 24, 4\)"),
        (dict(pose=torch.zeros(2, 24, 3, 2)), r"\(B, 24, 3, 3\) rotation matrices"),
        (dict(pose=torch.zeros(24, 3)), r"got \(24, 3\)"),
        (dict(pose=torch.full((1, 24, 3), float("nan"))), "pose contains NaN"),
        (dict(pose=torch.zeros(2, 24, 3), betas=torch.zeros(2, 11)), r"K <= 10; got \(2, 11\)"),
        (dict(pose=torch.zeros(2, 24, 3), betas=torch.zeros(3, 10)), r"B = 2 \(or 1\)"),
        (dict(pose=torch.zeros(2, 24, 3), betas=torch.zeros(10)), r"betas must have shape \(B, K\)"),
        (dict(pose=torch.zeros(2, 24, 3), transl=torch.zeros(2, 2)), r"transl must have shape \(2, 3\)"),
        (dict(pose=torch.zeros(1, 24, 3, dtype=torch.float64)), "call body.to\\(torch.float64\\)"),
        (dict(pose=torch.zeros(1, 24, 3), betas=torch.full((1, 10), float("inf"))), "betas contains NaN"),
    ],
)
def test_bad_inputs_raise_value_error(body32, kwargs, message):
    with pytest.raises(ValueError, match=message):
        body32(**kwargs)


def test_bad_construction_raises(body32):
    data = body32.to_smpl_dict()
    with pytest.raises(ValueError, match=r"weights must have shape \(6890, 24\)"):
        BodyModel.from_dict({**data, "weights": data["weights"][:, :23]})
    with pytest.raises(ValueError, match="lacks keys \\['posedirs'\\]"):
        BodyModel.from_dict({k: v for k, v in data.items() if k != "posedirs"})
    with pytest.raises(ValueError, match="num_betas must be in"):
        BodyModel(data["v_template"], data["shapedirs"], data["posedirs"], data["J_regressor"],
                  data["weights"], data["kintree_table"][0].astype("int64"), data["f"], num_betas=0)
    with pytest.raises(TypeError, match="pose must be a torch.Tensor"):
        body32([[0.0] * 3] * 24)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_below_the_smallest_normal_number_are_stored_as_zero(body64, dtype):
    """A file's values too small to be normal numbers of the model's dtype become 0 (subnormals
    slow every CPU GEMM that reads them); every other value is kept."""
    data = body64.to_smpl_dict()
    tiny = torch.finfo(dtype).tiny
    posedirs = data["posedirs"].copy()
    posedirs[:50, 0, 0] = tiny / 8  # subnormal in dtype
    posedirs[50:60, 0, 0] = -tiny / 3
    weights = data["weights"].copy()
    weights[0, 5] = tiny / 2
    body = BodyModel.from_dict({**data, "posedirs": posedirs, "weights": weights}, dtype=dtype)
    ref = BodyModel.from_dict(data, dtype=dtype)
    smallest = min(float(b.abs()[b != 0].min()) for b in (body.posedirs, body.weights))
    assert smallest >= tiny
    assert torch.equal(body.posedirs[0, :60 * 3:3], torch.zeros(60, dtype=dtype))
    assert body.weights[0, 5] == 0
    kept = ref.posedirs.clone()
    kept[0, :60 * 3:3] = 0
    assert torch.equal(body.posedirs, kept)  # nothing else changed
