"""Per-joint anatomical limits in SMPL's local joint frames, and pose sampling within them.

Each SMPL joint (but the root) gets a range, in degrees, for three Euler angles about its local x,
y and z axes, composed as R = Rx(a) Ry(b) Rz(c). The magnitudes are the normal adult ranges of
motion of the American Academy of Orthopaedic Surgeons' tables (Greene & Heckman, "The Clinical
Measurement of Joint Motion", AAOS 1994; the same tables that Akhter & Black, "Pose-conditioned
joint angle limits for 3D human pose reconstruction", CVPR 2015, start from), rounded and
somewhat narrowed so that independent sampling of every joint stays plausible; hinge joints (knees,
elbows) get one direction only. The signs follow SMPL's frames (x to the body's left, y up, z to
the front, T-pose arms along ±x) and are checked geometrically by the tests (a flexed knee moves
the ankle backward, a flexed elbow moves the wrist forward):

- knee flexion is +x (rotating the shin (0, -1, 0) by +a about x moves it to -z, behind);
- left elbow flexion is -y, right elbow +y (both bring the forearm to +z, in front);
- left shoulder abduction-down is -z, right +z (arms down along -y).
"""

from __future__ import annotations

import math

import torch

from kinediff.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from kinediff.core.checks import check_number, check_shape

__all__ = ["JOINT_LIMITS_DEG", "euler_to_matrix", "pose_from_uniform", "root_orientation",
           "sample_body_pose"]

#: (x range, y range, z range) in degrees, SMPL joints 1..23 (joint 0, the root, is sampled apart).
JOINT_LIMITS_DEG: dict[int, tuple[tuple[float, float], ...]] = {
    1: ((-90, 25), (-30, 30), (-10, 40)),    # left hip: flexion -x, abduction +z
    2: ((-90, 25), (-30, 30), (-40, 10)),    # right hip: abduction -z
    3: ((-15, 40), (-20, 20), (-20, 20)),    # spine1: forward bend +x
    4: ((0, 130), (-3, 3), (-3, 3)),         # left knee: flexion only (+x)
    5: ((0, 130), (-3, 3), (-3, 3)),         # right knee
    6: ((-10, 20), (-15, 15), (-15, 15)),    # spine2
    7: ((-20, 40), (-10, 10), (-15, 15)),    # left ankle: dorsi -x / plantar +x
    8: ((-20, 40), (-10, 10), (-15, 15)),    # right ankle
    9: ((-10, 20), (-15, 15), (-15, 15)),    # spine3
    10: ((-10, 25), (-5, 5), (-5, 5)),       # left toes
    11: ((-10, 25), (-5, 5), (-5, 5)),       # right toes
    12: ((-25, 35), (-35, 35), (-25, 25)),   # neck
    13: ((-10, 10), (-15, 15), (-10, 20)),   # left collar: raise +z
    14: ((-10, 10), (-15, 15), (-20, 10)),   # right collar: raise -z
    15: ((-25, 25), (-35, 35), (-20, 20)),   # head
    16: ((-50, 50), (-90, 40), (-80, 50)),   # left shoulder: twist x, forward -y, down -z
    17: ((-50, 50), (-40, 90), (-50, 80)),   # right shoulder: forward +y, down +z
    18: ((-10, 10), (-140, 0), (-5, 5)),     # left elbow: flexion -y only
    19: ((-10, 10), (0, 140), (-5, 5)),      # right elbow: flexion +y only
    20: ((-40, 40), (-20, 20), (-60, 60)),   # left wrist
    21: ((-40, 40), (-20, 20), (-60, 60)),   # right wrist
    22: ((-10, 10), (-10, 10), (-15, 15)),   # left hand
    23: ((-10, 10), (-10, 10), (-15, 15)),   # right hand
}


def euler_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """R = Rx(a) Ry(b) Rz(c). Shape: (..., 3) radians -> (..., 3, 3)."""
    eye = torch.eye(3, dtype=angles.dtype, device=angles.device)
    mats = [axis_angle_to_matrix(angles[..., i:i + 1] * eye[i]) for i in range(3)]
    return mats[0] @ mats[1] @ mats[2]


def root_orientation(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Camera-frame root orientation of an upright person (radians).

    The body is turned by ``yaw`` about its vertical axis (0 = facing the camera), tilted by
    ``pitch`` (forward) and ``roll`` (sideways), then turned into the camera frame (x right, y down,
    z forward) by pi about x. Shape: (B,) each -> (B, 3, 3).
    """
    zero = torch.zeros_like(yaw)
    to_camera = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=yaw.dtype,
                             device=yaw.device)
    body = euler_to_matrix(torch.stack([pitch, zero, roll], -1)) @ euler_to_matrix(
        torch.stack([zero, yaw, zero], -1))
    return to_camera @ body


def pose_from_uniform(u: torch.Tensor, spread: float = 1.0) -> torch.Tensor:
    """Map uniform numbers in [0, 1) to joint rotations within the limits (root at identity).

    Each Euler angle is ``u`` placed in its range scaled by ``spread`` in (0, 1] about 0 (every
    range contains 0, so the scaled range stays inside the limits).
    Shape: u (B, 23, 3) -> (B, 24, 3) axis-angle, radians, in u's dtype.
    """
    check_number(spread, "spread", 0.0, 1.0, low_open=True)
    check_shape(u, "u", ("B", 23, 3))
    lims = torch.tensor([JOINT_LIMITS_DEG[j] for j in range(1, 24)], dtype=u.dtype, device=u.device)
    lo, hi = lims[..., 0] * spread, lims[..., 1] * spread  # (23, 3)
    aa = matrix_to_axis_angle(euler_to_matrix((lo + (hi - lo) * u) * (math.pi / 180.0)))
    return torch.cat([torch.zeros_like(aa[:, :1]), aa], 1)


def sample_body_pose(batch: int, generator: torch.Generator | None = None, spread: float = 1.0,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random joint rotations within :data:`JOINT_LIMITS_DEG` (the root left at identity), each
    Euler angle uniform in its (``spread``-scaled) range; drawn on the CPU from ``generator``.
    Shape: -> (batch, 24, 3) axis-angle, radians.
    """
    u = torch.rand(batch, 23, 3, generator=generator, dtype=torch.float64)
    return pose_from_uniform(u, spread).to(dtype)
