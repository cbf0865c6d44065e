"""DDP on CPU (gloo): 2 processes step like 1 process with the same global batch, and a
checkpoint written by 2 processes resumes in 1."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(out, max_steps: int, resume: bool, info=None) -> None:
    """The same training in every process: regressor, GT condition without noise (no randomness
    in the loss, so 1 and 2 processes must agree), global batch 8."""
    from kinediff.body import BodyModel
    from kinediff.data import SynthBody
    from kinediff.posturehmr import PostureHMR, PostureHMRConfig
    from kinediff.training import Trainer, model_weights
    from kinediff.training.config import TrainConfig

    body = BodyModel.synthetic()
    data = SynthBody(16, seed=4, body=body, image_size=64, mesh_factors=(4, 4, 4))
    # grad_clip=1.0: the key part of each attention layer's qkv bias has a gradient that is zero
    # in exact arithmetic (softmax ignores a shift shared by all keys) and about 3e-10 in float32,
    # a value that depends on the order of the reduction; Adam divides it by its own size (eps
    # 1e-8), so unclipped it moves those biases by reduction noise, differently for 1 and 2
    # processes. Clipping scales that noise far below eps; the test is about DDP, not this.
    cfg = PostureHMRConfig.tiny(decoder={"class": "GraphormerRegressor"}, train_condition="gt",
                                train=TrainConfig.tiny(batch_size=8, grad_clip=1.0))
    torch.manual_seed(0)
    model = PostureHMR(cfg, body)
    Trainer(model, "3d", data, out, epochs=100, max_steps=max_steps, progress=False,
            tensorboard=False, distributed=info).fit(resume=resume)
    if info is None or info.is_main:
        world = 1 if info is None else info.world_size
        torch.save(model_weights(model), os.path.join(out, f"weights_{world}_{max_steps}.pt"))


def _run(rank: int, world: int, port: int, out: str, max_steps: int, resume: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from kinediff.training.distributed import cleanup, setup

    info = setup("gloo")
    _train(out, max_steps, resume, info)
    cleanup()


def _launch(world: int, out, max_steps: int, resume: bool = False) -> dict:
    if world == 1:
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            os.environ.pop(key, None)
        _train(str(out), max_steps, resume)
    else:
        mp.spawn(_run, args=(world, _free_port(), str(out), max_steps, resume), nprocs=world,
                 join=True)
    return torch.load(out / f"weights_{world}_{max_steps}.pt", weights_only=True)


@pytest.fixture(scope="module")
def single(tmp_path_factory, cache_dir, synthetic_path):
    return _launch(1, tmp_path_factory.mktemp("single"), STEPS)


def _close(a: dict, b: dict) -> None:
    for key, value in a.items():
        torch.testing.assert_close(value, b[key], atol=2e-5, rtol=1e-4, msg=key)


def test_two_gloo_processes_match_one_with_the_same_global_batch(single, tmp_path):
    _close(_launch(2, tmp_path, STEPS), single)


def test_checkpoint_of_two_processes_resumes_in_one(single, tmp_path):
    _launch(2, tmp_path, STEPS - 1)  # rank 0 checkpoints after every epoch and at the end
    _close(_launch(1, tmp_path, STEPS, resume=True), single)
