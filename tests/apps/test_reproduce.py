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


def test_paper_path_flag_trains_the_papers_forward_process(tmp_path, cache_dir, synthetic_path):
    from kinediff.training import load_checkpoint

    for flags, expected in (([], ("heading", 0.5)), (["--paper-path"], ("geodesic", 0.0))):
        out = tmp_path / ("paper" if flags else "default")
        main("3dpw", ["--synthetic", "--max-steps", "1", "--out", str(out), "--no-progress",
                      *flags])
        config = json.loads(load_checkpoint(out / "target" / "3d_last.pt")["config"])
        assert (config["schedule"]["root_path"], config["rollout_share"]) == expected
    with pytest.raises(SystemExit, match="--paper-path chooses what to train"):
        main("3dpw", ["--synthetic", "--eval-only", "--paper-path", "--checkpoint",
                      str(tmp_path / "paper" / "target" / "3d_last.pt"), "--out", str(tmp_path)])


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
