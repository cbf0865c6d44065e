"""Issue 21, training faults and the command line: a full disk, stale temporary files, checkpoints
that cannot resume, refused and damaged weight files, unwritable output folders, the default
checkpoint interval and the CSV log after a crash; every CLI user error in one line (exit 2),
Ctrl-C (exit 130), ``--debug``, and real bugs keeping their traceback."""

from __future__ import annotations

import csv
import errno
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kinediff.apps.predict import check_box, check_focal
from kinediff.cli import EXIT_INTERRUPTED, EXIT_USER_ERROR, main
from kinediff.data import SynthBody
from kinediff.heads.hrnet_weights import read_state_dict
from kinediff.posturehmr import PostureHMR, PostureHMRConfig
from kinediff.training import TrainConfig, Trainer, load_checkpoint, model_weights
from kinediff.training.checkpoint import check_output_dir, remove_stale_temporaries, save_checkpoint
from kinediff.training.engine import CHECKPOINT_EVERY

#: torch's advice to load a refused file unsafely, and its internal wording: never passed on
UNSAFE_ADVICE = ("weights_only=False", "set to `False`", "Re-running `torch.load`", "add_safe_globals")
TORCH_NOISE = ("internal miniz error", "enforce fail", "Weights only load failed")


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


@pytest.fixture(scope="module")
def model_dir(body32, tmp_path_factory) -> Path:
    return PostureHMR(config(), body32).save_pretrained(tmp_path_factory.mktemp("m") / "model")


class Evil:
    """Unpickling it would create ``marker``: a weights-only load must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def assert_clean(message: str) -> None:
    assert not any(a in message for a in UNSAFE_ADVICE), message
    assert not any(n in message for n in TORCH_NOISE), message
    assert "\n" not in message.strip(), message


# -- a full disk, stale temporary files ---------------------------------------------------------

class FullDisk:
    """A binary file that takes ``room`` bytes, then fails as a full disk does (ENOSPC)."""

    def __init__(self, path, mode, room: int) -> None:
        self.handle, self.room = open(path, mode), room

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
])
def test_resume_refuses_before_changing_anything(mutate, message, checkpoint, body32, data, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    mutate(state)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    t = trainer(body32, data, tmp_path / "run")
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


# -- predict's boxes and focal length -----------------------------------------------------------

numbers = st.floats(allow_nan=True, allow_infinity=True, width=32)


@given(st.tuples(numbers, numbers, numbers, numbers))
def test_check_box_accepts_exactly_finite_boxes_with_a_positive_size(box):
    good = all(v == v and abs(v) != float("inf") for v in box) and box[2] > 0 and box[3] > 0
    if good:
        assert check_box(box, "--bbox") == [float(v) for v in box]
    else:
        with pytest.raises(ValueError, match="^--bbox must"):
            check_box(box, "--bbox")


@given(numbers)
def test_check_focal_accepts_exactly_finite_positive_numbers(focal):
    if focal == focal and focal != float("inf") and focal > 0:
        assert check_focal(focal, "--focal") == focal
    else:
        with pytest.raises(ValueError, match="^--focal must be a finite positive number"):
            check_focal(focal, "--focal")


@pytest.mark.parametrize("box", [[1, 2, 3], ["a", 1, 2, 3], "1234", None, {"x": 1}, [True, 1, 2, 3]])
def test_check_box_refuses_what_is_not_four_numbers(box):
    with pytest.raises(ValueError, match="must be four numbers X Y W H"):
        check_box(box, "box")


# -- the command line ---------------------------------------------------------------------------

def one_error_line(capsys, *expected: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("kinediff: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert_clean(lines[0])
    return lines[0]


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def photo(tmp_path) -> Path:
    from PIL import Image

    Image.fromarray((torch.rand(40, 30, 3, generator=torch.Generator().manual_seed(0)) * 255)
                    .byte().numpy()).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


@pytest.mark.parametrize("option, values, expected", [
    ("--bbox", ["nan", "0", "10", "10"], "--bbox must be four finite numbers"),
    ("--bbox", ["0", "0", "inf", "10"], "--bbox must be four finite numbers"),
    ("--bbox", ["0", "0", "0", "10"], "--bbox must have a positive width and height"),
    ("--bbox", ["0", "0", "10", "-5"], "--bbox must have a positive width and height"),
    ("--focal", ["0"], "--focal must be a finite positive number of pixels, got 0.0"),
    ("--focal", ["-5"], "--focal must be a finite positive number"),
    ("--focal", ["nan"], "--focal must be a finite positive number"),
    ("--focal", ["inf"], "--focal must be a finite positive number"),
])
def test_predict_refuses_bad_numbers_in_one_line(option, values, expected, photo, model_dir,
                                                 tmp_path, capsys):
    assert main(["predict", str(photo), "--model", str(model_dir), "--out", str(tmp_path / "p"),
                 option, *values]) == EXIT_USER_ERROR
    one_error_line(capsys, expected)
    assert not (tmp_path / "p").exists()  # refused before any work


@pytest.mark.parametrize("boxes, expected", [
    ([[1, 2, 3]], "'photo.png' box 0 must be four numbers X Y W H (pixels), got [1, 2, 3]"),
    ([[0, 0, 5, 5], ["a", 1, 2, 3]], "'photo.png' box 1 must be four numbers"),
    ([[float("nan"), 1, 10, 10]], "'photo.png' box 0 must be four finite numbers"),
    ([[0, 0, -10, 10]], "'photo.png' box 0 must have a positive width and height"),
    ([5], "'photo.png' box 0 must be four numbers"),
])
def test_predict_names_the_bad_box_of_a_boxes_file(boxes, expected, photo, model_dir, tmp_path,
                                                   capsys):
    (tmp_path / "boxes.json").write_text(json.dumps({"photo.png": boxes}))
    assert main(["predict", str(photo), "--model", str(model_dir), "--boxes",
                 str(tmp_path / "boxes.json"), "--out", str(tmp_path / "p")]) == EXIT_USER_ERROR
    one_error_line(capsys, f"{tmp_path / 'boxes.json'}: {expected}")


def test_predict_refuses_images_it_cannot_decode(model_dir, tmp_path, capsys):
    bomb = png_header_only(tmp_path / "bomb.png", 30000, 30000)
    assert main(["predict", str(bomb), "--model", str(model_dir), "--out",
                 str(tmp_path / "p")]) == EXIT_USER_ERROR
    one_error_line(capsys, f"{bomb} is too large to decode safely")
    (tmp_path / "text.png").write_text("not an image")
    assert main(["predict", str(tmp_path / "text.png"), "--model", str(model_dir), "--out",
                 str(tmp_path / "p")]) == EXIT_USER_ERROR
    one_error_line(capsys, f"{tmp_path / 'text.png'} is not a readable image")


def test_predict_refuses_malicious_and_damaged_checkpoints(checkpoint, photo, tmp_path, capsys):
    marker = tmp_path / "ran"
    torch.save({"model": Evil(marker)}, tmp_path / "evil.pt")
    (tmp_path / "half.pt").write_bytes(checkpoint.read_bytes()[:1000])
    for name, reason in (("evil.pt", "refers to the Python object os.makedirs"),
                         ("half.pt", "cut short or damaged")):
        assert main(["predict", str(photo), "--checkpoint", str(tmp_path / name), "--out",
                     str(tmp_path / "p")]) == EXIT_USER_ERROR
        one_error_line(capsys, str(tmp_path / name), reason)
    assert not marker.exists()


def test_refused_and_truncated_smpl_pickles_are_named(photo, model_dir, tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Evil(marker)))
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(pickle.dumps({"v_template": list(range(100))})[:20])
    runs = [(["body", "clean", str(evil), str(tmp_path / "o.pkl")], evil, "refusing global"),
            (["body", "clean", str(cut), str(tmp_path / "o.pkl")], cut, "truncated"),
            (["body", "info", str(cut)], cut, "truncated"),
            (["predict", str(photo), "--model", str(model_dir), "--smpl", str(evil), "--out",
              str(tmp_path / "p")], evil, "refusing global")]
    for argv, path, reason in runs:
        assert main(argv) == EXIT_USER_ERROR
        one_error_line(capsys, str(path), reason)  # the reader names the file itself
    assert not marker.exists()


@pytest.mark.parametrize("argv, expected", [
    (["predict", "{photo}", "--model", "{model}", "--out", "{tmp}/afile"],
     "--out {tmp}/afile is a file, not a folder"),
    (["predict", "{photo}", "--model", "{model}", "--out", "{tmp}/afile/x"],
     "--out {tmp}/afile/x cannot be made: {tmp}/afile is a file"),
    (["train", "{tmp}/config.json", "--data", "synthetic", "--out", "{tmp}/afile"],
     "--out {tmp}/afile is a file"),
    (["eval", "--model", "{model}", "--data", "synthetic", "--out", "{tmp}/afile/x"],
     "--out {tmp}/afile/x cannot be made"),
    (["fit", "{tmp}/mesh.obj", "--out", "{tmp}/afile"], "--out {tmp}/afile is a file"),
    (["export", "onnx", "--model", "{model}", "--out", "{tmp}"], "--out {tmp} is a folder"),
    (["export", "onnx", "--model", "{model}", "--out", "{tmp}/afile/m.onnx"],
     "--out's folder {tmp}/afile is a file"),
    (["body", "clean", "{tmp}/in.pkl", "{tmp}/afile/out.pkl"], "DST's folder {tmp}/afile is a file"),
    (["body", "demo", "--out", "{tmp}/afile"], "--out {tmp}/afile is a file"),
    (["demo", "--out", "{tmp}/afile/q"], "--out {tmp}/afile/q cannot be made"),
    (["data", "convert", "3dpw", "{tmp}", "{tmp}/afile"], "DST {tmp}/afile is a file"),
])
def test_unusable_output_paths_are_refused_in_one_line(argv, expected, photo, model_dir, tmp_path,
                                                       capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "config.json").write_text(config().to_json())
    fill = {"photo": photo, "model": model_dir, "tmp": tmp_path}
    assert main([a.format(**fill) for a in argv]) == EXIT_USER_ERROR
    one_error_line(capsys, expected.format(**fill))


def test_train_resume_refuses_a_checkpoint_without_optimiser(tmp_path, capsys):
    cfg = config()
    (tmp_path / "config.json").write_text(cfg.to_json())
    (tmp_path / "run" / "train").mkdir(parents=True)
    weights_only = {"model": {}, "stage": "2d", "config": cfg.to_json(), "epoch": 0,
                    "batch_in_epoch": 0, "step": 0, "seed": 0}
    torch.save(weights_only, tmp_path / "run" / "train" / "2d_last.pt")
    assert main(["train", str(tmp_path / "config.json"), "--data", "synthetic", "--size", "8",
                 "--out", str(tmp_path / "run"), "--resume"]) == EXIT_USER_ERROR
    one_error_line(capsys, "2d_last.pt cannot resume training: it has no 'optimizer', 'scheduler', "
                           "'rng' entries")


def test_ctrl_c_debug_and_real_bugs(photo, model_dir, tmp_path, capsys, monkeypatch):
    import kinediff.apps.predict
    import kinediff.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    (tmp_path / "config.json").write_text(config().to_json())
    monkeypatch.setattr(kinediff.cli, "train_model", interrupted)  # the name the command calls
    train = ["train", str(tmp_path / "config.json"), "--data", "synthetic", "--out", str(tmp_path)]
    assert main(train) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "kinediff: interrupted"
    with pytest.raises(KeyboardInterrupt):
        main(["--debug", *train])
    # --debug before or after the command: the user error raises, with its traceback
    bad = ["predict", str(photo), "--model", str(model_dir), "--focal", "0"]
    for argv in (["--debug", *bad], [*bad, "--debug"]):
        with pytest.raises(ValueError, match="--focal must be"):
            main(argv)
    # a bug in kinediff is not a user error: its traceback stays
    monkeypatch.setattr(kinediff.cli, "read_boxes", lambda path: {}["missing"])
    with pytest.raises(KeyError):
        main(["predict", str(photo), "--model", str(model_dir), "--boxes", str(tmp_path / "b.json"),
              "--out", str(tmp_path / "p")])
