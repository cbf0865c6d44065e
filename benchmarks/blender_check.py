"""Blender reads kinediff's animated ``.glb`` (and ``.fbx``) as kinediff's mesh, frame by frame.

    python benchmarks/blender_check.py --blender-python PYTHON [--frames 48] [--fps 24] [--json]

PYTHON is an interpreter with ``bpy`` (``pip install bpy``: its wheels pin their own numpy, so a
separate virtual environment is the easy way). The script

1. makes a sequence with large rotations on the synthetic body (every joint swinging through up
   to +-1.4 rad, the root turning a full circle about the vertical and travelling 1 m),
2. writes it with :func:`kinediff.export.export_animation` as ``.glb`` and ``.fbx``,
3. in PYTHON (a child process): imports each file into an empty Blender scene whose frame rate
   is the clip's, evaluates the skinned mesh at every frame (depsgraph, modifiers applied) and
   saves the world-space vertices,
4. compares frame k with kinediff's own mesh for frame k without the pose-corrective offsets
   (:func:`kinediff.export.rig.rig_vertices` with all of the body's weights), after Blender's
   y-up to z-up turn (x, y, z) -> (x, -z, y); the target is 1 mm at most.

It prints the maximum and mean vertex error in mm per format, and what leaving the correctives
out costs (:func:`kinediff.export.rig_errors`). Synthetic body: the figures are the synthetic
body's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import torch

from kinediff.body import BodyModel
from kinediff.export import export_animation, rig_errors
from kinediff.export.rig import check_motion, make_rig, rig_vertices

# run by the Python with bpy: import the file, evaluate the mesh at every frame
BLENDER_EVAL = textwrap.dedent("""
    import sys
    from fractions import Fraction
    import bpy
    import numpy as np
    src, out, fps, frames = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rate = Fraction(fps).limit_denominator(1001)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = rate.numerator, rate.denominator
    if src.endswith(".glb"):
        bpy.ops.import_scene.gltf(filepath=src)
    else:
        bpy.ops.import_scene.fbx(filepath=src)
    # the skinned body (the importer may add a bone-display mesh of its own, unskinned)
    meshes = [o for o in scene.objects if o.type == "MESH"
              and any(m.type == "ARMATURE" for m in o.modifiers)]
    assert len(meshes) == 1, [o.name for o in scene.objects]
    action = bpy.data.actions[0]
    first = int(round(action.frame_range[0]))
    found = []
    for k in range(frames):
        scene.frame_set(first + k)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        obj = meshes[0].evaluated_get(depsgraph)
        mesh = obj.to_mesh()
        co = np.empty(len(mesh.vertices) * 3)
        mesh.vertices.foreach_get("co", co)
        m = np.array(obj.matrix_world)
        co = co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
        found.append(co)
        obj.to_mesh_clear()
    np.savez(out, vertices=np.stack(found), first=first, fps=scene.render.fps / scene.render.fps_base,
             action_range=np.array(action.frame_range), version=bpy.app.version_string)
""")


def sequence(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Large rotations: each joint swings along its own axis through up to +-1.4 rad, the root
    turns once about the vertical (y) while leaning, the body travels 1 m."""
    g = torch.Generator().manual_seed(0)
    axes = torch.nn.functional.normalize(torch.randn(24, 3, generator=g, dtype=torch.float64), dim=1)
    phase = torch.rand(24, generator=g, dtype=torch.float64) * 6.28
    t = torch.linspace(0, 1, frames, dtype=torch.float64)
    angle = 1.4 * torch.sin(2 * torch.pi * t[:, None] + phase)
    poses = angle[..., None] * axes
    turn = 2 * torch.pi * t
    poses[:, 0] = torch.stack([0.3 * torch.sin(turn), turn, torch.zeros_like(t)], 1)
    transl = torch.stack([t, 0.1 * torch.sin(turn), 0.5 * t], 1)
    return poses, transl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blender-python", required=True, help="a Python interpreter with bpy")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    body = BodyModel.synthetic(dtype=torch.float64)
    poses, transl = sequence(args.frames)
    betas = 0.5 * torch.randn(10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    full = make_rig(body, betas, body.num_joints)
    expected = rig_vertices(full, check_motion(full, poses, transl, args.fps))
    to_blender = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # glTF y up -> Blender z up
    expected = expected @ to_blender.T
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".glb", ".fbx"):
            path = Path(tmp) / f"seq{suffix}"
            export_animation(path, body, poses, betas, transl, fps=args.fps,
                             blender_python=args.blender_python)
            out = Path(tmp) / f"eval{suffix}.npz"
            script = Path(tmp) / "eval.py"
            script.write_text(BLENDER_EVAL)
            done = subprocess.run([args.blender_python, str(script), str(path), str(out),
                                   repr(args.fps), str(args.frames)],
                                  check=False, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"Blender failed on {suffix}: {done.stderr[-2000:]}")
            got = np.load(out)
            v = got["vertices"]
            if v.shape != expected.shape:
                sys.exit(f"{suffix}: Blender's mesh has shape {v.shape}, kinediff's {expected.shape}")
            err = np.linalg.norm(v - expected, axis=-1) * 1000
            rows[suffix] = {"max_mm": float(err.max()), "mean_mm": float(err.mean()),
                            "worst_frame": int(err.max(1).argmax()), "blender": str(got["version"]),
                            "first_frame": int(got["first"]), "scene_fps": float(got["fps"])}
    lost = rig_errors(body, poses, betas, transl)
    result = {"frames": args.frames, "fps": args.fps, "formats": rows, "rig_errors_mm": lost,
              "data": "synthetic body"}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"Blender {rows['.glb']['blender']}, {args.frames} frames at {args.fps} fps, synthetic body, "
          f"large rotations (up to 1.4 rad per joint, a full turn of the root)")
    print("| file | max error (mm) | mean error (mm) | target |")
    print("|---|---|---|---|")
    for suffix, row in rows.items():
        ok = "ok" if row["max_mm"] <= 1.0 else "MISSED"
        print(f"| {suffix} | {row['max_mm']:.4f} | {row['mean_mm']:.4f} | <= 1 mm: {ok} |")
    print(f"left out of every file, the pose correctives: up to {lost['correctives_max']:.2f} mm, "
          f"{lost['correctives_mean']:.2f} mm on average; the 4 largest weights against all of "
          f"them: up to {lost['truncation_max']:.2e} mm")


if __name__ == "__main__":
    main()
