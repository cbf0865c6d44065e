"""Partial labels in the losses: the terms count only the samples that have each label, and a batch
without a label gives zero for its terms, not NaN (the data side: tests/data/test_partial_labels.py)."""

from __future__ import annotations

import pytest
import torch

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.core.conventions import H36M_JOINTS, LIMB_JOINTS
from kinediff.data import SynthBody

S = 32


def _without_smpl(batch, rows):
    """The batch with ``rows`` turned into keypoints-only samples (as COCO without pseudo-GT)."""
    out = {k: (v.clone() if isinstance(v, torch.Tensor) else list(v)) for k, v in batch.items()}
    for key in ("pose", "betas", "transl", "mesh2d", "joints2d", "joints3d"):
        out[key][rows] = 0
    for key in ("has_smpl", "has_mesh2d", "has_joints3d", "has_mask"):
        out[key][rows] = False
    return out


@pytest.fixture(scope="module")
def mixed_setup(body32, cache_dir):
    torch.manual_seed(0)
    model = PostureHMR(PostureHMRConfig.tiny(image_size=S, head={"heatmap_size": 8},
                                             train_condition="gt", condition_noise_px=1.0), body32)
    data = SynthBody(4, seed=4, body=body32, image_size=S, mesh_factors=(4, 4, 4), progress=False)
    return model.eval(), data.batch(range(4))  # eval: batch norm's output not batch-dependent


def test_loss_2d_counts_each_label_only_where_it_is(mixed_setup):
    model, batch = mixed_setup
    mixed = _without_smpl(batch, [1, 3])
    terms = model.loss_2d(mixed)
    sub = {k: (v[[0, 2]] if isinstance(v, torch.Tensor) else [v[0], v[2]]) for k, v in batch.items()}
    ref = model.loss_2d(sub)
    for key in ("mesh2d", "trimap"):
        torch.testing.assert_close(terms[key], ref[key])
    # the points term: the GT keypoints of samples 0, 2; the 12 limb joints against keypoints2d of
    # samples 1, 3
    out = model.head(batch["image"])["points"].detach() / S
    gt = model.ground_truth(batch)["points"] / S
    err = [(out[i] - gt[i]).abs().sum() for i in (0, 2)]
    limbs = [H36M_JOINTS.index(n) for n in LIMB_JOINTS]
    kp = batch["keypoints2d"][:, limbs]
    for i in (1, 3):
        vis = kp[i, :, 2]
        err.append(((out[i, limbs] - kp[i, :, :2] / S).abs().sum(-1) * vis).sum())
    count = 2 * out.shape[1] * 2 + 2 * (kp[[1, 3], :, 2].sum())
    torch.testing.assert_close(terms["points"].detach(), torch.stack(err).sum() / count)
    terms["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad()


def test_a_batch_without_a_label_gives_zero_for_its_terms_not_nan(mixed_setup):
    model, batch = mixed_setup
    none = _without_smpl(batch, [0, 1, 2, 3])
    terms = model.loss_2d(none)
    assert float(terms["mesh2d"].detach()) == 0.0 and float(terms["trimap"].detach()) == 0.0
    assert torch.isfinite(terms["points"])
    terms3 = model.loss_3d(none, generator=torch.Generator().manual_seed(0))
    assert all(float(v.detach()) == 0.0 for v in terms3.values())
    terms3["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad()


def test_loss_3d_of_a_mixed_batch_is_finite_and_counts_the_smpl_samples(mixed_setup):
    model, batch = mixed_setup
    mixed = _without_smpl(batch, [1])
    terms = model.loss_3d(mixed, generator=torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v) for v in terms.values()) and float(terms["total"].detach()) > 0
    terms["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad()
