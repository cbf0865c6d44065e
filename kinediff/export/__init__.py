"""Exports of a predicted body and of a model.

- :mod:`kinediff.export.meshes`: a body as a mesh file for Blender and animation tools
  (:func:`export_mesh`: OBJ, PLY, glTF binary) or as an NPZ archive with its SMPL parameters and
  camera (:func:`export_npz`), written atomically.
- :mod:`kinediff.export.onnx`: a :class:`~kinediff.PostureHMR` as an ONNX graph
  (:func:`export_onnx`, run by :func:`run_onnx`; needs the ``onnx`` extra:
  ``pip install kinediff[onnx]``).
"""

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

__all__ = ["DEFAULT_OPSET", "MESH_FORMATS", "NPZ_KEYS", "ONNX_INPUT", "InferenceGraph", "export_mesh",
           "export_npz", "export_onnx", "onnx_outputs", "onnx_session",
           "run_onnx"]
