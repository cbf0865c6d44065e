"""SMPL-family body models: chumpy-free loading, a built-in synthetic body, batched kinematics.

Public names: :class:`BodyModel` (from SMPL files, an ``smplx.SMPL`` model, a dict, or the synthetic
body), :class:`BodyOutput`, :func:`load_smpl_pickle`, :func:`save_smpl`, :func:`find_smpl_file`,
:func:`clean_smpl_pickle`, ground truth by gender (:class:`BodySet`, :func:`load_smpl_bodies`,
:func:`synthetic_gendered_bodies`), the synthetic body's pieces (:func:`build_synthetic_smpl`,
:func:`synthetic_model_path`, :func:`synthetic_skeleton`, ``SHAPE_NAMES``, ``SHAPE_STD``), and the
functional core: rotation conversions in :mod:`kinediff.body.rotations`, blend shapes in
:mod:`kinediff.body.blendshapes`, forward kinematics in :mod:`kinediff.body.kinematics`, linear
blend skinning in :mod:`kinediff.body.skinning` (its backends :mod:`kinediff.body.lbs_blocks` and
:mod:`kinediff.body.lbs_numba`, their tuned sizes in :mod:`kinediff.body.tuning`). SMPL's joint
names and tree are in :mod:`kinediff.core.conventions`.
"""

from kinediff.body.blendshapes import pose_features, pose_offsets, shape_offsets
from kinediff.body.genders import BodyLike, BodySet, load_smpl_bodies, synthetic_gendered_bodies
from kinediff.body.kinematics import FKResult, forward_kinematics
from kinediff.body.model import BodyModel, BodyOutput
from kinediff.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from kinediff.body.skinning import linear_blend_skinning
from kinediff.body.smpl_io import (
    SMPL_FILE_NAMES,
    clean_smpl_pickle,
    find_smpl_file,
    load_smpl_pickle,
    save_smpl,
    write_smpl_pickle,
)
from kinediff.body.synthetic import (
    SHAPE_NAMES,
    SHAPE_STD,
    build_synthetic_smpl,
    synthetic_model_path,
    synthetic_skeleton,
)

__all__ = [
    "SHAPE_NAMES",
    "SHAPE_STD",
    "SMPL_FILE_NAMES",
    "BodyLike",
    "BodyModel",
    "BodyOutput",
    "BodySet",
    "FKResult",
    "axis_angle_to_matrix",
    "build_synthetic_smpl",
    "clean_smpl_pickle",
    "find_smpl_file",
    "forward_kinematics",
    "linear_blend_skinning",
    "load_smpl_bodies",
    "load_smpl_pickle",
    "matrix_to_axis_angle",
    "matrix_to_rotation_6d",
    "pose_features",
    "pose_offsets",
    "rotation_6d_to_matrix",
    "save_smpl",
    "shape_offsets",
    "synthetic_gendered_bodies",
    "synthetic_model_path",
    "synthetic_skeleton",
    "write_smpl_pickle",
]
