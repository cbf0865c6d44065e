"""The trimap render loss (eq. 6) on 2D meshes is minimised by the GT mesh, and PostureHMR's 2D stage
uses it."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerances import atol_for

from kinediff.losses import soft_iou, trimap, trimap_render_loss
from kinediff.mesh import MeshHierarchy
from kinediff.render import soft_silhouette


@pytest.fixture(scope="module")
def coarse(body32, cache_dir):
    """The synthetic body's 431-vertex level and its faces."""
    h = MeshHierarchy.from_body(body32, (4, 4), cache_dir=cache_dir)
    return body32, h


def _body_mesh2d(body, hierarchy, seed: int, yaw: float, size: int, fill: float,
                 shift: tuple[float, float]) -> torch.Tensor:
    """A posed body's coarse mesh seen orthographically, filling ``fill`` of a ``size`` crop."""
    from kinediff.data import sample_body_pose

    g = torch.Generator().manual_seed(seed)
    pose = sample_body_pose(1, g, 0.8, torch.float32)
    c, s = math.cos(yaw), math.sin(yaw)
    pose[0, 0] = torch.tensor([math.pi, 0.0, 0.0])  # upright in image coordinates (y down)
    with torch.no_grad():
        verts = body(pose, torch.randn(1, 10, generator=g)).vertices
    rot = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    xy = hierarchy.downsample(verts @ rot.T)[..., :2]
    lo, hi = xy.amin(1, keepdim=True), xy.amax(1, keepdim=True)
    scale = fill * size / float((hi - lo).max())
    return (xy - (lo + hi) / 2) * scale + size / 2 + torch.tensor(shift) * size


@settings(max_examples=6)
@given(seed=st.integers(0, 10_000), yaw=st.floats(-math.pi, math.pi),
       size=st.sampled_from([64, 256]), sigma=st.sampled_from([0.5, 1.0]),
       fill=st.floats(0.5, 0.9), dx=st.floats(-0.05, 0.05), dy=st.floats(-0.05, 0.05))
def test_the_gt_mesh_minimises_the_render_loss_over_scale(coarse, seed, yaw, size, sigma, fill,
                                                          dx, dy):
    body, h = coarse
    gt = _body_mesh2d(body, h, seed, yaw, size, fill, (dx, dy))
    centre = gt.mean(1, keepdim=True)
    scales = torch.linspace(0.96, 1.04, 17)  # steps of 0.5 %
    preds = torch.cat([centre + s * (gt - centre) for s in scales])
    losses = trimap_render_loss(preds, gt.expand_as(preds), h.faces(-1), size, 8 if size == 256
                                else 3, sigma)
    best = float(scales[int(losses.argmin())])
    assert abs(best - 1.0) <= 0.01, (best, losses.tolist())
    # P = G: both IoUs are 1 (2 - IoU - IoU is rounded at 2)
    assert float(losses[8]) == pytest.approx(0.0, abs=atol_for(2.0, torch.float32, ulps=256))


def test_a_hard_gt_mask_would_prefer_a_shrunken_mesh(coarse):
    """Why G is rendered like P: against the hard silhouette the loss prefers a smaller mesh
    (the defect this loss replaces), so the property above is not automatic."""
    body, h = coarse
    gt = _body_mesh2d(body, h, 3, 0.4, 256, 0.8, (0.0, 0.0))
    centre = gt.mean(1, keepdim=True)
    scales = torch.linspace(0.94, 1.02, 17)
    hard = soft_silhouette(gt, h.faces(-1), 256, 0.0)
    band = trimap(hard, 8)
    losses = []
    for s in scales:
        pred = soft_silhouette(centre + s * (gt - centre), h.faces(-1), 256, 1.0)
        losses.append(float(2 - soft_iou(pred, hard) - soft_iou(pred * band, hard * band)))
    assert float(scales[int(torch.tensor(losses).argmin())]) < 0.985


def test_masks_are_chosen_per_sample(coarse):
    body, h = coarse
    gt = torch.cat([_body_mesh2d(body, h, s, 0.3 * s, 64, 0.8, (0.0, 0.0)) for s in range(3)])
    pred = gt * 1.03 - 1.0
    faces = h.faces(-1)
    masks = soft_silhouette(gt + 1.5, faces, 64, 0.0)  # a mask that is not the mesh's silhouette
    use = torch.tensor([True, False, True])
    got = trimap_render_loss(pred, gt, faces, 64, 3, 0.5, gt_mask=masks, use_mask=use)
    soft_p = soft_silhouette(pred, faces, 64, 0.5)
    mesh_g = soft_silhouette(gt, faces, 64, 0.5)
    for i in range(3):
        g = masks[i:i + 1] if use[i] else mesh_g[i:i + 1]
        c = trimap(masks[i:i + 1] if use[i] else soft_silhouette(gt[i:i + 1], faces, 64, 0.0), 3)
        want = 2 - soft_iou(soft_p[i:i + 1], g) - soft_iou(soft_p[i:i + 1] * c, g * c)
        torch.testing.assert_close(got[i:i + 1], want)
    # the mesh target everywhere when no sample uses its mask
    none = trimap_render_loss(pred, gt, faces, 64, 3, 0.5, gt_mask=masks,
                              use_mask=torch.zeros(3, dtype=torch.bool))
    torch.testing.assert_close(none, trimap_render_loss(pred, gt, faces, 64, 3, 0.5))


def test_gradients_flow_to_the_prediction_only(coarse):
    body, h = coarse
    gt = _body_mesh2d(body, h, 1, 0.0, 64, 0.8, (0.0, 0.0)).requires_grad_(True)
    pred = (gt.detach() * 1.02).requires_grad_(True)
    trimap_render_loss(pred, gt, h.faces(-1), 64, 3, 0.5).sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert gt.grad is None


def test_errors(coarse):
    body, h = coarse
    gt = _body_mesh2d(body, h, 1, 0.0, 64, 0.8, (0.0, 0.0))
    faces = h.faces(-1)
    with pytest.raises(ValueError, match="differ in shape"):
        trimap_render_loss(gt[:, :-1], gt, faces, 64)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0 .for a differentiable render loss."):
        trimap_render_loss(gt, gt, faces, 64, 3, 0.0)
    with pytest.raises(ValueError, match="give gt_mask and use_mask together"):
        trimap_render_loss(gt, gt, faces, 64, 3, 0.5, gt_mask=torch.zeros(1, 64, 64))
    with pytest.raises(ValueError, match=r"gt_mask must have shape \(1, 64, 64\)"):
        trimap_render_loss(gt, gt, faces, 64, 3, 0.5, gt_mask=torch.zeros(1, 32, 32),
                           use_mask=torch.ones(1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"use_mask must have shape \(1,\)"):
        trimap_render_loss(gt, gt, faces, 64, 3, 0.5, gt_mask=torch.zeros(1, 64, 64),
                           use_mask=torch.ones(2, dtype=torch.bool))


def test_posturehmr_loss_2d_uses_it(body32, cache_dir):
    from kinediff import PostureHMR, PostureHMRConfig
    from kinediff.data import SynthBody

    torch.manual_seed(0)
    data = SynthBody(4, seed=2, image_size=64, mesh_factors=(4, 4, 4), progress=False)
    batch = data.batch(range(4))
    for target in ("mesh", "mask"):
        model = PostureHMR(PostureHMRConfig.tiny(render_target=target), body32).eval()
        terms = model.loss_2d(batch)
        with torch.no_grad():
            out = model.head(batch["image"])
        kw = {} if target == "mesh" else {"gt_mask": batch["mask"], "use_mask": batch["has_mask"]}
        want = trimap_render_loss(out["mesh2d"], batch["mesh2d"], model.hierarchy.faces(-1), 64,
                                  3, 0.5, **kw).mean()
        torch.testing.assert_close(terms["trimap"], want)
        c = model.config
        total = c.point_weight * terms["points"] + c.mesh2d_weight * terms["mesh2d"] \
            + c.render_weight * terms["trimap"]
        torch.testing.assert_close(terms["total"], total)
