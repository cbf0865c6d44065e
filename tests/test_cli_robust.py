"""Robustness of the command line (marker ``robust``, harness :mod:`robust`): every user error in
one line naming what is wrong (exit 2), no traceback; Ctrl-C (exit 130), ``--debug``, and real
bugs keeping their traceback; the module entry point and the ``kinediff`` script."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from robust import (
    BAD_SEQ,
    NAN,
    Evil,
    Outcome,
    bomb_png,
    cli_outcome,
    cli_verdict,
    expect,
    guarded,
    one_error_line,
    truncate,
    write_image_fault,
)

import kinediff.apps.jobs
import kinediff.apps.predict
from kinediff.cli import EXIT_INTERRUPTED, EXIT_USER_ERROR, main
from kinediff.posturehmr import PostureHMRConfig
from kinediff.training import TrainConfig

pytestmark = pytest.mark.robust


def config() -> PostureHMRConfig:
    return PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=4))


@pytest.fixture(scope="module")
def model_dir(fixtures) -> Path:
    return fixtures.model_dir


@pytest.fixture
def photo(tmp_path) -> Path:
    Image.fromarray((torch.rand(40, 30, 3, generator=torch.Generator().manual_seed(0)) * 255)
                    .byte().numpy()).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


@pytest.mark.parametrize("option, values, expected", [
    ("--bbox", ["nan", "0", "10", "10"], "--bbox must be four finite numbers"),
    ("--bbox", ["0", "0", "inf", "10"], "--bbox must be four finite numbers"),
    ("--bbox", ["0", "0", "0", "10"], "--bbox must have a positive width and height"),
    ("--bbox", ["0", "0", "10", "-5"], "--bbox must have a positive width and height"),
    ("--focal", ["0"], "--focal must be a finite number > 0 (pixels), got 0.0"),
    ("--focal", ["-5"], "--focal must be a finite number > 0"),
    ("--focal", ["nan"], "--focal must be a finite number > 0"),
    ("--focal", ["inf"], "--focal must be a finite number > 0"),
])
def test_predict_refuses_bad_numbers_in_one_line(option, values, expected, photo, model_dir,
                                                 tmp_path, capsys):
    assert main(["predict", "--no-detect", str(photo), "--model", str(model_dir), "--out", str(tmp_path / "p"),
                 option, *values]) == EXIT_USER_ERROR
    one_error_line(capsys.readouterr().err, expected)
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
    one_error_line(capsys.readouterr().err, f"{tmp_path / 'boxes.json'}: {expected}")


def test_predict_refuses_images_it_cannot_decode(model_dir, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(30000, 30000))
    assert main(["predict", "--no-detect", str(bomb), "--model", str(model_dir), "--out",
                 str(tmp_path / "p")]) == EXIT_USER_ERROR
    one_error_line(capsys.readouterr().err, f"{bomb} is too large to decode safely")
    (tmp_path / "text.png").write_text("not an image")
    assert main(["predict", "--no-detect", str(tmp_path / "text.png"), "--model", str(model_dir), "--out",
                 str(tmp_path / "p")]) == EXIT_USER_ERROR
    one_error_line(capsys.readouterr().err, f"{tmp_path / 'text.png'} is not a readable image")


def test_predict_refuses_malicious_and_damaged_checkpoints(fixtures, photo, tmp_path, capsys):
    marker = tmp_path / "ran"
    torch.save({"model": Evil(marker)}, tmp_path / "evil.pt")
    (tmp_path / "half.pt").write_bytes(fixtures.checkpoint.read_bytes()[:1000])
    for name, reason in (("evil.pt", "refers to the Python object os.makedirs"),
                         ("half.pt", "cut short or damaged")):
        assert main(["predict", "--no-detect", str(photo), "--checkpoint", str(tmp_path / name), "--out",
                     str(tmp_path / "p")]) == EXIT_USER_ERROR
        one_error_line(capsys.readouterr().err, str(tmp_path / name), reason)
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
            (["predict", "--no-detect", str(photo), "--model", str(model_dir), "--smpl", str(evil), "--out",
              str(tmp_path / "p")], evil, "refusing global")]
    for argv, path, reason in runs:
        assert main(argv) == EXIT_USER_ERROR
        one_error_line(capsys.readouterr().err, str(path), reason)  # the reader names the file itself
    assert not marker.exists()


@pytest.mark.parametrize("argv, expected", [
    (["predict", "--no-detect", "{photo}", "--model", "{model}", "--out", "{tmp}/afile"],
     "--out {tmp}/afile is a file, not a folder"),
    (["predict", "--no-detect", "{photo}", "--model", "{model}", "--out", "{tmp}/afile/x"],
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
    one_error_line(capsys.readouterr().err, expected.format(**fill))


def test_train_resume_refuses_a_checkpoint_without_optimiser(tmp_path, capsys):
    cfg = config()
    (tmp_path / "config.json").write_text(cfg.to_json())
    (tmp_path / "run" / "train").mkdir(parents=True)
    weights_only = {"model": {}, "stage": "2d", "config": cfg.to_json(), "epoch": 0,
                    "batch_in_epoch": 0, "step": 0, "seed": 0}
    torch.save(weights_only, tmp_path / "run" / "train" / "2d_last.pt")
    assert main(["train", str(tmp_path / "config.json"), "--data", "synthetic", "--size", "8",
                 "--out", str(tmp_path / "run"), "--resume"]) == EXIT_USER_ERROR
    one_error_line(capsys.readouterr().err, "2d_last.pt cannot resume training: it has no 'optimizer', 'scheduler', "
                           "'rng' entries")


def test_ctrl_c_debug_and_real_bugs(photo, model_dir, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    (tmp_path / "config.json").write_text(config().to_json())
    monkeypatch.setattr(kinediff.apps.jobs, "train_model", interrupted)  # the command imports it
    train = ["train", str(tmp_path / "config.json"), "--data", "synthetic", "--out", str(tmp_path), "--size",
             "4", "--max-steps", "1"]  # small, should the patch ever miss
    assert main(train) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "kinediff: interrupted"
    with pytest.raises(KeyboardInterrupt):
        main(["--debug", *train])
    # --debug before or after the command: the user error raises, with its traceback
    bad = ["predict", "--no-detect", str(photo), "--model", str(model_dir), "--focal", "0"]
    for argv in (["--debug", *bad], [*bad, "--debug"]):
        with pytest.raises(ValueError, match="--focal must be"):
            main(argv)
    # a bug in kinediff is not a user error: its traceback stays
    monkeypatch.setattr(kinediff.apps.predict, "read_boxes", lambda path: {}["missing"])
    with pytest.raises(KeyError):
        main(["predict", str(photo), "--model", str(model_dir), "--boxes", str(tmp_path / "b.json"),
              "--out", str(tmp_path / "p")])


def test_python_dash_m_kinediff_runs_the_command_line():
    out = subprocess.run([sys.executable, "-m", "kinediff", "--help"], check=False, capture_output=True,
                         text=True,
                         timeout=120)
    assert out.returncode == 0 and "usage: kinediff" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "kinediff", "predict", "--no-detect", "--model", "/nonexistent",
                          "x.png"], check=False, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "kinediff" in bad.stderr


def test_the_kinediff_script_refuses_a_bad_output_folder_in_one_line(fixtures):
    script = Path(sys.executable).with_name("kinediff")
    assert script.is_file(), f"no kinediff entry point next to {sys.executable}: pip install -e ."
    out = fixtures.fresh("script-out") / "results"
    out.write_text("a file")
    proc = subprocess.run([str(script), "predict", "--no-detect", str(fixtures.good_image), "--model", str(fixtures.model_dir),
                           "--out", str(out)], capture_output=True, text=True, timeout=120, check=False)
    expect(cli_verdict(proc.returncode, proc.stdout, proc.stderr, [Path("results")]))


# -- user errors named in the output (what the tests above do not already check) --------------------

def predict(fixtures, *extra, image: Path | None = None, out: Path | None = None) -> list:
    return ["predict", "--no-detect", image or fixtures.good_image, "--model", fixtures.model_dir,
            "--out", out or fixtures.fresh("predict-out"), *extra]


@pytest.mark.parametrize("fault", ["empty", "truncated_jpeg", "directory"])
def test_predict_names_an_image_it_cannot_read(fixtures, fault):
    path = fixtures.fresh("cli-image") / "photo.jpg"
    shutil.copy(fixtures.good_image, path)
    write_image_fault(path, fault)
    expect(cli_outcome(predict(fixtures, image=path), [Path("photo.jpg")]))


def test_predict_names_a_missing_image(fixtures):
    expect(cli_outcome(predict(fixtures, image=fixtures.work / "nowhere.jpg"), [Path("nowhere.jpg")]))


def test_predict_names_an_output_folder_it_cannot_write(fixtures):
    with fixtures.unwritable_dir("cli-out") as path:
        expect(cli_outcome(predict(fixtures, out=path), [Path(path.name)]))


def test_predict_names_a_box_larger_than_the_image(fixtures):
    expect(cli_outcome(predict(fixtures, "--bbox", "0", "0", "1e30", "1e30"), [("bbox", "box")]))


def test_predict_names_a_boxes_file_that_is_no_json(fixtures):
    path = fixtures.fresh("cli-boxes") / "boxes.json"
    path.write_bytes(b'{"image_00000.jpg": [[10, 10, 40')
    expect(cli_outcome(predict(fixtures, "--boxes", path), [Path("boxes.json")]))


def test_predict_names_a_missing_boxes_file(fixtures):
    expect(cli_outcome(predict(fixtures, "--boxes", fixtures.work / "no_boxes.json"), [Path("no_boxes.json")]))


#: the model folder's file -> how it is spoilt
MODEL_FOLDER_FAULTS = {
    "config.json": truncate,
    "model.safetensors": truncate,
    "model.safetensors:missing": lambda path: path.unlink(),
}


@pytest.mark.parametrize("case", MODEL_FOLDER_FAULTS)
def test_predict_names_the_spoilt_file_of_a_model_folder(fixtures, case):
    target = case.split(":")[0]
    folder = fixtures.copy_of(fixtures.model_dir, "cli-model")
    MODEL_FOLDER_FAULTS[case](folder / target)
    argv = ["predict", "--no-detect", fixtures.good_image, "--model", folder, "--out", fixtures.fresh("o")]
    expect(cli_outcome(argv, [Path(target)]))


@pytest.mark.parametrize("content", [b"", b"hello\n"], ids=["empty", "text"])
def test_predict_names_a_checkpoint_that_is_no_checkpoint(fixtures, content):
    path = fixtures.fresh("cli-ckpt") / "run.pt"
    path.write_bytes(content)
    argv = ["predict", "--no-detect", fixtures.good_image, "--checkpoint", path, "--out", fixtures.fresh("o")]
    expect(cli_outcome(argv, [Path("run.pt")]))


@pytest.mark.parametrize("cut", [3000, 0], ids=["truncated", "empty"])
def test_predict_names_a_damaged_smpl_file(fixtures, cut):
    path = fixtures.fresh("cli-smpl") / "SMPL_NEUTRAL.pkl"
    path.write_bytes(fixtures.synthetic_pkl.read_bytes()[:cut])
    expect(cli_outcome(predict(fixtures, "--smpl", path), [Path("SMPL_NEUTRAL.pkl")]))


def _set(path: tuple, value) -> Callable[[dict], None]:
    def mutate(data) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value
    return mutate


def _delete_f(data: dict) -> None:
    del data["4"]["f"]


#: name -> a mutation of Human36M_subject9_camera.json
H36M_CAMERA_FAULTS = {
    "entry_not_a_dict": _set(("4",), "camera"),
    "R_2x3": _set(("4", "R"), lambda a: a[:2]),
    "f_missing": _delete_f,
    "f_zero": _set(("4", "f"), [0.0, 0.0]),
    "f_nan": _set(("4", "f"), [NAN, NAN]),
    "t_strings": _set(("4", "t"), ["a", "b", "c"]),
}


@pytest.mark.parametrize("case", H36M_CAMERA_FAULTS)
def test_data_convert_names_a_spoilt_h36m_camera_file(fixtures, case):
    root = fixtures.copy_of(fixtures.h36m, "cli-h36m")
    path = root / "annotations" / "Human36M_subject9_camera.json"
    data = json.loads(path.read_text())
    H36M_CAMERA_FAULTS[case](data)
    path.write_text(json.dumps(data))
    expect(cli_outcome(["data", "convert", "h36m", root, fixtures.fresh("dst")], [Path(path.name)]))


@pytest.mark.parametrize("fraction", [0.5, 0.0], ids=["truncated", "empty"])
def test_data_convert_names_a_damaged_3dpw_pickle(fixtures, fraction):
    root = fixtures.copy_of(fixtures.pw3d, "cli-3dpw")
    path = root / "sequenceFiles" / "test" / f"{BAD_SEQ}.pkl"
    truncate(path, fraction)
    expect(cli_outcome(["data", "convert", "3dpw", root, fixtures.fresh("dst")], [Path(path.name)]))


def test_data_convert_names_a_destination_it_cannot_write(fixtures):
    with fixtures.unwritable_dir("cli-dst") as dst:
        expect(cli_outcome(["data", "convert", "3dpw", fixtures.pw3d, dst], [("locked",)]))


def test_train_names_a_truncated_config(fixtures):
    path = fixtures.fresh("cli-config") / "config.json"
    path.write_bytes(b'{"image_size": 64, "mesh_fac')
    argv = ["train", path, "--data", "synthetic", "--out", fixtures.fresh("run"), "--size", "4", "--max-steps", "1"]
    expect(cli_outcome(argv, [Path("config.json")]))


def test_train_names_a_missing_config(fixtures):
    argv = ["train", fixtures.work / "no_config.json", "--data", "synthetic", "--out", fixtures.fresh("run")]
    expect(cli_outcome(argv, [Path("no_config.json")]))


def test_train_names_an_output_folder_it_cannot_write(fixtures):
    cfg = fixtures.fresh("cli-cfg") / "config.json"
    cfg.write_text(fixtures.model.config.to_json())
    with fixtures.unwritable_dir("cli-train") as out:
        argv = ["train", cfg, "--data", "synthetic", "--out", out, "--size", "4", "--max-steps", "1",
                "--epochs", "1"]
        expect(cli_outcome(argv, [(out, out.name)]))


def _train_absurd_config(cfg: Path, out: Path) -> Outcome:
    """In the guarded child: ``kinediff train`` on a config asking for 2e8 head points."""
    data = json.loads(PostureHMRConfig.tiny().to_json())
    data["head"]["num_points"] = 200_000_000
    cfg.write_text(json.dumps(data))
    return cli_outcome(["train", cfg, "--data", "synthetic", "--out", out, "--size", "4", "--max-steps", "1"],
                       [("num_points",)])


def test_train_refuses_a_config_of_absurd_size_before_allocating(fixtures):
    cfg = fixtures.fresh("cli-cfg-absurd") / "config.json"
    expect(guarded(_train_absurd_config, cfg, fixtures.fresh("run"), timeout=60))


def test_eval_names_a_missing_model_folder(fixtures):
    expect(cli_outcome(["eval", "--model", fixtures.work / "no_model", "--data", "synthetic", "--size", "4"],
                       [Path("no_model")]))


def _npz_at(path: Path) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, r=np.zeros((17, 6890)))


@pytest.mark.parametrize("write", [lambda p: p.write_bytes(b"\x93NUMPY"), _npz_at], ids=["truncated", "npz"])
def test_eval_names_a_regressor_file_it_cannot_read(fixtures, write):
    path = fixtures.fresh("cli-reg") / "J_regressor_h36m_correct.npy"
    write(path)
    argv = ["eval", "--model", fixtures.model_dir, "--data", "synthetic", "--size", "4", "--regressor", path]
    expect(cli_outcome(argv, [Path(path.name)]))


def _nan_obj(fixtures, path: Path) -> None:
    v = fixtures.body.v_template.numpy().copy()
    v[10, 1] = NAN
    lines = [f"v {a} {b} {c}" for a, b, c in v]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in fixtures.body.faces.tolist()]
    path.write_text("\n".join(lines) + "\n")


#: name -> (how person.obj is written, what the message names besides the file)
MESH_FAULTS = {
    "garbage": (lambda fixtures, p: p.write_bytes(b"\x00\x01 this is not a mesh"), []),
    "empty": (lambda fixtures, p: p.write_bytes(b""), []),
    "nan_vertices": (_nan_obj, [("nan", "finite")]),
}


@pytest.mark.parametrize("case", MESH_FAULTS)
def test_fit_names_a_mesh_file_it_cannot_fit(fixtures, case):
    write, names = MESH_FAULTS[case]
    path = fixtures.fresh("cli-mesh") / "person.obj"
    write(fixtures, path)
    expect(cli_outcome(["fit", path], [Path("person.obj"), *names]))
