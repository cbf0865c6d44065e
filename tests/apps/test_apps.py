"""Apps apart from components: kinediff config / train / eval / predict --model."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
import torch

from kinediff.cli import main
from kinediff.posturehmr import PostureHMRConfig
from kinediff.training import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def test_config_presets_and_overrides(capsys):
    assert main(["config", "--preset", "tiny", "--set", 'schedule={"class": "VertexLinearSchedule"}',
                 "train.batch_size=8", "mesh_factors=[4,4,4]"]) == 0
    config = PostureHMRConfig.from_json(capsys.readouterr().out)
    assert config == PostureHMRConfig.tiny(schedule={"class": "VertexLinearSchedule"},
                                           train=TrainConfig.tiny(batch_size=8))
    assert config.schedule.root_path == "heading"  # the same name carries over from FK
    assert main(["config", "--preset", "paper"]) == 0
    assert PostureHMRConfig.from_json(capsys.readouterr().out) == PostureHMRConfig.paper()
    assert main(["config"]) == 0  # the default preset: kinediff's, the library's default
    assert PostureHMRConfig.from_json(capsys.readouterr().out) == PostureHMRConfig()
    assert main(["config", "--preset", "kinediff"]) == 0
    assert PostureHMRConfig.from_json(capsys.readouterr().out) == PostureHMRConfig()


@pytest.mark.parametrize("change, message", [
    ("widht=3", "unknown PostureHMR fields ['widht']"),
    ("schedule=spiral", "schedule must be a config of FKSchedule or VertexLinearSchedule"),
    ('schedule={"class": "Spiral"}', "schedule must name its class under 'class'"),
    ("schedule", "--set takes KEY=VALUE"),
    ("mesh_factors=4", "mesh_factors must be a list of 1 to 4 integer decimation factors"),
])
def test_config_errors_are_one_line(change, message, capsys):
    assert main(["config", "--preset", "tiny", "--set", change]) == 2
    assert message in capsys.readouterr().err


def test_train_eval_predict_on_synthetic_data(synthetic_path, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=4)).to_json())
    out = tmp_path / "run"
    assert main(["train", str(config), "--data", "synthetic", "--size", "8", "--out", str(out),
                 "--max-steps", "1"]) == 0
    assert "kinediff eval --model" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "model").iterdir()) == [
        "body.json", "config.json", "model.safetensors"]
    assert (out / "train" / "3d_last.pt").is_file() and (out / "config.json").is_file()
    assert main(["eval", "--model", str(out / "model"), "--data", "synthetic", "--size", "4",
                 "--out", str(tmp_path / "scores")]) == 0
    printed = capsys.readouterr().out
    assert "MPVE" in printed and "(synthetic data)" in printed
    assert not (out / "model" / "results.json").exists()  # a published folder is never written to
    results = json.loads((tmp_path / "scores" / "results.json").read_text())
    assert results["synthetic"] and results["protocol"] == "graphormer-3dpw" and results["mpve"] > 0
    # resume finds the finished run and trains nothing more
    assert main(["train", str(config), "--data", "synthetic", "--size", "8", "--out", str(out),
                 "--max-steps", "1", "--resume"]) == 0
    from PIL import Image

    Image.fromarray((torch.rand(40, 30, 3) * 255).byte().numpy()).save(tmp_path / "photo.png")
    assert main(["predict", "--no-detect", str(tmp_path / "photo.png"), "--model", str(out / "model"), "--out",
                 str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred" / "photo.obj").is_file()
    assert "trained with kinediff's synthetic body" in capsys.readouterr().out
    _predict_options(out / "model", tmp_path, capsys)


def _predict_options(model, tmp_path, capsys):
    """kinediff predict with several people, SMPL fits and every format; a video; fit; ONNX."""
    import numpy as np
    import trimesh
    from PIL import Image

    Image.fromarray((torch.rand(60, 80, 3) * 255).byte().numpy()).save(tmp_path / "two.png")
    (tmp_path / "boxes.json").write_text(json.dumps({"two.png": [[5, 5, 30, 50], [40, 8, 30, 48]]}))
    assert main(["predict", str(tmp_path / "two.png"), "--model", str(model), "--boxes",
                 str(tmp_path / "boxes.json"), "--fit-smpl", "--format", "obj,ply,glb,npz",
                 "--out", str(tmp_path / "people")]) == 0
    for j in (0, 1):
        meshes = [trimesh.load(tmp_path / "people" / f"two_{j}.{fmt}", force="mesh", process=False)
                  for fmt in ("obj", "ply", "glb")]
        assert all(len(m.vertices) == 6890 for m in meshes)
        with np.load(tmp_path / "people" / f"two_{j}.npz") as data:
            assert data["pose"].shape == (24, 3) and data["K"].shape == (3, 3)
            np.testing.assert_allclose(meshes[1].vertices, data["vertices"], atol=1e-5)
    assert main(["predict", "--no-detect", str(tmp_path / "two.png"), "--model", str(model), "--format", "fbx"]) == 2
    assert "unknown format(s) ['fbx']" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(json.dumps({"other.png": []}))
    assert main(["predict", str(tmp_path / "two.png"), "--model", str(model), "--boxes",
                 str(tmp_path / "bad.json")]) == 2
    assert "no entry for" in capsys.readouterr().err
    # SMPL parameters for mesh files
    assert main(["fit", str(tmp_path / "people" / "two_0.obj"), "--out", str(tmp_path / "fits")]) == 0
    assert (tmp_path / "fits" / "two_0_smpl.npz").is_file()
    # a video with one track, smoothed
    import av

    with av.open(str(tmp_path / "clip.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray((np.random.default_rng(0).random((48, 64, 3)) * 255)
                                               .astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (tmp_path / "track.json").write_text(json.dumps({"boxes": [[[10, 5, 30, 40]]] * 3}))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "clip.mp4"), "--model", str(model), "--boxes",
                 str(tmp_path / "track.json"), "--out", str(tmp_path / "video")]) == 0
    with np.load(tmp_path / "video" / "clip_track0.npz") as data:
        assert data["pose"].shape == (3, 24, 3) and data["vertices"].shape == (3, 6890, 3)
    assert main(["predict", str(tmp_path / "clip.mp4"), "--model", str(model), "--no-detect"]) == 2
    assert "a video's people come from the detector or a --boxes TRACK.json" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "clip.mp4"), "--model", str(model), "--boxes",
                 str(tmp_path / "track.json"), "--format", "obj"]) == 2
    assert "--format for a video takes npz, glb-anim, bvh, fbx" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "clip.mp4"), "--model", str(model), "--detector-weights",
                 str(tmp_path / "none.pth")]) == 2
    assert f"no detector weights file {tmp_path / 'none.pth'}" in capsys.readouterr().err
    for option, value, message in (("--detector", "yolov8", "--detector must be 'fasterrcnn_resnet50_fpn_v2'"),
                                   ("--detector-threshold", "1.5", "--detector-threshold must be")):
        assert main(["predict", str(tmp_path / "two.png"), "--model", str(model), option, value,
                     "--detector-weights", str(tmp_path / "none.pth")]) == 2
        assert message in capsys.readouterr().err


def test_train_and_eval_errors(synthetic_path, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(PostureHMRConfig.tiny().to_json())
    assert main(["train", str(config), "--data", "3dpw", "--out", str(tmp_path / "r")]) == 2
    assert "--data 3dpw needs --smpl" in capsys.readouterr().err
    assert main(["train", str(config), "--data", "3dpw", "--smpl", str(synthetic_path), "--out",
                 str(tmp_path / "r")]) == 2
    assert "--data 3dpw needs --data-root" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "none.json"), "--data", "synthetic", "--out",
                 str(tmp_path / "r")]) == 2
    assert "no PostureHMR config at" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path / "none"), "--data", "synthetic"]) == 2
    assert "no pretrained model folder" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path / "none"), "--data", "3dpw"]) == 2
    assert "--data 3dpw needs --smpl" in capsys.readouterr().err
    config.write_text("[1, 2]")
    assert main(["train", str(config), "--data", "synthetic", "--out", str(tmp_path / "r")]) == 2
    assert "is not a PostureHMR config (a JSON object of fields), got a JSON list" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "x.png"])  # --model or --checkpoint is required


def test_python_m_runs_an_app():
    import subprocess

    done = subprocess.run([sys.executable, "-W", "ignore", "-m", "kinediff.apps.reproduce", "3dpw", "--help"],
                          check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and "Reproduce PostureHMR on 3dpw" in done.stdout


def test_components_never_import_the_apps():
    apps = ROOT / "kinediff" / "apps"
    offenders = []
    for path in (ROOT / "kinediff").rglob("*.py"):
        if apps in path.parents or path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("kinediff.apps")]
    assert not offenders


def test_export_onnx_cli_errors(tmp_path, capsys):
    assert main(["export", "onnx", "--model", str(tmp_path / "none"), "--out",
                 str(tmp_path / "m.onnx")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
