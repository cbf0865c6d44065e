"""Exports of a predicted body and of a model.

- :mod:`kinediff.export.meshes`: a body as a mesh file for Blender and animation tools
  (:func:`export_mesh`: OBJ, PLY, glTF binary) or as an NPZ archive with its SMPL parameters and
  camera (:func:`export_npz`), written atomically.
- :mod:`kinediff.export.animation`: one person's fitted motion as an animation file
  (:func:`export_animation`: a skinned glTF ``.glb``, a ``.bvh`` skeleton, ``.fbx`` through
  Blender), built on the rig of :mod:`kinediff.export.rig` (:func:`make_rig`, :func:`rig_vertices`,
  what the files lose: :func:`rig_errors`); :func:`camera_to_world` stands a camera-frame body up.
- :mod:`kinediff.export.onnx`: a :class:`~kinediff.PostureHMR` as an ONNX graph
  (:func:`export_onnx`, run by :func:`run_onnx`; needs the ``onnx`` extra:
  ``pip install kinediff[onnx]``).
"""

from kinediff.export.animation import (
    ANIMATION_FORMATS,
    BLENDER_SCRIPT,
    camera_to_world,
    export_animation,
)
from kinediff.export.meshes import MESH_FORMATS, NPZ_KEYS, export_mesh, export_npz
from kinediff.export.onnx import (
    DEFAULT_OPSET,
    ONNX_INPUT,
    InferenceGraph,
    export_onnx,
    onnx_outputs,
    onnx_session,
    run_onnx,
)
from kinediff.export.rig import Motion, Rig, check_motion, make_rig, rig_errors, rig_vertices

__all__ = [
    "ANIMATION_FORMATS",
    "BLENDER_SCRIPT",
    "DEFAULT_OPSET",
    "MESH_FORMATS",
    "NPZ_KEYS",
    "ONNX_INPUT",
    "InferenceGraph",
    "Motion",
    "Rig",
    "camera_to_world",
    "check_motion",
    "export_animation",
    "export_mesh",
    "export_npz",
    "export_onnx",
    "make_rig",
    "onnx_outputs",
    "onnx_session",
    "rig_errors",
    "rig_vertices",
    "run_onnx",
]
