"""Robustness of the forward processes' inputs (marker ``robust``, harness :mod:`robust`): the
noise schedule's sizes bounded, and ``step`` refusing a timestep that is not one of its own. The
integer timesteps outside the schedule (5, 950, -1, 1000, a tensor holding 901) are checked in
../test_compile.py."""

from __future__ import annotations

import pytest
import torch
from robust import expect, refusal

from kinediff.forward import GaussianNoiseSchedule

pytestmark = pytest.mark.robust


def test_noise_schedule_sizes_are_bounded():
    with pytest.raises(ValueError, match=r"num_train_steps must be an integer in \[1, 10000\], got 10000000000"):
        GaussianNoiseSchedule(num_train_steps=10**10)
    with pytest.raises(ValueError, match="num_train_steps must be an integer"):
        GaussianNoiseSchedule(num_train_steps=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"num_steps \(20\) must not exceed num_train_steps \(10\)"):
        GaussianNoiseSchedule(num_steps=20, num_train_steps=10)


@pytest.mark.parametrize("t", [900.0, torch.tensor([900.0, 900.0]), torch.tensor([900, 1000])],
                         ids=["float", "float_tensor", "tensor_one_out_of_range"])
def test_a_timestep_that_is_not_the_schedules_is_refused(t):
    schedule = GaussianNoiseSchedule(num_steps=10, num_train_steps=1000)
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1))
    expect(refusal(lambda: schedule.step(x, t, x.clone()), [("t",)]))
