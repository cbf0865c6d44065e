"""Small MPI-INF-3DHP data sets in the released file formats, drawn from a body model, read by
:class:`kinediff.data.MPIINF3DHP`: the training set (``annot.mat``, ``camera.calibration``,
``.avi`` videos and SPIN-style extracted frames), the test set (``annot_data.mat`` as MATLAB v7.3
through h5py, or v5), the NeuralAnnot / Hand4Whole JSON files, HybrIK's JSON and SPIN's npz.

The fixture's 28 MPI joints are made from the body: SMPL joints where MPI has the same joint
(pelvis = SMPL's root, so a fit's root sits on the pelvis), mid-points for spine4 and the feet, and
the rest-pose top vertex for the head top (:data:`MPII3D_FROM_SMPL`). Everything is written from
these definitions and the data set's documented conventions (mm, row layouts, MATLAB axis order,
the test set's lens constants), not from :mod:`kinediff.data.mpii3d`, so tests check the loader
against an independent computation. Each writer returns what it used.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.io import savemat
from scipy.spatial.transform import Rotation

from kinediff.testing.scene import camera, render_rgb, world_people

__all__ = ["MPII3D_FROM_SMPL", "mpii3d_fixture_joints", "write_mat_v73", "write_mpii3d_hybrik",
           "write_mpii3d_neuralannot", "write_mpii3d_spin", "write_mpii3d_test", "write_mpii3d_train"]

#: How the fixture makes each of MPI-INF-3DHP's 28 joints (``mpii_get_joint_set('all')`` order)
#: from the body: an SMPL joint index, a pair of SMPL joints (mid-point) or "top" (the rest-pose
#: top vertex).
MPII3D_FROM_SMPL: tuple = (
    9, (9, 12), 6, 3, 0, 12, 15, "top",        # spine3, spine4, spine2, spine, pelvis, neck, head, head_top
    13, 16, 18, 20, 22,                        # left clavicle, shoulder, elbow, wrist, hand
    14, 17, 19, 21, 23,                        # right ...
    1, 4, 7, (7, 10), 10,                      # left hip, knee, ankle, foot, toe
    2, 5, 8, (8, 11), 11)                      # right ...

#: The test set's 17 joints as indices into the 28 (``mpii_get_joint_set('relevant')``, 0-based).
RELEVANT = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)

#: The test sequences' lens in mm on a 10 mm sensor (``mpii_perspective_correction_code``).
TEST_LENS_MM = {1: 7.320339203, 2: 7.320339203, 3: 7.320339203, 4: 7.320339203,
                5: 8.770747185, 6: 8.770747185}


def mpii3d_fixture_joints(body, joints: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """The 28 MPI joints (N, 28, 3) of posed SMPL joints (N, 24, 3) and vertices (N, V, 3)."""
    top = int(body.v_template[:, 1].argmax())
    out = []
    for how in MPII3D_FROM_SMPL:
        if how == "top":
            out.append(vertices[:, top])
        elif isinstance(how, tuple):
            out.append((joints[:, how[0]] + joints[:, how[1]]) / 2)
        else:
            out.append(joints[:, how])
    return torch.stack(out, 1)


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    uvw = points @ K.T
    return uvw[..., :2] / uvw[..., 2:3]


def _save_jpeg(rgb: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)


def _write_avi(frames: list[np.ndarray], path: Path) -> None:
    """Frames (H, W, 3) uint8 as a high-quality MJPEG .avi at 25 fps (PyAV)."""
    import av  # optional (kinediff[video]): writing the .avi needs it

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as video:
        stream = video.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuvj420p"
        stream.options = {"qmin": "1", "qmax": "2"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                video.mux(packet)
        for packet in stream.encode():
            video.mux(packet)


def _calibration_text(cameras: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], size: int) -> str:
    """A Skeletool camera calibration file: K (3, 3), R (3, 3), t (3,) metres per camera id."""
    lines = ["Skeletool Camera Calibration File V1.0"]
    for cam, (K, R, t) in sorted(cameras.items()):
        intrinsic, extrinsic = np.eye(4), np.eye(4)
        intrinsic[:3, :3] = K
        extrinsic[:3, :3], extrinsic[:3, 3] = R, t * 1000.0
        lines += [f"name          {cam}", "  sensor      10 10", f"  size        {size} {size}",
                  "  animated    0",
                  "  intrinsic   " + " ".join(f"{v:.10g}" for v in intrinsic.ravel()) + " ",
                  "  extrinsic   " + " ".join(f"{v:.10g}" for v in extrinsic.ravel()) + " ",
                  "  radial      0"]
    return "\n".join(lines) + "\n"


def write_mpii3d_train(root: Path, body, subject: int = 1, sequence: int = 1, frames: int = 3,
                       cameras: tuple[int, ...] = (0, 2), calibrated: int = 3,
                       extracted: tuple[int, ...] = (0,), size: int = 128, seed: int = 0) -> dict:
    """One training sequence ``root/S<subject>/Seq<sequence>`` in the released layout: ``annot.mat``
    (scipy.io.savemat, v5: per camera cells annot2 (F, 56), annot3 / univ_annot3 (F, 84) mm,
    ``cameras`` and ``frames``), ``camera.calibration`` for cameras 0 ... ``calibrated`` - 1, an
    MJPEG ``imageSequence/video_<c>.avi`` per camera of ``cameras``, and SPIN-extracted
    ``imageFrames/video_<c>/frame_<n:06d>.jpg`` for the ``extracted`` cameras.

    Returns ``K`` (3, 3), ``R`` / ``t`` per camera id, and per annotated camera (in ``cameras``
    order) ``joints28`` (F, 28, 3) camera-frame metres, ``uv28`` (F, 28, 2) pixels and
    ``vertices`` (F, V, 3) camera-frame metres; the world ``pose`` (F, 72), ``betas``, ``trans``.
    """
    pose, betas, trans, verts, joints = world_people(body, frames, seed)
    mpi = mpii3d_fixture_joints(body, joints, verts).numpy()
    cams, K = camera(calibrated, seed + 1, size, size)
    seq_dir = root / f"S{subject}" / f"Seq{sequence}"
    seq_dir.mkdir(parents=True, exist_ok=True)
    calib = {c: (K, cams[c, :3, :3], cams[c, :3, 3]) for c in range(calibrated)}
    (seq_dir / "camera.calibration").write_text(_calibration_text(calib, size))
    info: dict = {"K": K, "R": {}, "t": {}, "joints28": {}, "uv28": {}, "vertices": {},
                  "pose": pose.reshape(frames, 72).numpy(), "betas": betas.numpy(),
                  "trans": trans.numpy()}
    annot2 = np.empty((len(cameras), 1), dtype=object)
    annot3, univ = np.empty_like(annot2), np.empty_like(annot2)
    for k, c in enumerate(cameras):
        R, t = cams[c, :3, :3], cams[c, :3, 3]
        cam_joints = mpi @ R.T + t
        cam_verts = verts.numpy() @ R.T + t
        uv = _project(cam_joints, K)
        pelvis = cam_joints[:, 4:5]
        annot2[k, 0] = uv.reshape(frames, 56)
        annot3[k, 0] = (cam_joints * 1000.0).reshape(frames, 84)
        univ[k, 0] = ((pelvis + 0.9 * (cam_joints - pelvis)) * 1000.0).reshape(frames, 84)
        rgbs = [render_rgb(body, torch.as_tensor(v), K, size, size) for v in cam_verts]
        _write_avi(rgbs, seq_dir / "imageSequence" / f"video_{c}.avi")
        if c in extracted:
            for i, rgb in enumerate(rgbs):
                _save_jpeg(rgb, seq_dir / "imageFrames" / f"video_{c}" / f"frame_{i + 1:06d}.jpg")
        info["R"][c], info["t"][c] = R, t
        info["joints28"][c], info["uv28"][c], info["vertices"][c] = cam_joints, uv, cam_verts
    savemat(seq_dir / "annot.mat", {"annot2": annot2, "annot3": annot3, "univ_annot3": univ,
                                    "cameras": np.array([list(cameras)], dtype=np.float64),
                                    "frames": np.arange(frames, dtype=np.float64)[:, None]})
    return info


def write_mat_v73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 MAT-file (HDF5 with MATLAB's 512-byte header) of numeric arrays given in
    MATLAB's axis order (stored reversed, as MATLAB does). Needs h5py."""
    import h5py  # optional (kinediff[mpii3d]): writing a v7.3 file needs it

    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            value = np.asarray(value, dtype=np.float64)
            data = f.create_dataset(name, data=value.T)
            data.attrs["MATLAB_class"] = np.bytes_("double")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))


def write_mpii3d_test(root: Path, body, sequences: tuple[int, ...] = (1, 5), frames: int = 4,
                      valid: tuple[int, ...] = (1, 0, 1, 1), v73: bool = True,
                      sizes: dict[int, tuple[int, int]] | None = None, seed: int = 3) -> dict:
    """Test sequences ``root/TS<k>``: ``annot_data.mat`` (v7.3 through h5py when ``v73``, else v5
    through scipy; annot2 (2, 17, 1, N), annot3 / univ_annot3 (3, 17, 1, N) mm, valid_frame (1, N),
    activity_annotation) and ``imageSequence/img_<n:06d>.jpg`` of every frame. The camera is the
    test set's published one for the image size (f = width / 10 * lens mm, centre principal
    point). Returns per sequence ``K``, ``joints17`` (N, 17, 3) camera-frame metres, ``uv17``,
    ``univ17`` (metres), ``valid`` and the MATLAB ``variables`` written."""
    sizes = sizes or {1: (128, 128), 5: (160, 96)}
    out = {}
    for n, k in enumerate(sequences):
        w, h = sizes.get(k, (128, 128))
        f = w / 10.0 * TEST_LENS_MM[k]
        K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
        _, _, _, verts, joints = world_people(body, frames, seed + n)
        cams, _ = camera(1, seed + 10 + n, w, h)
        R, t = cams[0, :3, :3], cams[0, :3, 3]
        j17 = mpii3d_fixture_joints(body, joints, verts).numpy()[:, list(RELEVANT)] @ R.T + t
        uv = _project(j17, K)
        pelvis = j17[:, 14:15]
        univ = pelvis + 0.9 * (j17 - pelvis)
        ts = root / f"TS{k}"
        for i, v in enumerate(verts.numpy() @ R.T + t):
            _save_jpeg(render_rgb(body, torch.as_tensor(v), K, w, h),
                       ts / "imageSequence" / f"img_{i + 1:06d}.jpg")
        variables = {"annot2": uv.transpose(2, 1, 0)[:, :, None, :],
                     "annot3": (j17 * 1000.0).transpose(2, 1, 0)[:, :, None, :],
                     "univ_annot3": (univ * 1000.0).transpose(2, 1, 0)[:, :, None, :],
                     "valid_frame": np.array([valid[:frames]], dtype=np.float64),
                     "activity_annotation": np.arange(1, frames + 1, dtype=np.float64)[None]}
        if v73:
            write_mat_v73(ts / "annot_data.mat", variables)
        else:
            savemat(ts / "annot_data.mat", variables)
        out[k] = {"K": K, "joints17": j17, "uv17": uv, "univ17": univ, "valid": list(valid[:frames]),
                  "variables": variables}
    return out


def write_mpii3d_neuralannot(root: Path, body, frames: tuple[int, ...] = (0, 3, 6),
                             cameras: tuple[int, ...] = (0, 1), subject: int = 1, sequence: int = 1,
                             missing_fit: int | None = 6, size: int = 128, seed: int = 5) -> dict:
    """The NeuralAnnot / Hand4Whole files in ``root`` (the ``MPI_INF_3DHP/data`` folder): the COCO
    ``MPI-INF-3DHP_1k.json``, ``_camera_1k.json`` (R, t mm, focal, princpt), ``_joint_3d.json``
    (17 world joints, mm), ``_SMPL_NeuralAnnot.json`` (world pose, shape, trans; frame
    ``missing_fit`` left out) and ``images_1k/...``. Returns per (camera, frame) the camera-frame
    ``vertices`` and ``joints17`` (metres), ``K`` and ``bbox``, and ``fitted`` frames."""
    pose, betas, trans, verts, joints = world_people(body, len(frames), seed)
    j17 = mpii3d_fixture_joints(body, joints, verts).numpy()[:, list(RELEVANT)]
    cams, K = camera(len(cameras), seed + 1, size, size)
    images, annotations, expect = [], [], {}
    camera_json = {str(subject): {str(sequence): {str(c): {"R": cams[k, :3, :3].tolist(), "t": (cams[k, :3, 3] * 1000).tolist(),
                            "focal": [K[0, 0], K[1, 1]], "princpt": [K[0, 2], K[1, 2]]}
                   for k, c in enumerate(cameras)}}}
    for k, c in enumerate(cameras):
        R, t = cams[k, :3, :3], cams[k, :3, 3]
        for i, frame in enumerate(frames):
            cv = verts[i].numpy() @ R.T + t
            uv = _project(cv, K)
            lo, hi = uv.min(0), uv.max(0)
            bbox = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
            name = f"img_S{subject}_Seq{sequence}_V{c}_{frame:06d}.jpg"
            _save_jpeg(render_rgb(body, torch.as_tensor(cv), K, size, size),
                       root / "images_1k" / f"S{subject}" / f"Seq{sequence}" / "imageSequence" / name)
            image_id = len(images)
            images.append({"id": image_id, "file_name": name, "width": size, "height": size,
                           "subject_idx": subject, "seq_idx": sequence, "frame_idx": frame, "cam_idx": c})
            annotations.append({"id": image_id, "image_id": image_id, "bbox": bbox})
            expect[(c, frame)] = {"vertices": cv, "joints17": j17[i] @ R.T + t, "bbox": bbox}
    joint_json = {str(subject): {str(sequence): {str(f): (j17[i] * 1000).tolist() for i, f in enumerate(frames)}}}
    smpl_json = {str(subject): {str(sequence): {
        str(f): {"pose": pose[i].reshape(72).tolist(), "shape": betas[i].tolist(), "trans": trans[i].tolist()}
        for i, f in enumerate(frames) if f != missing_fit}}}
    root.mkdir(parents=True, exist_ok=True)
    for name, value in (("1k", {"images": images, "annotations": annotations}), ("camera_1k", camera_json),
                        ("joint_3d", joint_json), ("SMPL_NeuralAnnot", smpl_json)):
        (root / f"MPI-INF-3DHP_{name}.json").write_text(json.dumps(value))
    return {"K": K, "expect": expect, "fitted": [f for f in frames if f != missing_fit]}


def write_mpii3d_hybrik(root: Path, body, split: str = "train", frames: int = 2, size: int = 128,
                        seed: int = 7) -> dict:
    """HybrIK's ``annotation_mpi_inf_3dhp_<split>.json`` (images and annotations in the same order;
    ``keypoints_cam`` 28 (train) or 17 (test) x 3 camera-frame mm; ``cam_param.intrinsic_param``
    3 x 4; ``bbox``) and its images under ``mpi_inf_3dhp_<split>_set/``. Returns ``K`` and the
    camera-frame ``joints`` (N, J, 3) metres."""
    _, _, _, verts, joints = world_people(body, frames, seed)
    mpi = mpii3d_fixture_joints(body, joints, verts).numpy()
    if split == "test":
        mpi = mpi[:, list(RELEVANT)]
    cams, K = camera(1, seed + 1, size, size)
    R, t = cams[0, :3, :3], cams[0, :3, 3]
    cam_joints, cam_verts = mpi @ R.T + t, verts.numpy() @ R.T + t
    images, annotations = [], []
    for i in range(frames):
        name = (f"S1/Seq1/images/S1_Seq1_V0/img_S1_Seq1_V0_{i + 1:06d}.jpg" if split == "train"
                else f"TS1/imageSequence/img_{i + 1:06d}.jpg")
        _save_jpeg(render_rgb(body, torch.as_tensor(cam_verts[i]), K, size, size),
                   root / f"mpi_inf_3dhp_{split}_set" / name)
        uv = _project(cam_joints[i], K)
        lo, hi = uv.min(0), uv.max(0)
        images.append({"id": i, "file_name": name, "width": size, "height": size})
        annotations.append({"id": i, "image_id": i, "bbox": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]),
                                                             float(hi[1] - lo[1])],
                            "cam_param": {"intrinsic_param": np.concatenate([K, np.zeros((3, 1))], 1).tolist()},
                            "keypoints_cam": (cam_joints[i] * 1000).tolist(),
                            **({"activity_id": 1} if split == "test" else {})})
    (root / f"annotation_mpi_inf_3dhp_{split}.json").write_text(
        json.dumps({"images": images, "annotations": annotations}))
    return {"K": K, "joints": cam_joints, "vertices": cam_verts}


#: SPIN's ``joints_idx`` (slot of each of its 17 in its 24-joint arrays) and the training joints
#: it fills them from (``joints17_idx``), from SPIN's ``datasets/preprocess/mpi_inf_3dhp.py``.
SPIN_JOINTS_IDX = (14, 3, 4, 5, 2, 1, 0, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6)
SPIN_TRAIN_JOINTS17 = (4, 18, 19, 20, 23, 24, 25, 3, 5, 6, 7, 9, 10, 11, 14, 15, 16)


def write_mpii3d_spin(path: Path, info: dict, camera_id: int = 0, subject: int = 1, sequence: int = 1,
                      has_smpl: tuple[int, ...] | None = None, scale_factor: float = 1.2) -> dict:
    """SPIN's ``mpi_inf_3dhp_train.npz`` made from :func:`write_mpii3d_train`'s output the way
    SPIN's preprocessing makes it (camera ``camera_id``'s rows; imgname in SPIN's extracted layout;
    box from the 17 joints' extent times ``scale_factor``; ``S`` root-relative metres), with
    ``pose`` (camera-frame root) / ``shape`` / ``has_smpl`` from the fixture's SMPL where
    ``has_smpl`` says 1. Returns the camera-frame SMPL ``pose`` (N, 72)."""
    j28, uv28 = info["joints28"][camera_id], info["uv28"][camera_id]
    n = len(j28)
    has_smpl = tuple(has_smpl) if has_smpl is not None else (1,) * n
    names, centers, scales, parts, Ss, poses = [], [], [], [], [], []
    R = info["R"][camera_id]
    for i in range(n):
        joints = uv28[i][list(SPIN_TRAIN_JOINTS17)]
        S17 = j28[i][list(SPIN_TRAIN_JOINTS17)] - j28[i][4]
        lo, hi = joints.min(0), joints.max(0)
        names.append(f"S{subject}/Seq{sequence}/imageFrames/video_{camera_id}/frame_{i + 1:06d}.jpg")
        centers.append((lo + hi) / 2)
        scales.append(scale_factor * float(max(hi - lo)) / 200)
        part, S = np.zeros((24, 3)), np.zeros((24, 4))
        part[list(SPIN_JOINTS_IDX)] = np.hstack([joints, np.ones((17, 1))])
        S[list(SPIN_JOINTS_IDX)] = np.hstack([S17, np.ones((17, 1))])
        parts.append(part)
        Ss.append(S)
        pose = info["pose"][i].copy()
        pose[:3] = (Rotation.from_matrix(R) * Rotation.from_rotvec(pose[:3])).as_rotvec()
        poses.append(pose)
    np.savez(path, imgname=np.array(names), center=np.array(centers), scale=np.array(scales),
             part=np.array(parts), S=np.array(Ss), openpose=np.zeros((n, 25, 3)),
             pose=np.array(poses), shape=np.array(info["betas"][:n]),
             has_smpl=np.array(has_smpl, dtype=np.float64))
    return {"pose": np.array(poses)}
