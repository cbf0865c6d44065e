"""kinediff.export.export_animation: the .glb read back by pygltflib and skinned by the glTF
specification's own formula, the .bvh read back by bvhio, both equal to kinediff's mesh and
rotations; the rig's losses; every clear error."""

from __future__ import annotations

import json
import struct

import bvhio
import numpy as np
import pygltflib
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation
from tolerances import atol_for

from kinediff.body import BodyModel
from kinediff.core.conventions import SMPL_JOINT_NAMES, SMPL_PARENTS
from kinediff.export import camera_to_world, export_animation, make_rig, rig_errors, rig_vertices
from kinediff.export.bvh import BVH_UNITS_PER_METRE, depth_first
from kinediff.export.rig import check_motion

FPS = 25.0


@pytest.fixture(scope="module")
def body():
    return BodyModel.synthetic(dtype=torch.float64)


def _sequence(frames=12, seed=0, scale=1.2):
    """Large rotations: every joint up to about ``scale`` rad, a root turn beyond pi."""
    g = torch.Generator().manual_seed(seed)
    poses = scale * (2 * torch.rand(frames, 24, 3, generator=g, dtype=torch.float64) - 1)
    poses[:, 0] = torch.linspace(0, 1, frames, dtype=torch.float64)[:, None] * torch.tensor(
        [0.4, 3.5, -0.2], dtype=torch.float64)
    transl = torch.randn(frames, 3, generator=g, dtype=torch.float64) * 0.3
    betas = torch.randn(10, generator=g, dtype=torch.float64)
    return poses, betas, transl


def _without_correctives(body, poses, betas, transl):
    """kinediff's mesh with the pose-corrective blend shapes zeroed: a body model built from the
    same arrays with posedirs = 0 (independent of the exporter's rig code)."""
    data = body.to_smpl_dict()
    data["posedirs"] = np.zeros_like(np.asarray(data["posedirs"]))
    flat = BodyModel.from_dict(data, dtype=torch.float64)
    f = poses.shape[0]
    with torch.no_grad():
        return flat(poses, betas[None].expand(f, -1), transl).vertices.numpy()


# --- an independent glTF reader: pygltflib for the JSON, the specification for the maths ---------

_COMPONENTS = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _accessor(gltf, blob, index):
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = _COMPONENTS[acc.componentType]
    n = acc.count * _WIDTH[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    return np.frombuffer(blob, dtype=dtype, count=n, offset=start).reshape(acc.count, -1)


def _quat_matrix(q):
    """Unit quaternion (x, y, z, w) -> 3 x 3 matrix (the textbook formula)."""
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _skinned(gltf, blob, frame):
    """The glTF skinned mesh at keyframe ``frame``: sum_i w_i * (global(joint_i) @ IBM_i) @ v."""
    channels = {}
    anim = gltf.animations[0]
    for ch in anim.channels:
        sampler = anim.samplers[ch.sampler]
        channels[(ch.target.node, ch.target.path)] = _accessor(gltf, blob, sampler.output)[frame]
    skin = gltf.skins[0]
    ibm = _accessor(gltf, blob, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    parent = {c: i for i, node in enumerate(gltf.nodes) for c in (node.children or [])}
    world = {}

    def global_matrix(i):
        if i not in world:
            node = gltf.nodes[i]
            local = np.eye(4)
            local[:3, :3] = _quat_matrix(channels.get((i, "rotation"), node.rotation or [0, 0, 0, 1]))
            local[:3, 3] = channels.get((i, "translation"), node.translation or [0, 0, 0])
            world[i] = (global_matrix(parent[i]) if i in parent else np.eye(4)) @ local
        return world[i]

    joint_mats = np.stack([global_matrix(n) @ ibm[k] for k, n in enumerate(skin.joints)])
    prim = gltf.meshes[0].primitives[0]
    pos = _accessor(gltf, blob, prim.attributes.POSITION).astype(np.float64)
    joints = _accessor(gltf, blob, prim.attributes.JOINTS_0).astype(np.int64)
    weights = _accessor(gltf, blob, prim.attributes.WEIGHTS_0).astype(np.float64)
    homo = np.concatenate([pos, np.ones((pos.shape[0], 1))], 1)
    mats = np.einsum("vk,vkab->vab", weights, joint_mats[joints])
    return np.einsum("vab,vb->va", mats, homo)[:, :3]


def test_glb_read_by_pygltflib_skins_to_kinediffs_mesh(body, tmp_path):
    poses, betas, transl = _sequence()
    path = export_animation(tmp_path / "seq.glb", body, poses, betas, transl, fps=FPS)
    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    assert [n.name for n in gltf.nodes[:24]] == list(SMPL_JOINT_NAMES)
    parent = {c: i for i, node in enumerate(gltf.nodes) for c in (node.children or [])}
    assert [parent.get(j, -1) for j in range(24)] == list(SMPL_PARENTS)
    times = _accessor(gltf, blob, gltf.animations[0].samplers[0].input)[:, 0]
    np.testing.assert_allclose(times, np.arange(12) / FPS, rtol=0, atol=1e-6)
    weights = _accessor(gltf, blob, gltf.meshes[0].primitives[0].attributes.WEIGHTS_0)
    np.testing.assert_allclose(weights.sum(1), 1, rtol=0, atol=1e-6)
    expected = _without_correctives(body, poses, betas, transl)
    for k in (0, 5, 11):  # float32 storage: about 1e-7 relative, accumulated along the chain
        np.testing.assert_allclose(_skinned(gltf, blob, k), expected[k], rtol=0,
                                   atol=atol_for(expected, np.float32, ulps=128))


def test_rig_vertices_are_the_body_without_correctives(body):
    poses, betas, transl = _sequence(frames=5, seed=1)
    rig = make_rig(body, betas, body.num_joints)
    got = rig_vertices(rig, check_motion(rig, poses, transl, FPS))
    np.testing.assert_allclose(got, _without_correctives(body, poses, betas, transl), rtol=0,
                               atol=1e-10)


def test_bvh_read_by_bvhio_equals_the_source_rotations(body, tmp_path):
    poses, betas, transl = _sequence(frames=8, seed=2)
    path = export_animation(tmp_path / "seq.bvh", body, poses, betas, transl, fps=FPS)
    bvh = bvhio.readAsBvh(str(path))
    assert bvh.FrameCount == 8 and bvh.FrameTime == pytest.approx(1 / FPS, abs=1e-8)
    joints = []
    stack = [bvh.Root]
    while stack:  # bvhio's joints, depth first
        j = stack.pop()
        joints.append(j)
        stack.extend(reversed(j.Children))
    order = depth_first(SMPL_PARENTS)
    assert [j.Name for j in joints] == [SMPL_JOINT_NAMES[i] for i in order]
    rig = make_rig(body, betas)
    rot = Rotation.from_rotvec(poses.reshape(-1, 3).numpy()).as_matrix().reshape(8, 24, 3, 3)
    for joint, i in zip(joints, order):
        if SMPL_PARENTS[i] >= 0:
            offset = np.array(joint.Offset.to_list()) / BVH_UNITS_PER_METRE
            np.testing.assert_allclose(offset, rig.joints[i] - rig.joints[SMPL_PARENTS[i]],
                                       rtol=0, atol=1e-7)
        for k in range(8):
            q = joint.Keyframes[k].Rotation
            got = _quat_matrix([q.x, q.y, q.z, q.w])
            np.testing.assert_allclose(got, rot[k, i], rtol=0, atol=1e-5)  # 6 decimals of degrees
    root = np.array([bvh.Root.Keyframes[k].Position.to_list() for k in range(8)])
    np.testing.assert_allclose(root / BVH_UNITS_PER_METRE, rig.joints[0] + transl.numpy(), rtol=0,
                               atol=1e-7)


def test_glb_header_and_chunks_follow_the_glb_layout(body, tmp_path):
    poses, betas, _ = _sequence(frames=3)
    data = export_animation(tmp_path / "a.glb", body, poses, betas, None).read_bytes()
    magic, version, length = struct.unpack_from("<III", data)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_len, kind = struct.unpack_from("<II", data, 12)
    assert kind == 0x4E4F534A and json_len % 4 == 0
    doc = json.loads(data[20:20 + json_len])
    # no translations given: a rotation channel per joint, and the root's translation channel
    # holding its rest position J_0
    assert {c["target"]["path"] for c in doc["animations"][0]["channels"]} == {"rotation", "translation"}
    assert len(data) % 4 == 0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_keyframe_quaternions_take_the_short_way(tmp_path_factory, seed):
    """Read back from the file: successive quaternions of a joint lie in one hemisphere (q and -q
    are the same rotation; an importer that interpolates components would otherwise swing the long
    way round), and they are the source rotations."""
    body = BodyModel.synthetic(dtype=torch.float64)
    g = np.random.default_rng(seed)
    axis = g.normal(size=3)
    axis /= np.linalg.norm(axis)
    angles = np.cumsum(g.uniform(0, 0.5, size=20))  # past 2 pi: scipy's own sign flips there
    poses = np.zeros((20, 24, 3))
    poses[:, 4] = angles[:, None] * axis  # one joint turning on and on
    path = export_animation(tmp_path_factory.mktemp("q") / "turn.glb", body, poses)
    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    (channel,) = [c for c in gltf.animations[0].channels
                  if c.target.node == 4 and c.target.path == "rotation"]
    q = _accessor(gltf, blob, gltf.animations[0].samplers[channel.sampler].output).astype(np.float64)
    assert (np.sum(q[1:] * q[:-1], axis=1) > 0).all()
    mats = np.stack([_quat_matrix(row) for row in q])
    np.testing.assert_allclose(mats, Rotation.from_rotvec(poses[:, 4]).as_matrix(), rtol=0,
                               atol=1e-6)  # float32 storage


def test_start_frame_keys_the_clip_later(body, tmp_path):
    poses, betas, transl = _sequence(frames=4)
    path = export_animation(tmp_path / "late.glb", body, poses, betas, transl, fps=FPS,
                            start_frame=5)
    gltf = pygltflib.GLTF2().load(str(path))
    times = _accessor(gltf, gltf.binary_blob(), gltf.animations[0].samplers[0].input)[:, 0]
    np.testing.assert_allclose(times, (5 + np.arange(4)) / FPS, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="start_frame"):
        export_animation(tmp_path / "x.glb", body, poses, start_frame=-1)


def test_bvh_channels_are_continuous_over_time(body, tmp_path):
    """A joint turning past 180 degrees: its Euler channels keep going rather than jump by 360."""
    poses = np.zeros((30, 24, 3))
    poses[:, 0, 1] = np.linspace(0, 2 * np.pi * 0.95, 30)  # the root turning almost a full circle
    text = export_animation(tmp_path / "turn.bvh", body, poses, fps=FPS).read_text()
    rows = np.array([[float(x) for x in line.split()] for line in text.splitlines()[-30:]])
    assert np.abs(np.diff(rows[:, 3:], axis=0)).max() < 20  # 12.4 degrees a frame about y


def test_rig_errors_measure_correctives_and_truncation(body):
    poses, betas, transl = _sequence(frames=6)
    lost = rig_errors(body, poses, betas, transl)
    # the synthetic body has at most 4 weights per vertex: keeping 4 loses nothing
    assert int((body.weights > 0).sum(1).max()) <= 4
    assert lost["truncation_max"] < 1e-9
    # the correctives are what the file loses: total == correctives up to their skinning rotation
    assert 0 < lost["correctives_mean"] and lost["total_max"] > 0
    assert lost["total_mean"] == pytest.approx(lost["correctives_mean"], rel=0.25)
    one = rig_errors(body, poses, betas, transl, max_influences=1)
    assert one["truncation_max"] > 1.0  # one joint per vertex tears the mesh at the joints (mm)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"poses": np.zeros((3, 23, 3))}, ValueError, "poses must have shape \\(F, 24, 3\\)"),
    ({"poses": np.full((3, 24, 3), np.nan)}, ValueError, "poses must be finite"),
    ({"poses": "walk"}, TypeError, "poses must be an array"),
    ({"translations": np.zeros((2, 3))}, ValueError, "translations must have shape \\(3, 3\\)"),
])
def test_camera_to_world_errors(body, kwargs, error, message):
    args = {"poses": np.zeros((3, 24, 3)), "betas": None, "translations": None, **kwargs}
    with pytest.raises(error, match=message):
        camera_to_world(body, **args)


def test_camera_to_world_turns_the_same_mesh(body):
    poses, betas, transl = _sequence(frames=4, seed=3)
    p, t = camera_to_world(body, poses, betas, transl)
    with torch.no_grad():
        before = body(poses, betas[None].expand(4, -1), transl).vertices.numpy()
        after = body(torch.from_numpy(p), betas[None].expand(4, -1), torch.from_numpy(t)).vertices.numpy()
    np.testing.assert_allclose(after, before * np.array([1.0, -1.0, -1.0]), rtol=0, atol=1e-10)


def test_betas_per_frame_are_averaged(body, tmp_path):
    poses, betas, transl = _sequence(frames=4)
    per_frame = betas[None].repeat(4, 1) + torch.linspace(-0.1, 0.1, 4, dtype=torch.float64)[:, None]
    meshes = []
    for name, b in (("a.glb", per_frame), ("b.glb", per_frame.mean(0))):
        gltf = pygltflib.GLTF2().load(str(export_animation(tmp_path / name, body, poses, b, transl)))
        meshes.append(_accessor(gltf, gltf.binary_blob(), gltf.meshes[0].primitives[0].attributes.POSITION))
    np.testing.assert_array_equal(meshes[0], meshes[1])


@pytest.mark.parametrize("name, kwargs, error, message", [
    ("x.obj", {}, ValueError, "suffix must be .glb, .bvh, .fbx"),
    ("x.glb", {"poses": torch.zeros(3, 23, 3)}, ValueError, "poses must have shape"),
    ("x.glb", {"poses": torch.full((3, 24, 3), float("nan"))}, ValueError, "poses must be finite"),
    ("x.glb", {"translations": torch.zeros(2, 3)}, ValueError, "translations must have shape"),
    ("x.glb", {"betas": torch.zeros(2, 10)}, ValueError, "F = 3 frames"),
    ("x.glb", {"betas": torch.zeros(11)}, ValueError, "K <= 10"),
    ("x.glb", {"fps": 0}, ValueError, "fps"),
    ("x.bvh", {"fps": float("inf")}, ValueError, "fps"),
    ("x.glb", {"max_influences": 5}, ValueError, "max_influences must be an integer in \\[1, 4\\]"),
    ("x.glb", {"poses": 0.5}, ValueError, "poses must have shape \\(F, J, 3\\)"),
    ("x.glb", {"poses": "walk"}, TypeError, "poses must be an array"),
    ("x.glb", {"poses": torch.zeros(0, 24, 3)}, ValueError, "at least one frame"),
])
def test_export_animation_errors(body, tmp_path, name, kwargs, error, message):
    args = {"poses": torch.zeros(3, 24, 3), "betas": None, "translations": None, "fps": 30.0}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        export_animation(tmp_path / name, body, **args)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_fbx_names_the_blender_extra_or_the_failing_python(body, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bpy"
                        else real(name, *a))
    with pytest.raises(ImportError, match=r"kinediff\[blender\]"):
        export_animation(tmp_path / "x.fbx", body, torch.zeros(2, 24, 3))
    assert not list(tmp_path.iterdir())
    missing = tmp_path / "no-such-python"
    with pytest.raises(RuntimeError, match=f"Blender's FBX export failed.*{missing.name}"):
        export_animation(tmp_path / "out" / "x.fbx", body, torch.zeros(2, 24, 3),
                         blender_python=missing)
    assert not (tmp_path / "out").exists()
