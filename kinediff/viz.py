"""Matplotlib figures of body meshes (front and side views), used by the demos and the docs.

Meshes are drawn as flat-shaded triangles sorted back to front (the painter's algorithm) in a 2D
``PolyCollection``, which draws 13k faces far more cheaply than matplotlib's 3D axes, and with
proper occlusion. matplotlib, heavy to import, is imported on first drawing, so that
``import kinediff.viz`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kinediff.core.checks import check_choice

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["VIEWS", "draw_mesh", "finish_figure", "plot_body", "plot_trajectory", "pyplot_backend"]

#: Camera directions: rotation from SMPL's frame (y up, body facing +z) to the view's frame.
VIEWS: dict[str, np.ndarray] = {
    "front": np.eye(3),
    "side": np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]),  # seen from its left
    "back": np.diag([-1.0, 1.0, -1.0]),
    "top": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
}


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def pyplot_backend(headless: bool):
    """matplotlib.pyplot, on the Agg backend when writing files (no display needed)."""
    try:  # matplotlib is heavy to import: loaded on first drawing (module docstring)
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("kinediff.viz needs matplotlib: pip install 'kinediff[viz]'") from err
    if headless:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def finish_figure(fig: Figure, title: str | None, path: str | Path | None, dpi: int) -> Figure:
    """Title, tight layout, and the PNG at ``path`` when one is given."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return fig


def draw_mesh(ax: Axes, vertices, faces, view: str = "front", color=(0.62, 0.72, 0.86),
              light=(0.3, 0.5, 1.0)) -> None:
    """Draw one mesh on 2D axes with flat Lambertian shading.

    Args:
        ax: matplotlib axes.
        vertices: (V, 3) array or tensor, metres, SMPL's frame (y up, body facing +z).
        faces: (F, 3) integer array or tensor.
        view: one of ``VIEWS`` ("front", "side", "back", "top").
        color: RGB base colour in [0, 1].
        light: direction towards the light in the view frame.
    """
    from matplotlib.collections import PolyCollection  # heavy: loaded on first drawing

    check_choice(view, "view", sorted(VIEWS))
    v = _as_numpy(vertices).astype(np.float64)
    f = _as_numpy(faces).astype(np.int64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {tuple(v.shape)}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {tuple(f.shape)}")
    v = v @ VIEWS[view].T
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    facing = n[:, 2] > 0  # the camera looks down -z at the body, which faces +z
    light_dir = np.asarray(light, dtype=np.float64)
    light_dir /= np.linalg.norm(light_dir)
    shade = 0.25 + 0.75 * np.clip(n @ light_dir, 0.0, 1.0)
    order = np.argsort(tri[:, :, 2].mean(1))  # back to front
    order = order[facing[order]]
    colors = np.clip(np.asarray(color)[None, :] * shade[order, None], 0, 1)
    ax.add_collection(PolyCollection(tri[order, :, :2], facecolors=colors, edgecolors="none",
                                     antialiased=False))
    lo, hi = v[:, :2].min(0), v[:, :2].max(0)
    pad = 0.05 * (hi - lo).max()
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    ax.axis("off")


def plot_body(vertices, faces, path: str | Path | None = None, views: Sequence[str] = ("front", "side"),
              title: str | None = None, joints=None) -> Figure:
    """Figure of a body mesh from several views, optionally saved as PNG.

    Args:
        vertices: (V, 3) or (1, V, 3) array or tensor, metres.
        faces: (F, 3) integer array or tensor.
        path: where to write the PNG; nothing is written when ``None``.
        views: names from ``VIEWS``.
        title: figure title.
        joints: optional (J, 3) joints drawn as dots.

    Returns:
        The matplotlib figure (closed by the caller, or left to the garbage collector).
    """
    plt = pyplot_backend(path is not None)
    v = _as_numpy(vertices)
    if v.ndim == 3 and v.shape[0] == 1:
        v = v[0]
    fig, axes = plt.subplots(1, len(views), figsize=(3.2 * len(views), 4.2))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, views):
        draw_mesh(ax, v, faces, view=name)
        if joints is not None:
            j = _as_numpy(joints).reshape(-1, 3) @ VIEWS[name].T
            ax.scatter(j[:, 0], j[:, 1], s=6, c="crimson", zorder=3)
        ax.set_title(name, fontsize=9)
    return finish_figure(fig, title, path, dpi=120)


def plot_trajectory(trajectory, faces, path: str | Path | None = None, view: str = "front",
                    steps: Sequence[int] | None = None, title: str | None = None,
                    camera_frame: bool = True) -> Figure:
    """The paper's Fig. 10: a strip of meshes from the T-pose template (t = T) to the target (t = 0).

    Args:
        trajectory: (T + 1, V, 3) or (1, T + 1, V, 3) meshes with index t holding M_t (as
            ``schedule.trajectory`` returns), metres.
        faces: (F, 3).
        path: PNG to write, or ``None``.
        view: a name from ``VIEWS``.
        steps: which t to draw, in drawing order (default: T, T-1, ..., 0).
        title: figure title.
        camera_frame: the meshes are in the camera frame (y down, z away from the camera, as with
            the default template orientation): they are turned by pi about x for display.

    Returns:
        The matplotlib figure.
    """
    plt = pyplot_backend(path is not None)
    traj = _as_numpy(trajectory)
    if traj.ndim == 4 and traj.shape[0] == 1:
        traj = traj[0]
    if traj.ndim != 3 or traj.shape[-1] != 3:
        raise ValueError(f"trajectory must have shape (T + 1, V, 3), got {tuple(traj.shape)}")
    last = traj.shape[0] - 1
    steps = list(range(last, -1, -1)) if steps is None else list(steps)
    if any(not 0 <= t <= last for t in steps):
        raise ValueError(f"steps must lie in [0, {last}], got {steps}")
    if camera_frame:
        traj = traj * np.array([1.0, -1.0, -1.0])
    fig, axes = plt.subplots(1, len(steps), figsize=(1.6 * len(steps), 3.2))
    axes = np.atleast_1d(axes)
    check_choice(view, "view", sorted(VIEWS))
    shown = traj @ VIEWS[view].T
    lo, hi = shown[..., 1].min(), shown[..., 1].max()
    half_width = 0.5 * (shown[..., 0].max(-1) - shown[..., 0].min(-1)).max() + 0.05
    for ax, t in zip(axes, steps):  # one scale for every panel
        draw_mesh(ax, traj[t], faces, view=view)
        centre = 0.5 * (shown[t, :, 0].max() + shown[t, :, 0].min())
        ax.set_xlim(centre - half_width, centre + half_width)
        ax.set_ylim(lo - 0.05, hi + 0.05)
        ax.set_title(f"t = {t}", fontsize=8)
    return finish_figure(fig, title, path, dpi=110)
