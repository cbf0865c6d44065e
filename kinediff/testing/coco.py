"""A tiny COCO 2017 person-keypoints set with SMPL pseudo-GT in the released file formats
(``person_keypoints_<split>2017.json``, NeuralAnnot's ``MSCOCO_<split>_SMPL_NeuralAnnot.json``, EFT's
``COCO2014-All-ver01.json``), drawn from a body model, read by :class:`kinediff.data.COCO`.

Every number is written as the released files hold it (COCO keypoints as integer pixel indices,
NeuralAnnot's principal point and EFT's box centre in that pixel frame, EFT's pose as rotation
matrices) and the writer returns what it used, so tests can check the loader against an
independent computation.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from kinediff.core.camera import project_points
from kinediff.data.base import camera_frame_smpl, root_joint
from kinediff.testing.scene import camera, render_image, world_people

__all__ = ["COCO_FIXTURE_SMPL_JOINTS", "write_coco"]

#: The SMPL joint standing in for each of COCO's 17 keypoints in the fixture (a stand-in, not a
#: regressor: nose and eyes / ears at the head joint, offset below in the camera frame).
COCO_FIXTURE_SMPL_JOINTS = (15, 15, 15, 15, 15, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
_HEAD_OFFSETS = np.array([[0, 0.02, -0.08], [0.03, 0, -0.07], [-0.03, 0, -0.07], [0.07, 0.01, 0],
                          [-0.07, 0.01, 0]])  # nose, l_eye, r_eye, l_ear, r_ear (camera frame, m)
_IMAGES = ((139, 160, 120), (285, 120, 120), (632, 96, 128))  # COCO image id, width, height


def _bbox(uv: np.ndarray, w: int, h: int) -> list[float]:
    lo = np.clip(uv.min(0), 0, [w, h])
    hi = np.clip(uv.max(0), 0, [w, h])
    return [round(float(lo[0]), 2), round(float(lo[1]), 2), round(float(hi[0] - lo[0]), 2),
            round(float(hi[1] - lo[1]), 2)]


def _weak_perspective(verts: np.ndarray, uv: np.ndarray, center: np.ndarray, scale: float) -> np.ndarray:
    """Least-squares (s, tx, ty) with 100 * scale * (s X + t) + center ~ uv (EFT's x = s X + t over
    the crop of side 200 * scale), from body-frame vertices (V, 3) and their pixels (V, 2)."""
    norm = (uv - center) / (100.0 * scale)
    rows = np.concatenate([np.stack([verts[:, 0], np.ones(len(verts)), np.zeros(len(verts))], 1),
                           np.stack([verts[:, 1], np.zeros(len(verts)), np.ones(len(verts))], 1)])
    target = np.concatenate([norm[:, 0], norm[:, 1]])
    return np.linalg.lstsq(rows, target, rcond=None)[0]


def write_coco(root: Path, body, split: str = "train", seed: int = 0, images_folder: bool = False
               ) -> dict:
    """Three images (160 x 120, 120 x 120, 96 x 128) in COCO's layout under ``root`` with eight
    person annotations: image 139 holds persons A and B, image 285 person C, a crowd region, a
    person with two labelled keypoints and one with none, image 632 person D and a person whose box
    is empty.

    Written: ``annotations/person_keypoints_<split>2017.json`` (COCO's keys; keypoints the SMPL
    stand-ins :data:`COCO_FIXTURE_SMPL_JOINTS` projected and stored as integer pixel indices, A's
    left ear unlabelled (v = 0, x = y = 0), A's right wrist occluded (v = 1), B's right hip
    unlabelled); NeuralAnnot's ``annotations/MSCOCO_<split>_SMPL_NeuralAnnot.json`` for A, B and C
    (camera-frame parameters, the true camera, principal point in COCO's pixel frame); EFT's
    ``eft_fit/COCO2014-All-ver01.json`` for A and C (rotation-matrix pose, a least-squares weak
    perspective over SPIN's box: centre of the COCO box, scale 1.2 max(w, h) / 200) plus one fit of
    an annotation the file lacks; JPEG renders in ``<split>2017/`` (``images/<split>2017/`` with
    ``images_folder``).

    Returns a dict keyed by annotation id (A, B, C, D: 1001 ... 1004) with ``K`` (the true camera,
    kinediff pixels), ``cam_vertices`` / ``cam_joints`` (camera frame, float64 tensors),
    ``keypoints`` (17, 3) as written, ``bbox``, camera-frame ``pose`` / ``betas`` / ``transl``, and
    for A and C ``eft`` {``rotmats`` (24, 3, 3), ``cam`` (s, tx, ty), ``center``, ``scale``,
    ``weak_uv`` (V, 2): EFT's weak perspective of the vertices in full-image kinediff pixels}; plus
    ``ids`` {name: annotation id}.
    """
    body64 = copy.deepcopy(body).double()
    pose, betas, trans, verts, joints = world_people(body64, 4, seed)
    cams, _ = camera(3, seed + 5)
    people = {}
    images, annotations, neuralannot, eft = [], [], {}, []
    ids = {"A": 1001, "B": 1002, "C": 1003, "D": 1004, "few": 1005, "none": 1006,
           "crowd": 1007, "empty": 1008}
    placement = {"A": (0, -0.45), "B": (0, 0.5), "C": (1, 0.0), "D": (2, 0.0)}  # image, shift (m)
    image_dir = root / ("images" if images_folder else "") / f"{split}2017"
    j0 = root_joint(body64, betas[0]).numpy()
    for index, (image_id, w, h) in enumerate(_IMAGES):
        K = np.array([[150.0, 0, w / 2], [0, 150.0, h / 2], [0, 0, 1]])
        R, t = cams[index, :3, :3], cams[index, :3, 3]
        file_name = f"{image_id:012d}.jpg"
        images.append({"license": 1, "file_name": file_name, "coco_url": "", "height": h, "width": w,
                       "date_captured": "2013-11-14 16:03:19", "flickr_url": "", "id": image_id})
        scene = []
        for p, (name, (img, shift)) in enumerate(placement.items()):
            if img != index:
                continue
            side = np.array([shift, 0.0, 0.0])
            cv = (verts[p].numpy() + side) @ R.T + t
            cj = (joints[p].numpy() + side) @ R.T + t
            pose_c, transl_c = camera_frame_smpl(pose[p].reshape(72).numpy(), trans[p].numpy() + side,
                                                 R, t, j0)
            uv_joints = project_points(torch.as_tensor(cj)[None], torch.as_tensor(K))[0].numpy()
            head = cj[15] + _HEAD_OFFSETS
            uv_head = project_points(torch.as_tensor(head)[None], torch.as_tensor(K))[0].numpy()
            uv = uv_joints[list(COCO_FIXTURE_SMPL_JOINTS)]
            uv[:5] = uv_head
            keypoints = np.concatenate([np.floor(uv), np.full((17, 1), 2.0)], 1)  # COCO: pixel indices
            keypoints[((uv < 0) | (uv >= [w, h])).any(1)] = 0  # COCO labels no point outside the image
            if name == "A":
                keypoints[3] = 0  # left ear unlabelled
                keypoints[10, 2] = 1  # right wrist occluded
            if name == "B":
                keypoints[12] = 0  # right hip unlabelled: no pelvis
            uv_mesh = project_points(torch.as_tensor(cv)[None], torch.as_tensor(K))[0].numpy()
            bbox = _bbox(uv_mesh, w, h)
            people[ids[name]] = {"K": K, "cam_vertices": torch.as_tensor(cv),
                                 "cam_joints": torch.as_tensor(cj), "keypoints": keypoints, "bbox": bbox,
                                 "pose": pose_c, "betas": betas[p].numpy(), "transl": transl_c,
                                 "image_id": image_id}
            annotations.append({"segmentation": [[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1],
                                                  bbox[0] + bbox[2], bbox[1] + bbox[3]]],
                                "num_keypoints": int((keypoints[:, 2] > 0).sum()),
                                "area": round(bbox[2] * bbox[3] * 0.6, 2), "iscrowd": 0,
                                "keypoints": keypoints.astype(int).reshape(-1).tolist(),
                                "image_id": image_id, "bbox": bbox, "category_id": 1, "id": ids[name]})
            if name != "D":
                neuralannot[str(ids[name])] = {
                    "smpl_param": {"pose": pose_c.tolist(), "shape": betas[p].tolist(),
                                   "trans": transl_c.tolist()},
                    "cam_param": {"focal": [K[0, 0], K[1, 1]], "princpt": [K[0, 2] - 0.5, K[1, 2] - 0.5]}}
            if name in ("A", "C"):  # EFT: SPIN's box around the COCO box, a weak camera fitted to it
                center = np.array([bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2])
                scale = 1.2 * max(bbox[2], bbox[3]) / 200
                body_verts = cv - transl_c  # SMPL(pose_c, betas): the mesh without translation
                cam = _weak_perspective(body_verts, uv_mesh - 0.5, center, scale)
                rotmats = Rotation.from_rotvec(pose_c.reshape(24, 3)).as_matrix()
                weak = center + 100 * scale * (cam[0] * body_verts[:, :2] + cam[1:]) + 0.5
                people[ids[name]]["eft"] = {"rotmats": rotmats, "cam": cam, "center": center,
                                            "scale": scale, "weak_uv": torch.as_tensor(weak)}
                eft.append({"parm_pose": rotmats.tolist(), "parm_shape": betas[p].tolist(),
                            "parm_cam": cam.tolist(), "bbox_scale": scale, "bbox_center": center.tolist(),
                            "joint_validity_openpose18": [1] * 18, "smpltype": "smpl",
                            "annotId": ids[name], "imageName": f"COCO_{split}2014_{file_name}",
                            "subjectId": f"{image_id}_{ids[name]}"})
            scene.append(torch.as_tensor(cv))
        render_image(body, torch.stack(scene), K, w, h, image_dir / file_name)
    # the annotations a filter skips: two keypoints, none (not a crowd), a crowd, an empty box
    few = np.zeros((17, 3))
    few[[5, 6]] = [[50, 40, 2], [60, 41, 2]]
    annotations.append({"segmentation": [[40, 30, 70, 30, 70, 60]], "num_keypoints": 2, "area": 300.0,
                        "iscrowd": 0, "keypoints": few.astype(int).reshape(-1).tolist(), "image_id": 285,
                        "bbox": [40.0, 30.0, 30.0, 30.0], "category_id": 1, "id": ids["few"]})
    annotations.append({"segmentation": [[5, 60, 25, 60, 25, 90]], "num_keypoints": 0, "area": 250.0,
                        "iscrowd": 0, "keypoints": [0] * 51, "image_id": 285,
                        "bbox": [5.0, 60.0, 20.0, 30.0], "category_id": 1, "id": ids["none"]})
    annotations.append({"segmentation": {"counts": [0, 100, 14300], "size": [120, 120]},
                        "num_keypoints": 0, "area": 100.0, "iscrowd": 1, "keypoints": [0] * 51,
                        "image_id": 285, "bbox": [0.0, 0.0, 10.0, 10.0], "category_id": 1,
                        "id": ids["crowd"]})
    full = np.tile([[30, 40, 2]], (17, 1))
    annotations.append({"segmentation": [[30, 40, 30, 80, 30, 60]], "num_keypoints": 17, "area": 0.0,
                        "iscrowd": 0, "keypoints": full.astype(int).reshape(-1).tolist(), "image_id": 632,
                        "bbox": [30.0, 40.0, 0.0, 40.0], "category_id": 1, "id": ids["empty"]})
    eft.append({**eft[0], "annotId": 99999, "imageName": "COCO_train2014_000000099999.jpg"})
    categories = [{"supercategory": "person", "id": 1, "name": "person",
                   "keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                                 "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                                 "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                                 "right_ankle"],
                   "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7],
                                [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5],
                                [4, 6], [5, 7]]}]
    ann_dir = root / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    (ann_dir / f"person_keypoints_{split}2017.json").write_text(json.dumps(
        {"info": {"description": "kinediff COCO fixture", "year": 2017}, "licenses": [],
         "images": images, "annotations": annotations, "categories": categories}))
    (ann_dir / f"MSCOCO_{split}_SMPL_NeuralAnnot.json").write_text(json.dumps(neuralannot))
    (root / "eft_fit").mkdir(exist_ok=True)
    (root / "eft_fit" / "COCO2014-All-ver01.json").write_text(json.dumps({"ver": 0.1, "data": eft}))
    return {**people, "ids": ids}
