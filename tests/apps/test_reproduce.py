"""The reproduce scripts: clear errors without data, and the --synthetic path end to end."""

from __future__ import annotations

import json

import pytest

from kinediff.apps.reproduce import main


def test_without_data_it_says_what_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="--data-root: 3DPW: https://virtualhumans") as err:
        main("3dpw", ["--out", str(tmp_path)])
    assert "--smpl-dir" in str(err.value) and "--synthetic" in str(err.value)
    with pytest.raises(SystemExit, match="unknown protocol"):
        main("3dpw", ["--synthetic", "--protocol", "mine", "--out", str(tmp_path)])


def test_synthetic_reproduction_trains_evaluates_and_reloads(tmp_path, cache_dir, synthetic_path,
                                                             capsys):
    out = tmp_path / "run"
    results = main("3dpw", ["--synthetic", "--max-steps", "2", "--out", str(out), "--no-progress"])
    assert results["synthetic"] and results["mpve"] > 0 and results["paper"]["mpve"] == 75.4
    text = capsys.readouterr().out
    assert "synthetic data" in text and "paper (real data)" in text
    assert json.loads((out / "results.json").read_text())["protocol"] == "graphormer-3dpw"
    again = main("3dpw", ["--synthetic", "--eval-only", "--checkpoint",
                          str(out / "target" / "3d_last.pt"), "--out", str(out), "--no-progress"])
    assert again["mpve"] == pytest.approx(results["mpve"], rel=1e-5)
    with pytest.raises(SystemExit, match="--eval-only needs --checkpoint"):
        main("3dpw", ["--synthetic", "--eval-only", "--out", str(out)])


def test_reproduce_trains_the_papers_forward_process_unless_told(tmp_path, cache_dir,
                                                               synthetic_path, capsys):
    from kinediff.training import load_checkpoint

    for flags, expected in (([], ("geodesic", 0.0)), (["--kinediff-path"], ("heading", 0.5))):
        out = tmp_path / ("kinediff" if flags else "paper")
        main("3dpw", ["--synthetic", "--max-steps", "1", "--out", str(out), "--no-progress",
                      "--from-scratch", *flags])
        config = json.loads(load_checkpoint(out / "target" / "3d_last.pt")["config"])
        assert (config["schedule"]["root_path"], config["rollout_share"]) == expected
        results = json.loads((out / "results.json").read_text())
        assert results["forward_process"] == ("kinediff" if flags else "paper")
        assert results["markers"].startswith("kinediff's 16 stand-in markers")
    text = capsys.readouterr().out
    assert "note: training on 3DPW alone (--from-scratch)" in text
    with pytest.raises(SystemExit, match="--kinediff-path chooses what to train"):
        main("3dpw", ["--synthetic", "--eval-only", "--kinediff-path", "--checkpoint",
                      str(tmp_path / "paper" / "target" / "3d_last.pt"), "--out", str(tmp_path)])


def test_real_runs_refuse_without_the_pretrained_backbone_or_human36m(tmp_path):
    """Before any file is read, with the other missing inputs: the COCO-pretrained HRNet-W48
    (unless --no-pretrained) and, for 3DPW, Human3.6M (unless --from-scratch)."""
    data = tmp_path / "3dpw"
    data.mkdir()
    base = ["--data-root", str(data), "--smpl-dir", str(tmp_path / "smpl"), "--regressor",
            str(tmp_path / "J.npy"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as err:
        main("3dpw", base)
    text = str(err.value)
    assert "--pretrained: the paper's backbone is a COCO-pretrained HRNet-W48" in text
    assert "pose_hrnet_w48_256x192.pth" in text and "leoxiaobin/deep-high-resolution-net" in text
    assert "--no-pretrained" in text
    assert "--h36m-root: the paper trains on Human3.6M and fine-tunes on 3DPW" in text
    assert "--from-scratch" in text
    with pytest.raises(SystemExit, match=r"--pretrained \(.*missing.pth is not a file\)"):
        main("3dpw", [*base, "--pretrained", str(tmp_path / "missing.pth"), "--from-scratch"])
    with pytest.raises(SystemExit, match=r"--h36m-root \(.*is not a folder\)"):
        main("3dpw", [*base, "--no-pretrained", "--h36m-root", str(tmp_path / "none")])
    # on purpose: nothing about either is missing (the SMPL folder is what fails next)
    with pytest.raises((SystemExit, FileNotFoundError, ValueError)) as err:
        main("3dpw", [*base, "--no-pretrained", "--from-scratch"])
    assert "--pretrained" not in str(err.value) and "--h36m-root" not in str(err.value)
    with pytest.raises(SystemExit, match="contradict each other"):
        main("h36m", [*base, "--no-pretrained", "--pretrained", "x.pth"])
    with pytest.raises(SystemExit, match="--from-scratch trains on 3DPW alone"):
        main("3dpw", [*base, "--from-scratch", "--h36m-root", str(data)])
    with pytest.raises(SystemExit, match=r"--finetune-epochs must be an integer in \[1, 10000\], got 0"):
        main("3dpw", [*base, "--finetune-epochs", "0"])
    with pytest.raises(SystemExit, match=r"--finetune-lr must be a finite number > 0"):
        main("3dpw", [*base, "--finetune-lr", "nan"])
    with pytest.raises(SystemExit, match="--markers and --smpl-indices go together"):
        main("surreal", [*base, "--markers", str(data)])
    with pytest.raises(SystemExit, match=r"--finetune-epochs must be an integer in \[1, 10000\]"):
        main("3dpw", [*base, "--finetune-epochs", "20000"])
    with pytest.raises(SystemExit, match="--from-scratch has none"):
        main("3dpw", [*base, "--from-scratch", "--finetune-epochs", "2"])
    # a run that starts from a checkpoint takes its backbone from there
    with pytest.raises((SystemExit, FileNotFoundError, ValueError)) as err:
        main("h36m", [*base, "--checkpoint", str(tmp_path / "run.pt")])
    assert "--pretrained" not in str(err.value)
    # evaluating a trained model needs no backbone file
    with pytest.raises(SystemExit) as err:
        main("h36m", ["--eval-only", "--out", str(tmp_path / "out")])
    assert "--pretrained" not in str(err.value)


def test_virtualmarkers_markers_from_its_files(tmp_path, cache_dir, synthetic_path, capsys):
    from kinediff.heads import read_virtual_markers
    from kinediff.testing import write_virtual_markers
    from kinediff.training import load_checkpoint

    files = write_virtual_markers(tmp_path / "vm", seed=8)
    out = tmp_path / "run"
    results = main("surreal", ["--synthetic", "--max-steps", "1", "--out", str(out),
                               "--no-progress", "--markers", str(files["markers"].parent),
                               "--smpl-indices", str(files["smpl_indices"])])
    assert results["markers"].startswith(f"VirtualMarker's from {files['markers'].parent}")
    config = json.loads(load_checkpoint(out / "target" / "3d_last.pt")["config"])
    assert config["head"]["num_points"] == 81
    assert tuple(config["head"]["marker_vertices"]) == read_virtual_markers(
        files["markers"], files["smpl_indices"])
    assert "2D points: 17 joints and VirtualMarker's from" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"--smpl-indices \(.*none.pkl does not exist\): "
                                         r"VirtualMarker's files"):
        main("surreal", ["--synthetic", "--out", str(out), "--markers", str(files["markers"]),
                         "--smpl-indices", str(tmp_path / "none.pkl")])


def test_resume_before_any_checkpoint_of_a_fine_tuned_run(tmp_path, body32):
    """--resume on a run with a fine-tuning phase (name, data, train) and no checkpoint yet
    starts it from the beginning."""
    from kinediff import PostureHMR, PostureHMRConfig
    from kinediff.apps.reproduce import train_phases
    from kinediff.data import SynthBody
    from kinediff.training import TrainConfig

    cfg = PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=4))
    kw = dict(image_size=64, mesh_factors=cfg.mesh_factors, progress=False)
    phases = [("pretrain", SynthBody(4, seed=7, **kw)),
              ("target", SynthBody(4, seed=8, **kw), cfg.train.replace(epochs=1))]
    train_phases(PostureHMR(cfg, body32), phases, tmp_path / "run", epochs=1, max_steps=1,
                 resume=True, progress=False)
    assert (tmp_path / "run" / "target" / "3d_last.pt").is_file()


def test_3dpw_fine_tunes_after_human36m_as_virtualmarker(tmp_path, cache_dir, synthetic_path,
                                                        capsys, monkeypatch):
    """Human3.6M training, then FINETUNE_EPOCHS epochs of 3DPW at the halved learning rates,
    the epochs counted on from the pre-training's (the edge term stays on)."""
    from kinediff.apps import reproduce
    from kinediff.training import Trainer

    runs = []
    original = Trainer.fit

    def spy(self, resume=False):
        runs.append((self.out_dir.name, self.stage, self.epochs, self.epoch_offset,
                     [g["lr"] for g in self.optimizer.param_groups]))
        return original(self, resume)

    monkeypatch.setattr(Trainer, "fit", spy)
    main("3dpw", ["--synthetic", "--epochs", "1", "--max-steps", "1", "--out",
                  str(tmp_path / "run"), "--no-progress"])
    assert [r[:4] for r in runs] == [
        ("pretrain_h36m", "2d", 1, 0), ("pretrain_h36m", "3d", 1, 0),
        ("target", "2d", reproduce.FINETUNE_EPOCHS, 1), ("target", "3d", reproduce.FINETUNE_EPOCHS, 1)]
    for pre, fine in ((runs[0], runs[2]), (runs[1], runs[3])):
        assert fine[4] == pytest.approx([lr * reproduce.FINETUNE_LR_FACTOR for lr in pre[4]])
    assert "then 3DPW fine-tuning (3 epochs a stage at 0.5 x the learning rates)" in \
        capsys.readouterr().out


def test_mix_root_names_its_layout_and_takes_the_sets_present(tmp_path, body32, capsys):
    from kinediff import PostureHMRConfig
    from kinediff.apps.reproduce import mixed_sets
    from kinediff.testing import write_up3d

    cfg = PostureHMRConfig.tiny()
    with pytest.raises(SystemExit, match="is not a folder"):
        mixed_sets(tmp_path / "none", body32, cfg)
    (tmp_path / "mix").mkdir()
    with pytest.raises(SystemExit, match="holds none of mpi_inf_3dhp, up3d, coco"):
        mixed_sets(tmp_path / "mix", body32, cfg)
    write_up3d(tmp_path / "mix" / "up3d", body32)
    found = mixed_sets(tmp_path / "mix", body32, cfg)
    assert [name for name, _ in found] == ["up3d"] and len(found[0][1]) == 3
    out = capsys.readouterr().out
    assert "no " in out and "mpi_inf_3dhp: the mix goes without it" in out
