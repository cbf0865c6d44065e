"""A plain, readable training loop for :class:`~kinediff.PostureHMR` (no framework).

One :class:`Trainer` trains one stage ("2d" or "3d") of one model: Adam with the config's
learning-rate groups, the learning rate multiplied by ``lr_decay`` at ``lr_decay_epoch``, gradient
clipping, autocast (bfloat16) on CUDA, a tqdm bar, a CSV log (and TensorBoard when the
``tensorboard`` package is installed), periodic evaluation with :class:`~kinediff.metrics.Evaluator`,
and checkpoints written atomically every ``checkpoint_every`` steps (default
:data:`CHECKPOINT_EVERY`) and at every epoch end; the CSV log keeps one row per step up to the
position training continues from (rows of steps a crash undid are dropped when it resumes).

Determinism: batch order comes from :class:`EpochBatchSampler`, a function of (seed, epoch) only,
and the loop's own randomness (steps, noise) from the global torch generator whose state is in
every checkpoint; so a resumed run takes exactly the steps the uninterrupted run would have taken.
The sampler splits batches by rank, so distributed training (:mod:`kinediff.training.distributed`)
adds only the process group and the gradients' all-reduce around this loop.
"""

from __future__ import annotations

import csv
import math
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from kinediff.body import BodySet
from kinediff.core.checks import check_choice, check_int, check_number, compile_options, value_checks
from kinediff.core.conventions import synthetic_h36m_regressor
from kinediff.core.io import write_atomic
from kinediff.data.sample import collate
from kinediff.metrics import GRAPHORMER_3DPW, Evaluator, load_regressor
from kinediff.training.checkpoint import (
    check_output_dir,
    check_resumable,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
    set_rng_state,
)
from kinediff.training.config import TrainConfig
from kinediff.training.distributed import DistInfo, LossModule, all_reduce_mean, barrier

__all__ = ["CHECKPOINT_EVERY", "EpochBatchSampler", "Trainer", "evaluate", "ground_truth_vertices",
           "move_batch"]

#: :class:`Trainer`'s default ``checkpoint_every``: a crash or Ctrl-C mid-epoch redoes at most
#: this many steps, not the epoch (thousands of steps on Human3.6M at the paper's batch size).
#: A checkpoint of the full-size model (weights and Adam's two moments) is about 0.43 GB in the 3D
#: stage and 0.85 GB in the 2D stage (docs/benchmarks.md has the time one takes to write).
CHECKPOINT_EVERY = 500


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of indices: a permutation drawn from ``seed`` and ``epoch`` alone, cut into global
    batches of ``batch_size`` (the last, short one dropped when ``drop_last``), the first ``skip``
    global batches left out (resuming mid-epoch), and each global batch split into ``world_size``
    equal contiguous parts of which this ``rank`` takes its own (so N processes step through the
    same global batches as one)."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, epoch: int = 0, skip: int = 0,
                 shuffle: bool = True, drop_last: bool = True, rank: int = 0,
                 world_size: int = 1) -> None:
        check_int(n, "n", 1, what="samples")
        check_int(batch_size, "batch_size", 1)
        if batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must be a multiple of the number of "
                             f"processes ({world_size})")
        self.n, self.batch_size, self.seed, self.epoch, self.skip = n, batch_size, seed, epoch, skip
        self.shuffle, self.drop_last, self.rank, self.world_size = shuffle, drop_last, rank, world_size

    def batches(self) -> list[list[int]]:
        """Every global batch of the epoch, before skipping and splitting."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        out = [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        if self.drop_last and out and len(out[-1]) < self.batch_size and len(out) > 1:
            out.pop()
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches()[self.skip:]:
            part = -(-len(batch) // self.world_size)
            mine = batch[self.rank * part:(self.rank + 1) * part]
            if mine:
                yield mine

    def __len__(self) -> int:
        return max(0, len(self.batches()) - self.skip)


def move_batch(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors of a batch to ``device`` (strings and lists stay)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def _loader(dataset, sampler: Sampler, num_workers: int, pin_memory: bool = False) -> DataLoader:
    """Batches for ``sampler``; ``pin_memory`` (for a CUDA device) makes the copies to the device
    asynchronous."""
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
                      generator=torch.Generator().manual_seed(0), pin_memory=pin_memory)


def ground_truth_vertices(bodies, pose: torch.Tensor, betas: torch.Tensor,
                          genders: list[str] | None, context: str = "evaluate") -> torch.Tensor:
    """GT meshes (B, V, 3) from SMPL parameters: with ``genders`` (one per sample) each sample's own
    gender's model builds its mesh (gendered GT), without them the neutral model builds all.

    ``bodies``: a :class:`~kinediff.body.BodySet` (or anything :meth:`BodySet.of` takes) on the
    parameters' device. A gender without its own model raises ``ValueError`` naming the SMPL
    file it needs (and starting with ``context``).
    """

    bodies = BodySet.of(bodies)
    if genders is None:
        return bodies.for_gender("neutral", context)(pose, betas).vertices
    if len(genders) != pose.shape[0]:
        raise ValueError(f"{context}: {len(genders)} genders for {pose.shape[0]} samples")
    bodies.require(genders, context)
    out = None
    for gender in dict.fromkeys(genders):
        rows = torch.tensor([i for i, g in enumerate(genders) if g == gender], device=pose.device)
        verts = bodies.for_gender(gender, context)(pose[rows], betas[rows]).vertices
        if out is None:
            out = verts.new_empty(pose.shape[0], *verts.shape[1:])
        out[rows] = verts
    assert out is not None
    return out


@torch.no_grad()
def evaluate(model, dataset, batch_size: int = 32, device: torch.device | str | None = None,
             protocol=None, regressor: torch.Tensor | None = None, label: str | None = None,
             condition: str = "predicted", condition_noise_px: float = 0.0, seed: int = 0,
             progress: bool = True, num_workers: int = 0, body=None):
    """Run ``model.predict`` over ``dataset`` and score it; returns the filled
    :class:`~kinediff.metrics.Evaluator`.

    Args:
        protocol: a :class:`~kinediff.metrics.Protocol` (default ``GRAPHORMER_3DPW``).
        regressor: its (17, V) H36M regressor. Default: for the synthetic body, the one
            ``load_regressor(protocol, body=...)`` builds; for any other body, the same
            H36M-style rows of its own SMPL joint regressor, with a warning — a training monitor,
            not the protocol's numbers (pass the protocol's file for those).
        label: the data-set name printed with every number.
        condition: "predicted" (the model's own 2D mesh) or "gt" (the batch's ``mesh2d`` plus
            Gaussian noise of ``condition_noise_px`` pixels, drawn from ``seed``).
        body: the models that build the GT meshes from the samples' SMPL parameters: one
            :class:`~kinediff.body.BodyModel`, or a mapping gender -> model
            (:func:`~kinediff.body.load_smpl_bodies`); default the model's own body. A protocol
            with ``gt_gender == "gendered"`` builds each sample's GT with its own gender's model
            (a male or female sample without one raises, naming the SMPL file it needs); a
            "neutral" protocol builds every GT with the neutral model.
    """
    check_choice(condition, "condition", ("predicted", "gt"))
    check_number(condition_noise_px, "condition_noise_px", 0.0)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    protocol = protocol or GRAPHORMER_3DPW
    if regressor is None:
        try:
            regressor = load_regressor(protocol, None, body=model.body)
        except FileNotFoundError:  # a real body without its protocol's file: monitor anyway

            warnings.warn(f"evaluate: no regressor given for {protocol.name} with the "
                          f"{getattr(model.body, 'name', 'body')!r} model, so the joints come "
                          f"from H36M-style rows of its SMPL joint regressor: not "
                          f"{protocol.regressor_file}, not the protocol's numbers", stacklevel=2)
            regressor = synthetic_h36m_regressor(model.body)
    gendered = protocol.gt_gender == "gendered"
    bodies = BodySet.of(body, default=model.body).to(device, torch.float32)
    context = (f"the {protocol.name} protocol builds the GT with each sample's "
               f"{'gendered' if gendered else 'neutral'} SMPL model")
    evaluator = Evaluator(protocol, regressor.to(device), label or type(dataset).__name__)
    model.eval()
    g = torch.Generator().manual_seed(seed)
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=False, drop_last=False)
    for batch in tqdm(_loader(dataset, sampler, num_workers), desc="evaluating", unit="batch",
                      disable=not progress, leave=False):
        batch = move_batch(batch, device)
        genders = list(batch["gender"]) if gendered else None
        # the GT first: a missing gendered model fails before any prediction is spent
        gt = ground_truth_vertices(bodies, batch["pose"].float(), batch["betas"].float(), genders,
                                   context)
        mesh2d = None
        if condition == "gt":
            noise = torch.randn(batch["mesh2d"].shape, generator=g).to(batch["mesh2d"])
            mesh2d = batch["mesh2d"].float() + condition_noise_px * noise
        pred = model.predict(batch["image"], mesh2d=mesh2d, generator=g)
        # Human3.6M carries measured joints: the protocols score joints against those
        evaluator.update(pred["vertices"], gt, batch.get("joints17"))
    return evaluator


class Trainer:
    """Train one stage of a PostureHMR model.

    Args:
        model: a :class:`~kinediff.PostureHMR` (moved to ``device``).
        stage: "2d" or "3d" (``model.stages()`` lists the ones its config needs).
        train_set: a data set of samples (:mod:`kinediff.data.sample`).
        out_dir: where ``{stage}_last.pt``, ``{stage}_log.csv`` (and TensorBoard files) go;
            a path that cannot be a writable folder (a file, under a file, read-only) raises
            ``OSError`` naming it here, before any training.
        epochs, batch_size: default to ``train``'s.
        eval_set, eval_every: evaluate every ``eval_every`` epochs (3D stage) on ``eval_set``,
            with :func:`evaluate`'s ``protocol``, ``regressor`` and GT ``body`` given as
            ``eval_protocol``, ``eval_regressor`` and ``eval_body``.
        checkpoint_every: also checkpoint every this many steps (default
            :data:`CHECKPOINT_EVERY`, 500; 0: only at epoch ends), so that an exception or
            Ctrl-C mid-epoch resumes from the last of them rather than the epoch's start.
        seed: batch order seed. device: default the model's (or the rank's).
        amp: bfloat16 autocast of the networks on CUDA (default on, kinediff's choice (the
            paper is silent): tensor-core speed; labels, forward paths and the loss's
            comparisons stay in the model's dtype); False trains in float32 throughout.
        distributed: a :class:`~kinediff.training.distributed.DistInfo` from ``setup()`` under
            torchrun (DDP; ``batch_size`` is the global batch, split over the ranks).
        max_steps: stop after this many steps in total (a budget; the checkpoint records where).
        progress: tqdm bars. num_workers: DataLoader workers.
        epoch_offset: epochs the model trained before this run (fine-tuning after pre-training):
            the loss's epoch-dependent terms (the 3D edge term's ``edge_loss_start``) count from
            there; the learning-rate schedule starts afresh.
        train: a :class:`~kinediff.training.TrainConfig` (learning rates, epochs, decay, batch
            size, clipping); default the model config's ``train``.
        compile: run the stage's loss (forward; its backward follows) through ``torch.compile``
            (off by default: the first steps then take minutes to compile; worth it for long GPU
            runs, see docs/benchmarks.md); a dict is passed to ``torch.compile`` as its options.
            Only the batch's tensors reach the compiled function.
        check_values: run kinediff's value checks (:func:`kinediff.value_checks`: finiteness,
            index ranges) inside the training steps. Off by default: on a GPU each is a host
            synchronisation, and the data was checked when its records were read.
        channels_last: the HRNet's weights in channels-last memory format (tensor cores' layout);
            default on CUDA only.

    Per step the loop reads the loss terms and the gradient norm back once (one synchronisation,
    after the backward pass and before the optimiser step, so that a non-finite loss or gradient
    stops training before it reaches the weights).
    """

    def __init__(self, model, stage: str, train_set, out_dir: str | os.PathLike,
                 epochs: int | None = None, batch_size: int | None = None, eval_set=None,
                 eval_every: int = 1, checkpoint_every: int = CHECKPOINT_EVERY, seed: int = 0,
                 device: torch.device | str | None = None, amp: bool | None = None,
                 max_steps: int | None = None, progress: bool = True, num_workers: int = 0,
                 tensorboard: bool = True, distributed: DistInfo | None = None,
                 epoch_offset: int = 0, eval_protocol=None,
                 eval_regressor: torch.Tensor | None = None, eval_body=None,
                 train: TrainConfig | None = None, compile: bool | dict[str, Any] = False,
                 check_values: bool = False, channels_last: bool | None = None) -> None:
        if stage not in model.stages():
            raise ValueError(f"this model trains stages {model.stages()}, not {stage!r}")
        cfg = model.config.train if train is None else train
        self.train_config = cfg
        self.model, self.stage, self.train_set = model, stage, train_set
        self.out_dir = Path(out_dir)
        # an override is an integer >= 1 like the config's field, without the field's bound on
        # epochs: a run measured in steps passes a huge epoch count with max_steps
        self.epochs = cfg.epochs if epochs is None else check_int(epochs, "epochs", 1)
        self.batch_size = min(cfg.batch_size if batch_size is None  # the config's own rule
                              else cfg.replace(batch_size=batch_size).batch_size, len(train_set))
        self.eval_set, self.eval_every = eval_set, eval_every
        self.eval_options = {"protocol": eval_protocol, "regressor": eval_regressor,
                             "body": eval_body}
        self.checkpoint_every, self.seed, self.max_steps = checkpoint_every, seed, max_steps
        self.dist = distributed or DistInfo()
        _check_out_dir(self.out_dir, self.dist)
        if device is not None:
            self.device = torch.device(device)
        elif self.dist.active:
            self.device = self.dist.device
        else:
            self.device = next(model.parameters()).device
        model.to(self.device)
        if channels_last if channels_last is not None else self.device.type == "cuda":
            model.to(memory_format=torch.channels_last)  # the 4-D (convolution) weights
        self.check_values = bool(check_values)
        self.amp = (self.device.type == "cuda") if amp is None else (amp and self.device.type == "cuda")
        self.progress, self.num_workers = progress, num_workers
        groups = model.parameter_groups(stage, cfg)
        trained = {id(p) for g in groups for p in g["params"]}
        for p in model.parameters():  # what this stage does not train is frozen
            p.requires_grad_(id(p) in trained)
        self.optimizer = torch.optim.Adam(groups)
        self.ddp: torch.nn.Module | None = None
        if self.dist.active:

            self.ddp = DistributedDataParallel(
                LossModule(model), device_ids=[self.device] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        options = compile_options(compile)
        self.compile = options is not None
        self._loss_fn = self.ddp if self.ddp is not None else LossModule(model)
        if options is not None:
            # static shapes by default: a run sees two batch sizes (the full one and an epoch's
            # last), and the steps' CPU draws (torch.rand(B, ...)) cannot take a symbolic size
            self._loss_fn = torch.compile(self._loss_fn, **{"dynamic": False, **options})
        decay_at = cfg.lr_decay_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda epoch: cfg.lr_decay if epoch >= decay_at else 1.0)
        self.epoch_offset = check_int(epoch_offset, "epoch_offset", 0)
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.history: list[dict[str, float]] = []
        self.evaluations: list[dict[str, float]] = []
        self._writer = None
        if tensorboard and self.dist.is_main:
            try:
                # tensorboard: optional, imported only when logging is on
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.out_dir / "tensorboard" / stage))
            except ImportError:  # tensorboard is optional; the CSV log is always written
                self._writer = None

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / f"{self.stage}_last.pt"

    @property
    def log_path(self) -> Path:
        return self.out_dir / f"{self.stage}_log.csv"

    # -- checkpoints --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Checkpoint the current position (atomic write; rank 0 only, the others wait)."""
        target = Path(path) if path is not None else self.checkpoint_path
        if not self.dist.is_main:
            barrier(self.dist)
            return target
        out = save_checkpoint(path or self.checkpoint_path, self.model, self.optimizer,
                               self.scheduler, stage=self.stage, epoch=self.epoch,
                               batch_in_epoch=self.batch_in_epoch, step=self.step, seed=self.seed,
                               config=self._run_config().to_json())
        barrier(self.dist)
        return out

    def _run_config(self):
        """The model's config with the training settings this Trainer uses (``train=``)."""
        return self.model.config.replace(train=self.train_config)

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Continue from a checkpoint (default: this stage's last). Returns False when none exists.

        A checkpoint that cannot resume this Trainer (another stage or config, no optimiser or
        random states, another optimiser's state: :func:`~kinediff.training.checkpoint.check_resumable`)
        raises ``ValueError`` naming it before anything is loaded."""
        path = Path(path) if path is not None else self.checkpoint_path
        if not path.is_file():
            return False
        data = load_checkpoint(path, map_location=self.device)
        if data.get("stage") != self.stage:
            raise ValueError(f"{path} is a stage {data.get('stage')!r} checkpoint, not {self.stage!r}")
        config = self._run_config()
        try:  # compared as configs, not as text (key order and formatting do not matter)
            same = type(config).from_json(data.get("config") or "{}", str(path)) == config
        except (ValueError, TypeError):
            same = False
        if not same:
            raise ValueError(f"{path} was written with a different PostureHMRConfig")
        check_resumable(data, path, self.optimizer, self.scheduler)  # before any state changes
        load_model_weights(self.model, data["model"], str(path))
        self.optimizer.load_state_dict(data["optimizer"])
        self.scheduler.load_state_dict(data["scheduler"])
        self.epoch, self.batch_in_epoch = int(data["epoch"]), int(data["batch_in_epoch"])
        self.step, self.seed = int(data["step"]), int(data["seed"])
        set_rng_state(data["rng"])
        return True

    # -- the loop -----------------------------------------------------------------------------

    def _log(self, row: dict[str, float]) -> None:
        if not self.dist.is_main:
            return
        new = not self.log_path.exists()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._writer is not None:
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self._writer.add_scalar(f"{self.stage}/{key}", value, int(row["step"]))

    def _trim_log(self) -> None:
        """Drop the log rows of steps after the current position (steps a crash undid, or an
        earlier run's when this one starts afresh), so that every step has one row."""
        if not self.dist.is_main or not self.log_path.is_file():
            return
        with open(self.log_path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows or "step" not in rows[0]:
            return
        column = rows[0].index("step")
        kept = [rows[0]] + [r for r in rows[1:] if len(r) > column and _step_of(r[column]) <= self.step]
        if len(kept) == len(rows):
            return
        if len(kept) == 1:
            self.log_path.unlink()
            return

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(kept)

        write_atomic(self.log_path, write)

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One optimiser step on a batch; returns the loss terms as floats."""
        self.model.train_mode(self.stage)
        batch = move_batch(batch, self.device)
        epoch = self.epoch + self.epoch_offset
        if self.compile:  # the tensors only, and the epoch only as far as the loss reads it
            batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
            epoch = self.model.loss_epoch(epoch)
        with value_checks(self.check_values):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                terms = self._loss_fn(batch, self.stage, epoch)
            loss = terms["total"]
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip = self.train_config.grad_clip  # None: no clipping, the norm is still logged
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            if clip is None:
                grad_norm = torch.nn.utils.get_total_norm(
                    [p.grad for p in params if p.grad is not None])
            else:
                grad_norm = torch.nn.utils.clip_grad_norm_(params, clip, error_if_nonfinite=False)
        names = list(terms)
        # the step's one read-back: every term and the norm at once
        values = torch.stack([terms[k].detach().float() for k in names]
                             + [grad_norm.detach().float().to(loss.device)]).tolist()
        out = dict(zip(names, values[:-1]))
        # the gradient norm is taken after DDP's all-reduce: every rank decides alike
        if not (math.isfinite(out["total"]) and math.isfinite(values[-1])):
            self.optimizer.zero_grad(set_to_none=True)
            raise FloatingPointError(f"non-finite loss or gradients at step {self.step}: {out}, "
                                     f"grad_norm {values[-1]}")
        self.optimizer.step()
        out["grad_norm"] = values[-1]
        return all_reduce_mean(out, self.dist)

    def fit(self, resume: bool = False) -> list[dict[str, float]]:
        """Train to ``epochs`` (or ``max_steps``); with ``resume``, first continue from the last
        checkpoint when there is one. Returns the per-step log rows of this call."""

        if resume:
            self.resume()
        self._trim_log()
        if self.dist.active:  # per-rank random streams, a function of (seed, rank, step)
            torch.manual_seed(self.seed * 7919 + self.dist.rank * 104_729 + self.step)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        per_epoch = len(EpochBatchSampler(len(self.train_set), self.batch_size, self.seed, 0,
                                          rank=self.dist.rank, world_size=self.dist.world_size))
        total = per_epoch * self.epochs
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        # one bar over the whole run, counting optimiser steps ("120/300 step"), the epoch in
        # its postfix
        bar = tqdm(total=total, initial=min(self.step, total), desc=f"stage {self.stage}",
                   unit="step", disable=not (self.progress and self.dist.is_main), leave=False)
        # the epoch count is shown against its total only when the epochs, not a step budget,
        # end the run
        of_epochs = f"/{self.epochs}" if total == per_epoch * self.epochs else ""
        try:
            self._fit_epochs(bar, of_epochs)
        finally:
            bar.close()
        if self._writer is not None:
            self._writer.flush()
        return self.history

    def _fit_epochs(self, bar, of_epochs: str) -> None:
        """The epoch loop of :meth:`fit`, advancing ``bar`` by one per step."""
        while self.epoch < self.epochs and not self._budget_spent():
            set_epoch = getattr(self.train_set, "set_epoch", None)
            if callable(set_epoch):  # per-epoch augmentation draws
                set_epoch(self.epoch)
            sampler = EpochBatchSampler(len(self.train_set), self.batch_size, self.seed,
                                        self.epoch, skip=self.batch_in_epoch, rank=self.dist.rank,
                                        world_size=self.dist.world_size)
            start = time.perf_counter()
            for batch in _loader(self.train_set, sampler, self.num_workers,
                                 pin_memory=self.device.type == "cuda"):
                terms = self.train_step(batch)
                self.step += 1
                self.batch_in_epoch += 1
                row = {"step": self.step, "epoch": self.epoch,
                       "lr": self.optimizer.param_groups[0]["lr"], **terms,
                       "seconds": time.perf_counter() - start}
                self.history.append(row)
                self._log(row)
                bar.update(1)
                bar.set_postfix(epoch=f"{self.epoch + 1}{of_epochs}", loss=f"{terms['total']:.4f}")
                if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                    self.save()
                if self._budget_spent() and self.batch_in_epoch < sampler.skip + len(sampler):
                    break  # mid-epoch; at an epoch's last batch the epoch is closed first
            else:
                self.epoch += 1
                self.batch_in_epoch = 0
                self.scheduler.step()
                report = getattr(self.train_set, "report", None)
                if callable(report) and report() and self.dist.is_main:
                    print(report())
                if self.eval_set is not None and self.stage == "3d" \
                        and self.epoch % self.eval_every == 0:
                    if self.dist.is_main:
                        summary = evaluate(self.model, self.eval_set, self.batch_size, self.device,
                                           progress=self.progress, **self.eval_options).summary()
                        self.evaluations.append({"epoch": self.epoch, **summary})
                    barrier(self.dist)
            self.save()

    def _budget_spent(self) -> bool:
        return self.max_steps is not None and self.step >= self.max_steps


def _step_of(text: str) -> float:
    """A log row's step (a row whose step cannot be read counts as after any position)."""
    try:
        return float(text)
    except ValueError:
        return float("inf")


def _check_out_dir(out_dir: Path, dist: DistInfo) -> None:
    """Refuse an output folder the main process cannot write, before any training step."""
    if dist.is_main:
        check_output_dir(out_dir, "out_dir")
