"""The reverse process (paper eq. 5), written once: :meth:`PostureHMR.predict
<kinediff.PostureHMR.predict>`, rollout training, :meth:`M2PDecoder.reverse
<kinediff.decoders.M2PDecoder.reverse>` and the ONNX graph all run :func:`reverse_process`.

The network is not part of the loop (as in diffusers, the pipeline owns it): ``denoise(mesh,
steps)`` is any function of the current mesh (B, N, C) and the step (B,) that returns the model's
output for the schedule's ``step`` (the posture paths' M_{t-1} - M_t, the noise process's noise or
x0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kinediff.forward.base import ForwardProcess

__all__ = ["Denoise", "reverse_process"]

#: ``denoise(mesh (B, N, C), steps (B,) long) -> model output (B, N, C)``.
Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def reverse_process(denoise: Denoise, schedule: ForwardProcess, start: torch.Tensor, *,
                    stop: torch.Tensor | None = None, return_trajectory: bool = False
                    ) -> torch.Tensor:
    """Run the reverse process of ``schedule`` from ``start`` over its ``timestep_values``.

    Each step t: ``steps`` = t for every sample (B,) long, then
    ``mesh = schedule.step(denoise(mesh, steps), t, mesh)`` (eq. 5 for the posture paths:
    M_{t-1} = M_t + F(M_t, ., t); the DDIM update for the noise process).

    Args:
        denoise: the network, as a function of the mesh and the steps (see :data:`Denoise`).
        schedule: a :class:`~kinediff.forward.ForwardProcess`.
        start: (B, N, C) the start: M_T (the posture paths' template end) or x_T (noise).
        stop: (B,) long, for rollout training on a posture path: the step at which each sample
            stops, in [1, T]. Step t then moves only the samples with ``stop < t``, and the loop
            takes the steps T .. 2 whatever ``stop`` holds (a fixed count: nothing is read back
            from the device, so ``torch.compile`` captures one graph).
        return_trajectory: return every mesh, not only the last.

    Returns:
        (B, N, C) the last mesh (M_0, or each sample's own M_stop with ``stop``); with
        ``return_trajectory`` (B, S + 1, N, C) for S steps, index s holding the mesh after all but
        the last s steps (index 0 the last mesh, index S the start; for the posture paths index
        t is M_t). With ``stop`` the entries below a sample's stop repeat its M_stop.
    """
    values = schedule.timestep_values
    taken = values[:-1] if stop is not None else values
    mesh = start
    meshes = [start]
    for t in taken:
        steps = torch.full((mesh.shape[0],), t, dtype=torch.long, device=mesh.device)
        moved = schedule.step(denoise(mesh, steps), t, mesh)
        mesh = moved if stop is None else torch.where((stop < t)[:, None, None], moved, mesh)
        meshes.append(mesh)
    if not return_trajectory:
        return mesh
    meshes += [mesh] * (len(values) + 1 - len(meshes))
    return torch.stack(meshes[::-1], dim=1)
