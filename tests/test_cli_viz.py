"""The command line and the figures."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from kinediff.body import save_smpl
from kinediff.cli import main
from kinediff.viz import draw_mesh, plot_body


def test_body_clean_and_info(body64, tmp_path, capsys):
    src = save_smpl(body64, tmp_path / "in.pkl")
    assert main(["body", "clean", str(src), str(tmp_path / "out.pkl")]) == 0
    assert "chumpy-free" in capsys.readouterr().out
    with open(tmp_path / "out.pkl", "rb") as fh:
        assert pickle.load(fh)["v_template"].shape == (6890, 3)
    assert main(["body", "info", str(tmp_path / "out.pkl")]) == 0
    assert "vertices=6890" in capsys.readouterr().out


def test_cli_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["body", "clean", str(tmp_path / "missing.pkl"), str(tmp_path / "o.pkl")]) == 2
    assert "SMPL model file not found" in capsys.readouterr().err


def test_demo_writes_pngs_and_statistics(synthetic_path, tmp_path, capsys):
    assert main(["body", "demo", "--out", str(tmp_path)]) == 0
    for name in ("template.png", "posed.png", "shapes.png", "trajectory.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "vertices" in out and "6890" in out and "height_m" in out


def test_plot_body_and_bad_views(body64, tmp_path):
    fig = plot_body(body64.v_template, body64.faces, tmp_path / "b.png", views=("front", "top"))
    assert len(fig.axes) == 2 and (tmp_path / "b.png").exists()
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="view must be .back., .front., .side. or .top., got"):
        draw_mesh(ax, body64.v_template, body64.faces, view="diagonal")
    with pytest.raises(ValueError, match=r"vertices must have shape \(V, 3\)"):
        draw_mesh(ax, np.zeros((5, 2)), body64.faces)
    plt.close("all")


def test_plot_trajectory_strip(body32, tmp_path):
    import torch

    from kinediff.forward import FKSchedule
    from kinediff.viz import plot_trajectory

    pose = torch.zeros(1, 24, 3)
    pose[0, 18, 1] = -1.0
    traj = FKSchedule(body32, num_steps=4).trajectory(pose, None)
    fig = plot_trajectory(traj, body32.faces, tmp_path / "t.png")
    assert len(fig.axes) == 5 and (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert [ax.get_title() for ax in fig.axes] == ["t = 4", "t = 3", "t = 2", "t = 1", "t = 0"]
    with pytest.raises(ValueError, match=r"steps must lie in \[0, 4\]"):
        plot_trajectory(traj, body32.faces, steps=[5])
    with pytest.raises(ValueError, match=r"trajectory must have shape \(T \+ 1, V, 3\)"):
        plot_trajectory(traj[0, 0], body32.faces)
