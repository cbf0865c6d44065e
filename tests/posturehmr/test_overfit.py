"""The pieces fit together: schedule labels -> M2P decoder -> reverse process reaches the targets.

A tiny decoder is fitted on 4 fixed FK trajectories of the synthetic body (coarse 431-vertex level)
and must drive the reverse process from the T-pose template to within 1 cm MPVE of the targets.
Condition: the targets' coarse 3D meshes (``cond_dim=3``), an oracle that isolates the plumbing
from how hard it is to infer depth. Measured while writing this test: 450 full-batch Adam steps
give about 7 mm; with the 2D mesh as the condition the same budget reaches about 14 mm (600 steps),
because the tiny network must then memorise the targets' depth.
"""

from __future__ import annotations

import torch

from kinediff.decoders import M2PDecoder
from kinediff.forward import FKSchedule
from kinediff.mesh import MeshHierarchy


def test_tiny_decoder_overfits_four_fk_trajectories(body32, cache_dir):
    torch.manual_seed(0)
    hierarchy = MeshHierarchy.from_body(body32, cache_dir=cache_dir)
    schedule = FKSchedule(body32)
    gen = torch.Generator().manual_seed(0)
    pose = torch.randn(4, 24, 3, generator=gen) * 0.4
    pose[:, 0] = torch.tensor([3.0, 0.1, 0.0])  # upright, facing the camera
    betas = torch.randn(4, 10, generator=gen)
    with torch.no_grad():
        full = schedule.trajectory(pose, betas)  # (4, 11, 6890, 3)
        traj = hierarchy.downsample(full.flatten(0, 1)).view(4, 11, 431, 3)
    condition = traj[:, 0]
    decoder = M2PDecoder(hierarchy.adjacency(), dim=32, ffn_dim=64, num_layers=1, num_heads=2,
                         cond_dim=3)
    iters = 450
    opt = torch.optim.Adam(decoder.parameters(), lr=5e-3)
    lr = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    inputs = traj[:, 1:].reshape(40, 431, 3)  # M_t, t = 1..10
    labels = (traj[:, :-1] - traj[:, 1:]).reshape(40, 431, 3)  # M_{t-1} - M_t (eq. 7)
    steps = torch.arange(1, 11).repeat(4)
    cond = condition.repeat_interleave(10, 0)
    for _ in range(iters):
        loss = (decoder(inputs, cond, steps) - labels).square().sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        lr.step()
    start = hierarchy.downsample(schedule.initial(4))
    assert torch.allclose(start, traj[:, -1], atol=1e-5)
    result = decoder.reverse(start, condition, schedule, return_trajectory=True)
    assert result.shape == (4, 11, 431, 3)
    mpve = (result[:, 0] - traj[:, 0]).norm(dim=-1).mean()
    assert mpve < 0.01, f"MPVE {1e3 * float(mpve):.1f} mm"
