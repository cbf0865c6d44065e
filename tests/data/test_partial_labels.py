"""Partial labels in the data (the paper's hybrid training sets): records and samples without SMPL,
the joints in H36M order, their augmentation, and MixedDataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from kinediff.core.camera import box_to_square
from kinediff.core.conventions import H36M_JOINTS, H36M_LIKE_SMPL_JOINTS, map_joints
from kinediff.data import Augmented, MixedDataset, SynthBody, check_sample
from kinediff.data.augment import Augment, augment_sample
from kinediff.data.base import PersonDataset, Record, make_sample
from kinediff.mesh import MeshHierarchy

S = 32


def _to_crop(uv: np.ndarray, box, size: int = S) -> np.ndarray:
    """Full-image pixels -> crop pixels, written from the crop's definition: the square of side
    ``side`` centred on the box centre, resampled to size x size."""
    cx, cy, side = box_to_square(box)
    return (uv - np.array([cx - side / 2, cy - side / 2])) * size / side


@pytest.fixture(scope="module")
def selection(body32):
    return MeshHierarchy.from_body(body32, (4, 4, 4)).selection(-1).cpu()


K = np.array([[120.0, 0, 80], [0, 120.0, 60], [0, 0, 1]])


def test_a_keypoints_only_record_becomes_a_sample(body32, selection):
    g = np.random.default_rng(0)
    kp = np.concatenate([g.uniform(40, 120, (17, 2)), (g.uniform(size=(17, 1)) > 0.3)], 1)
    record = Record(image="x.png", pose=None, betas=None, transl=None, K=K, keypoints2d=kp,
                    source="fixture[0]")
    sample = make_sample(record, torch.rand(3, 120, 160), body32, selection, S)
    check_sample(sample, S)
    visible = kp[:, 2] > 0
    box = (kp[visible, 0].min(), kp[visible, 1].min(), np.ptp(kp[visible, 0]), np.ptp(kp[visible, 1]))
    expected = _to_crop(kp[:, :2], box)
    got = sample["keypoints2d"].double().numpy()
    np.testing.assert_allclose(got[visible, :2], expected[visible], atol=1e-3)
    np.testing.assert_array_equal(got[:, 2], visible.astype(float))
    assert not sample["has_smpl"] and not sample["has_mesh2d"] and not sample["has_joints3d"]
    assert sample["has_joints2d"] and float(sample["mesh2d"].abs().sum()) == 0.0


def test_a_joints3d_only_record_projects_its_joints(body32, selection):
    g = np.random.default_rng(1)
    cam = np.concatenate([g.uniform(-0.4, 0.4, (17, 2)), g.uniform(2.5, 3.5, (17, 1))], 1)
    valid = np.ones(17)
    valid[[3, 9]] = 0
    record = Record(image="x.png", pose=None, betas=None, transl=None, K=K,
                    joints3d=np.concatenate([cam, valid[:, None]], 1), box=(20, 10, 100, 100))
    sample = make_sample(record, torch.rand(3, 120, 160), body32, selection, S)
    uv = cam[:, :2] / cam[:, 2:] * 120 + np.array([80, 60])  # pinhole, written out
    expected = _to_crop(uv, (20, 10, 100, 100))
    got = sample["keypoints2d"].double().numpy()
    inside = (valid > 0) & (expected >= 0).all(1) & (expected < S).all(1)
    np.testing.assert_allclose(got[inside, :2], expected[inside], atol=1e-3)
    np.testing.assert_array_equal(got[:, 2], inside.astype(float))
    np.testing.assert_allclose(sample["joints3d"].double().numpy()[:, :3], cam, atol=1e-6)
    assert sample["has_joints3d"] and not sample["has_smpl"]


def test_an_smpl_record_gets_the_skeletons_h36m_like_joints(body32, selection):
    g = torch.Generator().manual_seed(2)
    pose = (0.3 * torch.randn(72, generator=g)).double().numpy()
    betas = torch.randn(10, generator=g).double().numpy()
    transl = np.array([0.05, -0.1, 3.0])
    record = Record(image="x.png", pose=pose, betas=betas, transl=transl, K=K)
    sample = make_sample(record, torch.rand(3, 120, 160), body32, selection, S)
    with torch.no_grad():
        joints = body32(torch.as_tensor(pose).float().view(1, 24, 3),
                        torch.as_tensor(betas).float()[None]).joints[0].double()
    h36m = joints[list(H36M_LIKE_SMPL_JOINTS)].numpy() + transl
    np.testing.assert_allclose(sample["joints3d"].double().numpy()[:, :3], h36m, atol=1e-5)
    np.testing.assert_allclose(sample["keypoints2d"][:, :2].numpy(),
                               sample["joints2d"][list(H36M_LIKE_SMPL_JOINTS), :2].numpy(), atol=1e-3)
    assert all(bool(sample[k]) for k in ("has_smpl", "has_mesh2d", "has_joints3d", "has_joints2d"))


def test_record_errors():
    with pytest.raises(ValueError, match="f\\[3\\]: pose, betas and transl are given together"):
        Record(image="x", pose=np.zeros(72), betas=None, transl=None, K=K, source="f[3]")
    with pytest.raises(ValueError, match="no label"):
        Record(image="x", pose=None, betas=None, transl=None, K=K)
    with pytest.raises(ValueError, match=r"joints3d must have shape \(17, 4\)"):
        Record(image="x", pose=None, betas=None, transl=None, K=K, joints3d=np.zeros((17, 3)))


def test_a_record_that_cannot_become_a_sample_is_skipped_and_reported(body32, tmp_path):
    from PIL import Image

    path = tmp_path / "im.png"
    Image.fromarray(np.zeros((120, 160, 3), np.uint8)).save(path)
    lonely = np.zeros((17, 3))
    lonely[0] = (50, 50, 1)  # one visible keypoint: no box to crop
    good = lonely.copy()
    good[1] = (90, 100, 1)
    data = PersonDataset([Record(path, None, None, None, K, keypoints2d=lonely, source="f.json[0]"),
                          Record(path, None, None, None, K, keypoints2d=good, source="f.json[1]")],
                         body32, image_size=S, mesh_factors=(4, 4, 4))
    assert int(data[0]["index"]) == 1
    assert "skipped 1 record(s) that could not become a sample" in data.report()
    assert "f.json[0]" in data.report()


def test_augmentation_moves_the_joints_with_the_image(body32, selection):
    data = SynthBody(2, seed=3, body=body32, image_size=S, mesh_factors=(4, 4, 4), progress=False)
    sample = data[0]
    aug = Augment(rotation=1.0, rotation_std_deg=20.0, scale=0.2, flip=0.0, color=0.0, occlusion=0.0)
    out = augment_sample(sample, aug, torch.Generator().manual_seed(0), body32, selection)
    # the SMPL relabelling and the geometric move of the joints agree
    picks = list(H36M_LIKE_SMPL_JOINTS)
    visible = out["keypoints2d"][:, 2] > 0
    torch.testing.assert_close(out["keypoints2d"][visible, :2], out["joints2d"][picks][visible, :2],
                               atol=2e-3, rtol=0)
    with torch.no_grad():
        joints = body32(out["pose"][None], out["betas"][None]).joints[0]
    torch.testing.assert_close(out["joints3d"][:, :3], joints[picks] + out["transl"], atol=1e-4, rtol=0)
    # flipping twice gives the joints back
    flip = Augment(rotation=0.0, scale=0.0, flip=1.0, color=0.0, occlusion=0.0)
    twice = augment_sample(augment_sample(sample, flip, torch.Generator().manual_seed(1), body32,
                                          selection), flip, torch.Generator().manual_seed(2), body32,
                           selection)
    torch.testing.assert_close(twice["joints3d"], sample["joints3d"], atol=1e-5, rtol=0)
    torch.testing.assert_close(twice["keypoints2d"], sample["keypoints2d"], atol=1e-4, rtol=0)


class Items:
    def __init__(self, n, tag, extra=False):
        self.n, self.tag, self.extra = n, tag, extra

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        item = {"tag": torch.tensor(self.tag), "i": torch.tensor(i)}
        if self.extra:
            item["only_here"] = 1
        return item


def test_mixed_dataset_draws_its_shares_deterministically_per_epoch():
    sets = [Items(10, 0), Items(3, 1, extra=True), Items(50, 2)]
    mixed = MixedDataset(sets, ratios=[0.5, 0.25, 0.25], length=40, seed=7)
    assert mixed.counts() == [20, 10, 10]

    def epoch(m):
        return [(int(s["dataset"]), int(s["i"])) for s in (m[j] for j in range(len(m)))]

    first = epoch(mixed)
    assert first == epoch(MixedDataset(sets, ratios=[0.5, 0.25, 0.25], length=40, seed=7))
    drawn = {d: [i for dd, i in first if dd == d] for d in range(3)}
    assert [len(drawn[d]) for d in range(3)] == [20, 10, 10]
    assert sorted(drawn[0]) == sorted(list(range(10)) * 2)  # whole permutations of a small set
    assert len(set(drawn[2])) == 10  # no repeats while a set lasts
    assert set(mixed[0]) == {"tag", "i", "dataset"}  # only the keys every set gives
    mixed.set_epoch(1)
    assert epoch(mixed) != first
    mixed.set_epoch(0)
    assert epoch(mixed) == first
    # by default (VirtualMarker's concatenation) each set's share is its size: every item once
    default = MixedDataset(sets)
    assert len(default) == 63 and default.counts() == [10, 3, 50]
    once = sorted((int(s["dataset"]), int(s["i"])) for s in (default[j] for j in range(63)))
    assert once == sorted([(0, i) for i in range(10)] + [(1, i) for i in range(3)]
                          + [(2, i) for i in range(50)])
    # "equal": the I2L-MeshNet mix, the largest set's length x the number of sets
    equal = MixedDataset(sets, ratios="equal")
    assert len(equal) == 150 and equal.counts() == [50, 50, 50]
    # the kept keys do not depend on which item is read first
    assert set(MixedDataset(sets)[0]) == set(MixedDataset(sets)[5]) == {"tag", "i", "dataset"}


def test_mixed_dataset_works_with_the_distributed_sampler():
    mixed = MixedDataset([Items(6, 0), Items(4, 1)], seed=1)
    ranks = [list(DistributedSampler(mixed, num_replicas=2, rank=r, shuffle=True, seed=3))
             for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == list(range(len(mixed)))
    # every process draws the same epoch
    other = MixedDataset([Items(6, 0), Items(4, 1)], seed=1)
    assert [mixed.source(i) for i in range(len(mixed))] == [other.source(i) for i in range(len(mixed))]


@pytest.mark.parametrize("kwargs, message", [
    (dict(datasets=[]), "at least one data set"),
    (dict(datasets=[Items(0, 0)]), r"data set\(s\) \[0\] are empty"),
    (dict(datasets=[Items(2, 0)], ratios=[1, 2]), "2 ratios for 1 data sets"),
    (dict(datasets=[Items(2, 0), Items(2, 1)], ratios=[1, -1]),
     r"^MixedDataset: ratios\[1\] must be a finite number >= 0, got -1$"),
    (dict(datasets=[Items(2, 0), Items(2, 1)], ratios=[0, 0]), r"ratios must have a positive sum"),
    (dict(datasets=[Items(2, 0)], seed=1.5), r"^MixedDataset: seed must be an integer >= 0, got 1.5$"),
    (dict(datasets=[Items(2, 0)], length=0), r"^MixedDataset: length must be an integer >= 1, got 0$"),
    (dict(datasets=[Items(2, 0)], ratios="most"), "ratios must be None, 'equal'"),
])
def test_mixed_dataset_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MixedDataset(**kwargs)
    with pytest.raises(IndexError):
        MixedDataset([Items(2, 0)])[5]


def test_map_joints_by_name():
    values = np.arange(12.0).reshape(4, 3)
    out, valid = map_joints(values, ["l_wrist", "jaw", "pelvis", "r_hip"])
    assert valid.tolist() == [name in ("l_wrist", "pelvis", "r_hip") for name in H36M_JOINTS]
    assert out[H36M_JOINTS.index("l_wrist")].tolist() == [0.0, 1.0, 2.0]
    assert out[H36M_JOINTS.index("pelvis")].tolist() == [6.0, 7.0, 8.0]
    assert out[H36M_JOINTS.index("r_hip")].tolist() == [9.0, 10.0, 11.0]
    with pytest.raises(ValueError, match=r"f\.mat: values must have shape \(3, C\)"):
        map_joints(values, ["a", "b", "c"], where="f.mat")
    with pytest.raises(ValueError, match="joint names repeat"):
        map_joints(values, ["a", "a", "b", "c"])


def test_repeats_of_an_item_are_augmented_differently_and_the_mix_exposes_the_body(body32):
    small = Augmented(SynthBody(2, seed=5, body=body32, image_size=S, mesh_factors=(4, 4, 4),
                                progress=False), Augment(color=0.5))
    big = SynthBody(6, seed=6, body=body32, image_size=S, mesh_factors=(4, 4, 4), progress=False)
    mixed = MixedDataset([small, big], ratios="equal", seed=0)
    copies: dict[int, list[torch.Tensor]] = {}
    for j in range(len(mixed)):
        d, i = mixed.source(j)
        if d == 0:
            copies.setdefault(i, []).append(mixed[j]["image"])
    for images in copies.values():
        assert len(images) == 3
        assert not torch.equal(images[0], images[1]) and not torch.equal(images[1], images[2])
    assert mixed.body is body32 or mixed.body.num_vertices == body32.num_vertices
    assert mixed.body_for("neutral").num_vertices == body32.num_vertices


def test_augmenting_a_sample_without_smpl_keeps_its_zeros_and_its_camera(body32, selection):
    g = np.random.default_rng(3)
    cam = np.concatenate([g.uniform(-0.3, 0.3, (17, 2)), g.uniform(2.5, 3.0, (17, 1))], 1)
    record = Record(image="x.png", pose=None, betas=None, transl=None, K=K,
                    joints3d=np.concatenate([cam, np.ones((17, 1))], 1), box=(60, 40, 45, 45))
    sample = make_sample(record, torch.rand(3, 120, 160), body32, selection, S)
    aug = Augment(rotation=1.0, rotation_std_deg=25.0, scale=0.2, flip=1.0, color=0.0, occlusion=0.0)
    for seed in range(4):
        out = augment_sample(sample, aug, torch.Generator().manual_seed(seed), body32, selection)
        assert float(out["pose"].abs().sum()) == 0.0 and float(out["transl"].abs().sum()) == 0.0
        # the moved keypoints are the 3D joints seen through the new camera
        j = out["joints3d"][:, :3].double()
        uvw = j @ out["K"].double().T
        uv = uvw[:, :2] / uvw[:, 2:]
        vis = out["keypoints2d"][:, 2] > 0
        assert vis.any()
        torch.testing.assert_close(out["keypoints2d"][vis, :2].double(), uv[vis], atol=1e-3, rtol=0)

