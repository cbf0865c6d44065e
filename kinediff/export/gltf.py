"""An animated skinned body as glTF 2.0 binary (``.glb``): one mesh, one skin, one animation.

Layout (glTF 2.0 specification, sections "Skins" and "Animations"):

- nodes 0..J-1: the joints, named as the body's joints, each a child of its parent joint, with
  ``translation`` J_j - J_parent (the root: J_0), so that the rest pose puts joint j at J_j(beta);
- node J: the mesh, skinned by skin 0, a root of the scene beside joint 0 (a skinned mesh's node
  transform is ignored by the specification);
- the skin: joints 0..J-1, skeleton joint 0, inverse bind matrices translate(-J_j) (the joints'
  rest frames carry no rotation);
- the mesh: POSITION (the shaped rest mesh, float32), JOINTS_0 (unsigned byte; unsigned short
  for more than 256 joints) and WEIGHTS_0
  (float32, summing to 1) with the 4 largest weights per vertex, triangles as uint32 indices;
- one animation: per joint a ``rotation`` channel (unit quaternions x, y, z, w), and the root's
  ``translation`` channel (J_0 + translation), LINEAR, keyed at (start + k) / fps seconds. Successive
  quaternions are kept in one hemisphere, so that an importer that interpolates their components
  (Blender) takes the short way.

Units and axes: metres, the body model's frame (SMPL's is y up, as glTF's; a body in kinediff's
camera frame, y down, should be turned first: :func:`kinediff.export.camera_to_world`).

Written by hand: no well-kept Python library writes a skin and an animation from arrays (trimesh
writes static meshes; pygltflib only mirrors the JSON schema, and the tests use it as the
independent reader).
"""

from __future__ import annotations

import json
import struct

import numpy as np
from scipy.spatial.transform import Rotation

from kinediff.core.version import __version__
from kinediff.export.rig import Motion, Rig

__all__ = ["glb_bytes"]

# glTF's accessor component types and its buffer view targets (specification, "Accessors")
_FLOAT, _UBYTE, _USHORT, _UINT = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_GLB_MAGIC, _GLB_VERSION, _CHUNK_JSON, _CHUNK_BIN = 0x46546C67, 2, 0x4E4F534A, 0x004E4942


class _Buffer:
    """The binary chunk and its buffer views / accessors, each view 4-byte aligned."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, array: np.ndarray, component: int, kind: str, target: int | None = None,
            bounds: bool = False) -> int:
        """Append ``array`` (rows = elements) and return its accessor's index."""
        self.data.extend(b"\0" * (-len(self.data) % 4))
        raw = np.ascontiguousarray(array).tobytes()
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(raw)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        self.data.extend(raw)
        acc = {"bufferView": len(self.views) - 1, "componentType": component,
               "count": int(array.shape[0]), "type": kind}
        if bounds:
            flat = array.reshape(array.shape[0], -1)
            acc["min"] = [float(x) for x in flat.min(0)]
            acc["max"] = [float(x) for x in flat.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(F, 3, 3) -> (F, 4) unit quaternions (x, y, z, w), each in the hemisphere of the previous
    one."""
    q = Rotation.from_matrix(rotations).as_quat()  # scalar last, as glTF
    for k in range(1, q.shape[0]):
        if np.dot(q[k], q[k - 1]) < 0:
            q[k] = -q[k]
    return q


def glb_bytes(rig: Rig, motion: Motion, name: str = "body") -> bytes:
    """The ``.glb`` file of ``rig`` animated by ``motion`` (module docstring for the layout).

    Args:
        rig: :func:`~kinediff.export.rig.make_rig`'s rig (at most 4 influences per vertex).
        motion: :func:`~kinediff.export.rig.check_motion`'s animation.
        name: the mesh's and the animation's name.

    Returns:
        The file's bytes (a 12-byte header, the JSON chunk and the binary chunk).
    """
    j = len(rig.parents)
    if rig.influences.shape[1] > 4:
        raise ValueError(f"a glTF skin holds 4 joints per vertex (JOINTS_0); the rig has "
                         f"{rig.influences.shape[1]}")
    buf = _Buffer()
    positions = rig.vertices.astype(np.float32)
    pos = buf.add(positions, _FLOAT, "VEC3", _ARRAY_BUFFER, bounds=True)
    idx = buf.add(rig.faces.reshape(-1).astype(np.uint32), _UINT, "SCALAR", _ELEMENT_ARRAY_BUFFER)
    pad = 4 - rig.influences.shape[1]
    # JOINTS_0 is unsigned byte or unsigned short (the specification): bytes up to 256 joints
    small = j <= 256
    if j > 65536:
        raise ValueError(f"a glTF skin indexes at most 65536 joints (JOINTS_0), the body has {j}")
    influences = np.pad(rig.influences, ((0, 0), (0, pad))).astype(np.uint8 if small else np.uint16)
    weights = np.pad(rig.weights, ((0, 0), (0, pad))).astype(np.float32)
    weights[:, 0] += 1 - weights.sum(1)  # sums to 1 in float32 too (the validator's check)
    joints_acc = buf.add(influences, _UBYTE if small else _USHORT, "VEC4", _ARRAY_BUFFER)
    weights_acc = buf.add(weights, _FLOAT, "VEC4", _ARRAY_BUFFER)
    ibm = np.tile(np.eye(4), (j, 1, 1))
    ibm[:, :3, 3] = -rig.joints
    # glTF matrices are column-major: the transpose's rows are the columns
    ibm_acc = buf.add(ibm.transpose(0, 2, 1).reshape(j, 16).astype(np.float32), _FLOAT, "MAT4")
    frames = motion.rotations.shape[0]
    times = buf.add(((motion.start + np.arange(frames)) / motion.fps).astype(np.float32), _FLOAT, "SCALAR",
                    bounds=True)
    samplers, channels = [], []
    for i in range(j):
        quat = buf.add(_quaternions(motion.rotations[:, i]).astype(np.float32), _FLOAT, "VEC4")
        samplers.append({"input": times, "output": quat, "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": i, "path": "rotation"}})
    root = buf.add(motion.root.astype(np.float32), _FLOAT, "VEC3")
    samplers.append({"input": times, "output": root, "interpolation": "LINEAR"})
    channels.append({"sampler": len(samplers) - 1, "target": {"node": 0, "path": "translation"}})

    nodes = []
    for i, parent in enumerate(rig.parents):
        offset = rig.joints[i] - (rig.joints[parent] if parent >= 0 else 0)
        node = {"name": rig.names[i], "translation": [float(x) for x in offset]}
        children = [c for c, p in enumerate(rig.parents) if p == i]
        if children:
            node["children"] = children
        nodes.append(node)
    nodes.append({"name": name, "mesh": 0, "skin": 0})
    doc = {
        "asset": {"version": "2.0", "generator": f"kinediff {__version__}"},
        "scene": 0,
        "scenes": [{"nodes": [0, j]}],
        "nodes": nodes,
        "meshes": [{"name": name, "primitives": [{
            "attributes": {"POSITION": pos, "JOINTS_0": joints_acc, "WEIGHTS_0": weights_acc},
            "indices": idx, "mode": 4}]}],
        "skins": [{"joints": list(range(j)), "inverseBindMatrices": ibm_acc, "skeleton": 0}],
        "animations": [{"name": name, "samplers": samplers, "channels": channels}],
        "accessors": buf.accessors,
        "bufferViews": buf.views,
        "buffers": [{"byteLength": len(buf.data) + (-len(buf.data) % 4)}],
    }
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # the JSON chunk is padded with spaces, the binary with zeros
    binary = bytes(buf.data) + b"\0" * (-len(buf.data) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<III", _GLB_MAGIC, _GLB_VERSION, total)
            + struct.pack("<II", len(text), _CHUNK_JSON) + text
            + struct.pack("<II", len(binary), _CHUNK_BIN) + binary)
