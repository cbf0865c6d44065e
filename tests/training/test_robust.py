"""Robustness of training (marker ``robust``, harness :mod:`robust`): a full disk, stale temporary
files, checkpoints that cannot resume, refused and damaged weight files, unwritable output
folders, the default checkpoint interval and the CSV log after a crash, and the training config's
limits."""

from __future__ import annotations

import csv
import errno
import os
import pickle
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from robust import Evil, assert_clean, enospc, expect, write_fault_verdict

from kinediff.data import SynthBody
from kinediff.heads.hrnet_weights import read_state_dict
from kinediff.posturehmr import PostureHMR, PostureHMRConfig
from kinediff.training import TrainConfig, Trainer, load_checkpoint, load_model_weights, model_weights
from kinediff.training.checkpoint import check_output_dir, remove_stale_temporaries, save_checkpoint
from kinediff.training.engine import CHECKPOINT_EVERY

pytestmark = pytest.mark.robust


def config() -> PostureHMRConfig:
    return PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=4))


@pytest.fixture(scope="module")
def data(body32, cache_dir):
    """12 crops: an epoch of 3 steps at batch 4, of 4 at batch 3."""
    cfg = config()
    return SynthBody(12, seed=5, body=body32, image_size=cfg.image_size,
                     mesh_factors=cfg.mesh_factors, progress=False)


def trainer(body, data, out, **kw) -> Trainer:
    torch.manual_seed(0)
    kw = {"epochs": 2, "batch_size": 4, **kw}
    return Trainer(PostureHMR(config(), body), "3d", data, out, progress=False, tensorboard=False,
                   **kw)


@pytest.fixture(scope="module")
def checkpoint(body32, data, tmp_path_factory) -> Path:
    """A 3D-stage checkpoint after two steps."""
    t = trainer(body32, data, tmp_path_factory.mktemp("run"), max_steps=2)
    t.fit()
    return t.checkpoint_path


# -- a full disk, stale temporary files ---------------------------------------------------------

class FullDisk:
    """A binary file that takes ``room`` bytes, then fails as a full disk does (ENOSPC)."""

    def __init__(self, path, mode, room: int) -> None:
        self.handle, self.room = open(path, mode), room  # noqa: SIM115 (closed by __exit__)

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


@pytest.mark.parametrize("room", [0, 100, 2000])
def test_full_disk_names_the_file_and_leaves_no_temporary(room, tmp_path, monkeypatch):
    model = torch.nn.Linear(30, 30)
    target = tmp_path / "3d_last.pt"
    save_checkpoint(target, model, step=1)
    monkeypatch.setattr("kinediff.training.checkpoint.open",
                        lambda path, mode: FullDisk(path, mode, room), raising=False)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError, match="^no space left writing " + re.escape(str(target))) as info:
        save_checkpoint(target, model, step=2)
    assert info.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3d_last.pt"]  # no temporary file
    assert load_checkpoint(target)["step"] == 1  # the last good checkpoint is intact


def test_torch_writer_failure_without_errno_is_named(tmp_path, monkeypatch):
    def failing_save(obj, f):
        f.write(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr("kinediff.training.checkpoint.torch.save", failing_save)
    with pytest.raises(OSError, match="could not write .*3d_last.pt"):
        save_checkpoint(tmp_path / "3d_last.pt", torch.nn.Linear(2, 2))
    assert list(tmp_path.iterdir()) == []


def test_trainer_save_on_a_full_disk_leaves_nothing_behind(body32, data, tmp_path):
    t = trainer(body32, data, tmp_path)

    def torch_save_fault(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a file")
        raise enospc()

    def call():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch, "save", torch_save_fault)
            t.save()

    expect(write_fault_verdict(tmp_path, t.checkpoint_path, call))


def test_stale_temporary_files_are_removed_at_the_next_save(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(done.stdout)  # a process that has ended
    stale = tmp_path / f".3d_last.{dead}.tmp.pt"
    alive = tmp_path / f".3d_last.{os.getppid()}.tmp.pt"  # a running process: maybe a writer
    other = tmp_path / f".2d_last.{dead}.tmp.pt"  # another file's: not this save's business
    for path in (stale, alive, other):
        path.write_bytes(b"partial")
    save_checkpoint(tmp_path / "3d_last.pt", torch.nn.Linear(2, 2))
    assert not stale.exists() and alive.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path / "2d_last.pt") == [other]


# -- checkpoints that cannot resume -------------------------------------------------------------

def sgd_state(d):
    d["optimizer"] = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1).state_dict()


def sgd_groups(d):  # right numbers of parameters, an SGD's hyper-parameters
    for group in d["optimizer"]["param_groups"]:
        for key in ("betas", "eps"):
            group.pop(key)
        group.update(momentum=0.9, dampening=0.0, nesterov=False)


def shrunk_moments(d):
    state = d["optimizer"]["state"]
    key = next(iter(state))
    state[key] = {k: v[:1] if v.dim() else v for k, v in state[key].items()}


def nan_weight(d):
    key = next(k for k, v in d["model"].items() if v.is_floating_point() and v.numel() > 10)
    d["model"][key].view(-1)[0] = float("nan")


def missing_tensor(d):
    d["model"].pop(next(iter(d["model"])))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("optimizer"), "cannot resume training: it has no 'optimizer' entry"),
    (lambda d: d.pop("rng"), "no 'rng' entry"),
    (lambda d: d.pop("scheduler"), "no 'scheduler' entry"),
    (lambda d: [d.pop("step"), d.pop("epoch")], "no 'epoch', 'step' entries"),
    (lambda d: d.update(step=-1), "'step' must be an integer >= 0, got -1"),
    (lambda d: d.update(rng={"python": "x", "torch": torch.zeros(3)}), "'rng' is not kinediff's"),
    (sgd_state, "'optimizer' has groups of \\[1\\] parameters; this Trainer's Adam has"),
    (sgd_groups, "has no \\['betas', 'eps'\\]: the state of another optimiser"),
    (shrunk_moments, r"'exp_avg' has shape \(1\b.*\), the parameter \("),
    (lambda d: d["optimizer"]["state"].update({999: {}}), "state for parameter 999"),
    (lambda d: d["scheduler"].update(base_lrs=[]), "'scheduler' is not the state"),
    (lambda d: d.update(epoch="x"), "'epoch' must be an integer >= 0, got 'x'"),
    (nan_weight, r"holds NaN or infinite weights in 1 tensor\(s\) \("),
    (missing_tensor, r"does not match this model \(missing \['"),
])
def test_resume_refuses_before_changing_anything(mutate, message, checkpoint, body32, data, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    mutate(state)
    refused_before_changing_anything(state, message, body32, data, tmp_path)


def test_resume_refuses_the_optimiser_of_the_other_stage(checkpoint, body32, data, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    stage2d = Trainer(PostureHMR(config(), body32), "2d", data, tmp_path / "2d", progress=False,
                      tensorboard=False)
    state["optimizer"] = stage2d.optimizer.state_dict()
    refused_before_changing_anything(state, r"'optimizer' has groups of \[\d+, \d+\] parameters", body32,
                                     data, tmp_path)


def refused_before_changing_anything(state: dict, message: str, body, data, tmp_path: Path) -> None:
    """A trainer's resume from ``state`` raises ValueError matching ``message`` and naming the file,
    with its weights, optimiser, counters and the random generator unchanged."""
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    t = trainer(body, data, tmp_path / "run")
    weights = {k: v.clone() for k, v in model_weights(t.model).items()}
    rng = torch.get_rng_state()
    with pytest.raises(ValueError, match=message) as info:
        t.resume(bad)
    assert str(bad) in str(info.value)
    assert all(torch.equal(weights[k], v) for k, v in model_weights(t.model).items())
    assert (t.step, t.epoch, t.batch_in_epoch) == (0, 0, 0) and not t.optimizer.state
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_good_checkpoint_still_resumes(checkpoint, body32, data, tmp_path):
    t = trainer(body32, data, tmp_path)
    assert t.resume(checkpoint) and t.step == 2 and t.optimizer.state


# -- refused and damaged weight files -----------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_malicious_checkpoint_is_refused_without_unsafe_advice(tmp_path):
    marker = tmp_path / "ran"
    zipped = tmp_path / "evil.pt"
    torch.save({"model": Evil(marker)}, zipped)
    legacy = tmp_path / "legacy.pt"  # a plain pickle, as torch.load's legacy format
    legacy.write_bytes(pickle.dumps({"model": Evil(marker)}))
    with pytest.raises(ValueError, match=r"evil\.pt is not a readable kinediff checkpoint: it refers "
                                         r"to the Python object os\.makedirs") as info:
        load_checkpoint(zipped)
    assert_clean(str(info.value))
    with pytest.raises(ValueError, match=r"evil\.pt: not a state dict .* os\.makedirs") as info:
        read_state_dict(zipped)
    assert_clean(str(info.value))
    for read in (load_checkpoint, read_state_dict):
        with pytest.raises(ValueError, match=r"legacy\.pt.*a weights-only load refuses it") as info:
            read(legacy)
        assert_clean(str(info.value))
    assert not marker.exists()  # nothing in the files ran


def damaged(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Damaged files of several kinds, and what each message says."""
    raw = good.read_bytes()
    files = {"empty": (b"", "empty or cut short"),
             "half": (raw[: len(raw) // 2], "cut short or damaged"),
             "tail": (raw[:-10], "cut short or damaged"),
             "text": (b"hello world", "not a file torch.save wrote")}
    out = {}
    for name, (content, reason) in files.items():
        (tmp_path / f"{name}.pt").write_bytes(content)
        out[name] = (tmp_path / f"{name}.pt", reason)
    with zipfile.ZipFile(tmp_path / "zip.pt", "w") as z:
        z.writestr("hello.txt", "hi")
    out["zip"] = (tmp_path / "zip.pt", "a zip archive that torch.save did not write")
    return out


@pytest.mark.parametrize("kind", ["empty", "half", "tail", "text", "zip"])
def test_damaged_files_are_named_in_one_clean_line(kind, checkpoint, tmp_path):
    path, reason = damaged(tmp_path, checkpoint)[kind]
    for read in (load_checkpoint, read_state_dict):
        with pytest.raises(ValueError) as info:
            read(path)
        assert str(path) in str(info.value) and reason in str(info.value)
        assert_clean(str(info.value))


# -- output folders -----------------------------------------------------------------------------

@pytest.mark.parametrize("where, message", [
    (lambda tmp: tmp / "afile", "out_dir {tmp}/afile is a file, not a folder"),
    (lambda tmp: tmp / "afile" / "run", "out_dir {tmp}/afile/run cannot be made: {tmp}/afile is a file"),
])
def test_an_output_path_under_a_file_is_refused_before_training(where, message, body32, data,
                                                                 tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError) as info:
        trainer(body32, data, where(tmp_path))
    assert message.format(tmp=tmp_path) in str(info.value)


@pytest.mark.parametrize("code, kind", [(errno.EACCES, PermissionError), (errno.EROFS, OSError)])
def test_an_unwritable_output_folder_is_refused_before_training(code, kind, body32, data, tmp_path,
                                                                monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # the file system's answer to a write
    expected = f"out_dir {tmp_path / 'run'} is not writable (its parent {tmp_path} is not writable): "
    with pytest.raises(kind, match=re.escape(expected + os.strerror(code))) as info:
        trainer(body32, data, tmp_path / "run")
    assert info.value.errno == code
    assert not (tmp_path / "run").exists()  # checked without creating anything


def test_the_check_agrees_with_the_file_system_on_a_read_only_folder(tmp_path):
    """chmod 0o500: a normal user cannot write there, root can (permissions do not bind root);
    the check must give the file system's own answer either way."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        try:
            (folder / "probe").write_text("x")
            writable = True
        except PermissionError:
            writable = False
        if writable:
            assert check_output_dir(folder / "run") == folder / "run"
        else:
            with pytest.raises(PermissionError, match="is not writable"):
                check_output_dir(folder / "run")
    finally:
        folder.chmod(0o700)


# -- checkpoint interval and the log after a crash ----------------------------------------------

def log_steps(path: Path) -> list[int]:
    with open(path, newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def test_checkpoints_are_on_by_default_below_an_epochs_length():
    import inspect

    assert inspect.signature(Trainer).parameters["checkpoint_every"].default == CHECKPOINT_EVERY
    assert 0 < CHECKPOINT_EVERY < 9700  # a Human3.6M epoch at the paper's batch of 32


def test_an_interrupted_epoch_resumes_at_its_last_checkpoint_with_one_log_row_per_step(
        body32, data, tmp_path, monkeypatch):
    first = trainer(body32, data, tmp_path, epochs=1, batch_size=3, checkpoint_every=2)
    calls = []
    step = first.train_step

    def fail_on_the_fourth(batch):
        calls.append(1)
        if len(calls) == 4:  # steps 1-3 logged, the checkpoint at step 2
            raise KeyboardInterrupt  # Ctrl-C (any exception takes the same path)
        return step(batch)

    monkeypatch.setattr(first, "train_step", fail_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert log_steps(first.log_path) == [1, 2, 3]
    again = trainer(body32, data, tmp_path, epochs=1, batch_size=3, checkpoint_every=2)
    again.fit(resume=True)
    assert again.history[0]["step"] == 3  # resumed at step 2, mid-epoch (an epoch of 4 steps)
    assert log_steps(again.log_path) == [1, 2, 3, 4]


def test_a_fresh_run_replaces_an_old_log(body32, data, tmp_path):
    trainer(body32, data, tmp_path, max_steps=2, checkpoint_every=0).fit()
    trainer(body32, data, tmp_path, max_steps=1).fit()  # not resumed: starts afresh
    assert log_steps(tmp_path / "3d_log.csv") == [1]


# -- the training config and weights -----------------------------------------------------------

@pytest.mark.parametrize(("kw", "message"), [
    (dict(lr_2d=float("inf")), r"lr_2d must be a finite number > 0, got inf"),
    (dict(lr_3d=float("nan")), r"lr_3d must be a finite number > 0, got nan"),
    (dict(epochs=10**7), r"epochs must be an integer in \[1, 10000\], got 10000000"),
    (dict(batch_size=10**6), r"batch_size must be an integer in \[1, 65536\], got 1000000"),
    (dict(grad_clip=float("inf")), "grad_clip must be a finite number > 0, got inf"),
    (dict(epochs=2.0), "epochs must be an integer"),
])
def test_train_config_limits(kw, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kw)


def test_train_config_takes_numpy_numbers():
    train = TrainConfig(epochs=np.int64(3), batch_size=np.int32(8), lr_2d=np.float32(0.5))
    assert (train.epochs, train.batch_size, train.lr_2d) == (3, 8, 0.5)
    assert type(train.epochs) is int and TrainConfig.from_json(train.to_json()) == train


def test_weights_with_nan_are_refused_before_any_is_copied(body32, tmp_path):
    model = PostureHMR(PostureHMRConfig.tiny(), body32)
    state = {k: v.clone() for k, v in model_weights(model).items()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name].view(-1)[0] = float("nan")
    other = PostureHMR(PostureHMRConfig.tiny(), body32)
    before = {k: v.clone() for k, v in model_weights(other).items()}
    with pytest.raises(ValueError, match=rf"ckpt.pt holds NaN or infinite weights in 1 tensor\(s\) \({name}\)"):
        load_model_weights(other, state, "ckpt.pt")
    assert all(torch.equal(v, before[k]) for k, v in model_weights(other).items())
