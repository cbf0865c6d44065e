"""A fitted body sequence as an animation file for Blender and other tools: a skinned glTF
(``.glb``), a skeleton (``.bvh``) or, through Blender's own exporter, ``.fbx``.

:func:`export_animation` takes the per-frame SMPL parameters of one person (what
:func:`kinediff.fit.fit_smpl` or :func:`kinediff.video.predict.predict_video` give per track), builds
the rig (:mod:`kinediff.export.rig`) and writes it atomically. :func:`camera_to_world` first turns a
body from kinediff's camera frame (y down) into a y-up world, where Blender and glTF viewers show it
standing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from kinediff.core.checks import check_int
from kinediff.core.io import write_atomic
from kinediff.export.bvh import bvh_text
from kinediff.export.gltf import glb_bytes
from kinediff.export.rig import array_of, check_motion, make_rig

__all__ = ["ANIMATION_FORMATS", "BLENDER_SCRIPT", "camera_to_world", "export_animation"]

#: The suffixes :func:`export_animation` writes.
ANIMATION_FORMATS = (".glb", ".bvh", ".fbx")
#: The script Blender's Python runs to turn the ``.glb`` into ``.fbx`` (it needs only ``bpy``).
BLENDER_SCRIPT = Path(__file__).with_name("blender_fbx.py")


def _betas(betas: Any, frames: int, num_betas: int) -> np.ndarray | None:
    """(K,) betas: as given, or the mean over frames of (F, K) (a rig has one shape)."""
    if betas is None:
        return None
    b = array_of(betas, "betas")
    if b.ndim == 2:
        if b.shape[0] != frames:
            raise ValueError(f"betas must have shape (K,) or (F, K) with F = {frames} frames, got "
                             f"{b.shape}")
        b = b.mean(0)
    if b.ndim != 1 or b.shape[0] > num_betas:
        raise ValueError(f"betas must have shape (K,) or (F, K) with K <= {num_betas}, got {b.shape}")
    return b


def camera_to_world(body, poses: Any, betas: Any = None, translations: Any = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """SMPL parameters in kinediff's camera frame (x right, y down, z forward) turned by pi about
    x into a y-up world (x right, y up, z towards the camera), the frame glTF, BVH and Blender's
    importers expect: the same meshes, rotated.

    Args:
        body: the :class:`~kinediff.body.BodyModel` the parameters are for.
        poses: (F, J, 3) axis-angle, radians. betas: (K,) or (F, K), or None.
        translations: (F, 3) metres, or None (zero).

    Returns:
        (poses (F, J, 3), translations (F, 3)) float64: the root's orientation is W R_0 and the
        translation W (J_0 + t) - J_0, with W = diag(1, -1, -1) and J_0 the shaped root joint.
    """
    p = array_of(poses, "poses")
    j = body.num_joints
    if p.ndim != 3 or p.shape[1:] != (j, 3) or p.shape[0] < 1:
        raise ValueError(f"poses must have shape (F, {j}, 3) axis-angle (F >= 1), got {p.shape}")
    frames = p.shape[0]
    t = np.zeros((frames, 3)) if translations is None else array_of(translations, "translations")
    if t.shape != (frames, 3):
        raise ValueError(f"translations must have shape ({frames}, 3), got {t.shape}")
    beta = _betas(betas, frames, body.num_betas)
    ref = body.v_template
    with torch.no_grad():  # only J_0(beta) is needed, not a whole rig
        root = body.rest_joints(torch.as_tensor(np.zeros(body.num_betas) if beta is None else beta,
                                                dtype=ref.dtype, device=ref.device)[None]
                                )[0, 0].double().cpu().numpy()
    w = np.diag([1.0, -1.0, -1.0])
    out = p.copy()
    out[:, 0] = Rotation.from_matrix(w @ Rotation.from_rotvec(p[:, 0]).as_matrix()).as_rotvec()
    return out, (root + t) @ w.T - root


def _fbx(glb: bytes, path: Path, fps: float, python: str | os.PathLike | None) -> None:
    """``.fbx`` through Blender's exporter: the ``.glb`` imported into an empty scene at ``fps``
    and exported again, in a child process of the Python with ``bpy``."""
    exe = str(python) if python is not None else sys.executable
    if python is None and importlib.util.find_spec("bpy") is None:
        raise ImportError("writing .fbx needs Blender's Python module: pip install 'kinediff[blender]' "
                          "(bpy), or pass blender_python= a Python that has it; .glb and .bvh need "
                          "nothing more")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "animation.glb"
        src.write_bytes(glb)
        dst = Path(tmp) / "animation.fbx"
        try:
            done = subprocess.run([exe, str(BLENDER_SCRIPT), str(src), str(dst), repr(fps)],
                                  check=False, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise RuntimeError(f"Blender's FBX export failed ({exe}): {err}") from None
        if done.returncode != 0 or not dst.is_file():
            raise RuntimeError(f"Blender's FBX export failed ({exe}, exit {done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-800:]}")
        write_atomic(path, lambda t: shutil.copyfile(dst, t))


def export_animation(path: str | os.PathLike, body, poses: Any, betas: Any = None,
                     translations: Any = None, fps: float = 30.0, *, start_frame: int = 0,
                     max_influences: int = 4, blender_python: str | os.PathLike | None = None) -> Path:
    """Write one person's motion as an animation file; the format follows the suffix.

    - ``.glb``: glTF 2.0 binary with the mesh shaped by ``betas``, a skin of the body's joints
      at J(beta), each vertex's ``max_influences`` (at most 4) largest skinning weights
      renormalised, a rotation channel per joint and the root's translation
      (:mod:`kinediff.export.gltf`).
    - ``.bvh``: the skeleton only, centimetres, intrinsic Z-X-Y Euler angles in degrees
      (:mod:`kinediff.export.bvh`).
    - ``.fbx``: the ``.glb`` rig imported into Blender and written by its FBX exporter (needs
      ``bpy``: ``pip install 'kinediff[blender]'``, here or in ``blender_python``).

    Not exported: SMPL's pose-corrective offsets (linear blend skinning cannot carry them). What
    the file loses against ``body(poses, betas, translations)`` is measured for any body by
    :func:`kinediff.export.rig_errors`; on the synthetic body and the large rotations of
    ``benchmarks/blender_check.py``, the correctives move vertices by up to 10.9 mm, 1.05 mm on
    average, and keeping 4 weights loses nothing (its vertices have at most 4). Blender shows the
    ``.glb`` and the ``.fbx`` within 0.002 mm of :func:`kinediff.export.rig_vertices` there.

    Args:
        path: the file to write (``.glb``, ``.bvh`` or ``.fbx``; its folder is created).
        body: the :class:`~kinediff.body.BodyModel` the parameters are for.
        poses: (F, J, 3) axis-angle in radians (joint 0: global orientation), or (F, J, 3, 3).
        betas: (K,) or (F, K) shape coefficients (a rig has one shape: (F, K) is averaged over
            frames), or None for the mean shape.
        translations: (F, 3) metres added to the body (SMPL's ``transl``), or None.
        fps: frames per second; frame k is keyed at (start_frame + k) / fps seconds.
        start_frame: the first frame's index in its clip, so that the tracks of one video line up
            in Blender (``.glb`` / ``.fbx``; a ``.bvh`` has no start time and starts at 0).
        max_influences: joints per vertex in the skin, 1 to 4.
        blender_python: for ``.fbx``, the Python interpreter that has ``bpy`` (default: this one).

    Returns:
        The path written.

    Raises:
        ValueError: an unknown suffix, wrong shapes, non-finite values, fps <= 0.
        ImportError: ``.fbx`` without ``bpy``.
        RuntimeError: Blender's exporter failed.

    Example:
        >>> import tempfile, torch
        >>> from kinediff.body import BodyModel
        >>> from kinediff.export import export_animation
        >>> body = BodyModel.synthetic()
        >>> poses = 0.3 * torch.randn(5, 24, 3, generator=torch.Generator().manual_seed(0))
        >>> out = export_animation(tempfile.mkdtemp() + "/walk.bvh", body, poses, fps=25)
        >>> "Frames: 5" in out.read_text().splitlines()
        True
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_FORMATS:
        raise ValueError(f"unknown animation format {path.suffix!r} in {str(path)!r}: the suffix must "
                         f"be {', '.join(ANIMATION_FORMATS)}")
    pose_array = array_of(poses, "poses")
    if pose_array.ndim not in (3, 4):
        raise ValueError(f"poses must have shape (F, J, 3) axis-angle or (F, J, 3, 3) rotation "
                         f"matrices, got {pose_array.shape}")
    influences = check_int(max_influences, "max_influences", 1, 4,
                           what="(joints per vertex in glTF's JOINTS_0)")
    rig = make_rig(body, _betas(betas, pose_array.shape[0], body.num_betas), influences)
    motion = check_motion(rig, pose_array, translations, fps, start_frame)
    if suffix == ".bvh":
        text = bvh_text(rig, motion)
        return write_atomic(path, lambda tmp: tmp.write_text(text))
    glb = glb_bytes(rig, motion, name=path.stem)
    if suffix == ".fbx":
        _fbx(glb, path, motion.fps, blender_python)
        return path
    return write_atomic(path, lambda tmp: tmp.write_bytes(glb))
