"""SynthBody, the joint limits, the augmentations and the sample format's labels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kinediff.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from kinediff.core.camera import project_points
from kinediff.core.io import read_cached
from kinediff.data import (
    JOINT_LIMITS_DEG,
    Augment,
    Augmented,
    SynthBody,
    augment_sample,
    check_sample,
    collate,
    pose_from_uniform,
    root_orientation,
    sample_body_pose,
)
from kinediff.data.base import root_joint
from kinediff.data.sample import project_labels


@pytest.fixture(scope="module")
def synth(body32, cache_dir):
    return SynthBody(12, seed=3, body=body32, image_size=48, mesh_factors=(4, 4, 4))


# -- joint limits -------------------------------------------------------------------------------

def test_limits_cover_every_non_root_joint_and_contain_zero():
    assert sorted(JOINT_LIMITS_DEG) == list(range(1, 24))
    for ranges in JOINT_LIMITS_DEG.values():
        for lo, hi in ranges:
            assert lo <= 0 <= hi


@given(st.integers(0, 10_000), st.floats(0.2, 1.0))
def test_no_joint_bends_the_wrong_way(seed, spread):
    pose = sample_body_pose(64, torch.Generator().manual_seed(seed), spread, torch.float64)
    rot = axis_angle_to_matrix(pose)
    assert torch.equal(pose[:, 0], torch.zeros(64, 3, dtype=torch.float64))
    # knees: the shin (0, -1, 0) in the thigh's frame swings backward (-z), never forward
    for knee in (4, 5):
        shin = rot[:, knee] @ torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
        assert (shin[:, 2] <= 0.06).all()
    # elbows: the forearm (+-1, 0, 0) along the upper arm swings forward (+z), never backward
    for elbow, along in ((18, 1.0), (19, -1.0)):
        fore = rot[:, elbow] @ torch.tensor([along, 0.0, 0.0], dtype=torch.float64)
        assert (fore[:, 2] >= -0.02).all()


def test_limits_signs_on_the_posed_body(body64):
    """A fully flexed knee puts the ankle behind the knee; a flexed elbow puts the wrist in front."""
    pose = torch.zeros(1, 24, 3, dtype=torch.float64)
    pose[0, 4, 0] = math.radians(JOINT_LIMITS_DEG[4][0][1])
    pose[0, 18, 1] = math.radians(JOINT_LIMITS_DEG[18][1][0])
    pose[0, 19, 1] = math.radians(JOINT_LIMITS_DEG[19][1][1])
    j = body64(pose).joints[0]
    assert body64.v_template[:, 0][body64.weights.argmax(1) == 1].mean() > 0  # SMPL: left is +x
    assert j[7, 2] < j[4, 2] - 0.1  # left ankle behind the left knee
    assert j[20, 2] > j[18, 2] + 0.1 and j[21, 2] > j[19, 2] + 0.1  # wrists in front of elbows


def test_root_orientation_is_upright_in_the_camera_frame(body64):
    zero = torch.zeros(1, dtype=torch.float64)
    pose = torch.zeros(1, 24, 3, dtype=torch.float64)
    pose[0, 0] = matrix_to_axis_angle(root_orientation(zero, zero, zero))
    j = body64(pose).joints[0]
    assert j[15, 1] < j[0, 1] - 0.3  # head above the pelvis: y points down in the camera frame
    # facing the camera: the toes point at it (-z) and the body's left is on the image right
    assert j[10, 2] < j[7, 2] - 0.05 and j[16, 0] > j[0, 0]


# -- SynthBody ------------------------------------------------------------------------------------

def test_sample_format_and_determinism(synth, body32):
    sample = synth[5]
    check_sample(sample)
    assert sample["mesh2d"].shape == (108, 2) and sample["joints2d"].shape == (24, 3)
    again = SynthBody(12, seed=3, body=body32, image_size=48, mesh_factors=(4, 4, 4))[5]
    for key in ("image", "pose", "betas", "transl", "K", "mesh2d", "mask"):
        assert torch.equal(sample[key], again[key]), key
    other = SynthBody(12, seed=4, body=body32, image_size=48, mesh_factors=(4, 4, 4))[5]
    assert not torch.equal(sample["pose"], other["pose"])


def test_batch_equals_items_and_cache_equals_on_the_fly(synth, body32, tmp_path):
    batch = synth.batch(range(4))
    stacked = collate([synth[i] for i in range(4)])
    assert torch.equal(batch["image"], stacked["image"])
    torch.testing.assert_close(batch["mesh2d"], stacked["mesh2d"], atol=1e-3, rtol=0)
    cached = SynthBody(12, seed=3, body=body32, image_size=48, mesh_factors=(4, 4, 4), cache=True,
                       cache_root=tmp_path, progress=False)
    assert list((tmp_path / "synthbody").glob("*.pt"))
    for i in (0, 7):
        a, b = cached[i], synth[i]
        assert torch.equal(a["pose"], b["pose"]) and torch.equal(a["betas"], b["betas"])
        assert (a["image"] - b["image"]).abs().max() <= 1 / 255 + 1e-6
        assert (a["mask"] != b["mask"]).float().mean() < 0.01


def test_keypoints_and_mesh2d_are_projections_of_the_3d_body(synth, body32):
    batch = synth.batch(range(6))
    out = body32(batch["pose"], batch["betas"])
    j2d = project_points(out.joints, batch["K"], batch["transl"])
    torch.testing.assert_close(batch["joints2d"][..., :2], j2d, atol=1e-3, rtol=0)
    sel = synth.selection
    m2d = project_points(out.vertices[:, sel], batch["K"], batch["transl"])
    torch.testing.assert_close(batch["mesh2d"], m2d, atol=1e-3, rtol=0)
    # the person is inside the crop and the mask covers the projected mesh's pixels
    assert (batch["joints2d"][..., 2] == 1).float().mean() > 0.95
    px = batch["mesh2d"].long().clamp(0, 47)  # surface vertices lie on or within a pixel of the mask
    grown = torch.nn.functional.max_pool2d(batch["mask"][:, None], 3, 1, 1)[:, 0]
    assert grown[torch.arange(6)[:, None], px[..., 1], px[..., 0]].mean() > 0.99


def test_pose_from_uniform_bad_input():
    u = torch.rand(2, 23, 3)
    with pytest.raises(ValueError, match=r"^spread must be a finite number in \(0, 1\], got 0.0$"):
        pose_from_uniform(u, spread=0.0)
    with pytest.raises(ValueError, match=r"^u must have shape \(B, 23, 3\), got \(2, 24, 3\)$"):
        pose_from_uniform(torch.rand(2, 24, 3))


def test_numpy_numbers_make_the_same_data_set(body32):
    ours = SynthBody(np.int64(3), seed=np.int64(3), body=body32, image_size=np.int32(48),
                     yaw_range=np.float32(90.0), mesh_factors=(4, 4, 4))
    plain = SynthBody(3, seed=3, body=body32, image_size=48, yaw_range=90.0, mesh_factors=(4, 4, 4))
    assert ours.config() == plain.config()
    assert json.dumps(ours.config()) == json.dumps(plain.config())  # the cache key


def test_synthbody_bad_input(body32):
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got 0$"):
        SynthBody(0, body=body32)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got 2.0$"):
        SynthBody(2.0, body=body32)
    with pytest.raises(ValueError, match=r"^image_size must be an integer >= 16, got 8$"):
        SynthBody(2, body=body32, image_size=8)
    with pytest.raises(ValueError, match=r"^yaw_range must be a finite number in \[0, 180\] \(degrees\), "
                                         r"got 270$"):
        SynthBody(2, body=body32, yaw_range=270)
    with pytest.raises(ValueError, match=r"^pose_spread must be a finite number in \(0, 1\], got 0$"):
        SynthBody(2, body=body32, pose_spread=0)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0, got 1.5$"):
        SynthBody(2, body=body32, seed=1.5)
    with pytest.raises(IndexError, match="out of range"):
        SynthBody(2, body=body32, image_size=32, mesh_factors=(4, 4, 4))[5]
    with pytest.raises(ValueError, match="spread"):
        sample_body_pose(2, spread=0.0)
    with pytest.raises(ValueError, match="lacks keys"):
        check_sample({"image": torch.zeros(3, 8, 8)})


# -- augmentations ----------------------------------------------------------------------------------

def _aug(synth, **kw):
    aug = Augment(**{**vars(Augment.none()), **kw})
    sample = synth[2]
    return sample, augment_sample(sample, aug, torch.Generator().manual_seed(0), synth.body,
                                  synth.selection)


def test_flip_mirrors_the_image_and_swaps_sides(synth):
    sample, flipped = _aug(synth, flip=1.0)
    assert torch.equal(flipped["image"], sample["image"].flip(-1))
    s = sample["image"].shape[-1]
    j, jf = sample["joints2d"][:, :2], flipped["joints2d"][:, :2]
    # the flipped left wrist is where the mirrored right wrist was (and so on for every joint)
    from kinediff.core.conventions import SMPL_FLIP_PERMUTATION

    mirrored = j[list(SMPL_FLIP_PERMUTATION)].clone()
    mirrored[:, 0] = s - mirrored[:, 0]
    torch.testing.assert_close(jf, mirrored, atol=0.3, rtol=0)
    # the labels still match the image: the mask covers the flipped 2D mesh
    px = flipped["mesh2d"].long().clamp(0, s - 1)
    grown = torch.nn.functional.max_pool2d(flipped["mask"][None, None], 3, 1, 1)[0, 0]
    assert grown[px[:, 1], px[:, 0]].mean() > 0.97


def test_rotation_and_scale_move_the_labels_with_the_image(synth):
    sample, rotated = _aug(synth, rotation=1.0, scale=0.25)
    c = sample["K"][:2, 2]
    # a similarity about the principal point: distances to it scale by one factor
    d0 = (sample["mesh2d"] - c).norm(dim=-1)
    d1 = (rotated["mesh2d"] - c).norm(dim=-1)
    ratio = d1 / d0
    assert float(ratio.std()) < 1e-3 and abs(float(ratio.mean()) - 1) <= 0.25 + 1e-6
    s = sample["image"].shape[-1]
    px = rotated["mesh2d"].long()
    inside = ((px >= 0) & (px < s)).all(-1)
    grown = torch.nn.functional.max_pool2d(rotated["mask"][None, None], 3, 1, 1)[0, 0]
    assert grown[px[inside, 1], px[inside, 0]].mean() > 0.95


def test_colour_and_occlusion_stay_in_range_and_are_seeded(synth):
    sample, out = _aug(synth, color=0.2, occlusion=1.0)
    assert out["image"].min() >= 0 and out["image"].max() <= 1
    assert not torch.equal(out["image"], sample["image"])
    assert torch.equal(out["pose"], sample["pose"])
    data = Augmented(synth, seed=3)
    assert torch.equal(data[1]["image"], data[1]["image"])
    first = data[1]["image"]
    data.set_epoch(1)
    assert not torch.equal(data[1]["image"], first)


def test_project_labels_and_root_joint(body64):
    K = torch.tensor([[[100.0, 0, 32], [0, 100, 32], [0, 0, 1]]], dtype=torch.float64)
    joints = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0]]], dtype=torch.float64)  # the 2nd leaves the crop
    verts = torch.tensor([[[0.1, -0.1, 0.0]]], dtype=torch.float64)
    j2d, m2d = project_labels(joints, verts, K, torch.tensor([[0.0, 0, 2]], dtype=torch.float64), 64)
    torch.testing.assert_close(j2d[0], torch.tensor([[32.0, 32, 1], [82, 32, 0]], dtype=torch.float64))
    torch.testing.assert_close(m2d[0], torch.tensor([[37.0, 27]], dtype=torch.float64))
    betas = torch.linspace(-1, 1, 10, dtype=torch.float64)
    torch.testing.assert_close(root_joint(body64, betas), body64.rest_joints(betas[None])[0, 0])


def test_a_damaged_synthbody_cache_names_the_file_and_says_deleting_it_is_safe(tmp_path, body32):
    def make():
        return SynthBody(3, image_size=32, body=body32, mesh_factors=(4, 4, 4), cache=True,
                         cache_root=tmp_path, progress=False)

    reference = make()[1]
    path = next(tmp_path.rglob("*.pt"))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"{path.name}: kinediff's cached SynthBody render is damaged "
                                         r"\(RuntimeError: .*\); deleting the file is safe"):
        make()
    torch.save({"image": torch.zeros(3, dtype=torch.uint8)}, path)
    with pytest.raises(ValueError, match=r"SynthBody render is damaged \(missing \['mask'"):
        make()
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match=r"damaged \(holds a list, not a dict\); deleting the file is safe"):
        make()
    path.unlink()  # as the message says: rebuilt, the same samples
    torch.testing.assert_close(make()[1]["image"], reference["image"])
    with pytest.raises(ValueError, match=r"x.bin: kinediff's cached thing is damaged \(ZeroDivisionError"):
        read_cached(tmp_path / "x.bin", lambda p: 1 / 0, "thing")
