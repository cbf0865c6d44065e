"""MPI-INF-3DHP: the released training and test sets, and the preprocessed files other methods
read (NeuralAnnot / Hand4Whole JSON, HybrIK / VirtualMarker JSON, SPIN npz), one module per format.

MPI-INF-3DHP has measured 3D joints (markerless multi-view capture) but no SMPL; its samples have
``joints3d`` (camera frame, metres) and ``keypoints2d`` in
:data:`~kinediff.core.conventions.H36M_JOINTS` order, and SMPL only from a fit (NeuralAnnot,
SPIN's static fits), marked ``extra["pseudo_gt"] = True``.

Joints: the 28-joint training set and the 17-joint test set are named as the data set's
``mpii_get_joint_set`` names them and mapped to H36M by name (:data:`MPII3D_JOINTS`,
:data:`MPII3D_TEST_JOINTS`): MPI's ``spine`` is H36M's spine (``torso``), its ``neck`` H36M's
thorax (``neck``), its ``head`` H36M's neck/nose joint (``nose``) and ``head_top`` the head
(``head``), as SPIN, HybrIK and the data set's own H36M map pair them. ``keypoints2d`` are the
released 2D joints, visible where inside the image; the box is the 2D joints' extent (frames with
fewer than 2 joints inside the image are left out).

Formats (``MPIINF3DHP(root, split, format=...)``), each documented in its module:

- ``"raw"``: the released training set (:mod:`~kinediff.data.mpii3d.raw_train`: ``annot.mat``,
  ``camera.calibration``, videos or extracted frames) and test set
  (:mod:`~kinediff.data.mpii3d.raw_test`: ``annot_data.mat``, images);
- ``"neuralannot"``: the NeuralAnnot / Hand4Whole JSON files of the training set
  (:mod:`~kinediff.data.mpii3d.neuralannot`);
- ``"hybrik"``: HybrIK's ``annotation_mpi_inf_3dhp_<split>.json`` (:mod:`~kinediff.data.mpii3d.hybrik`);
- ``"spin"``: SPIN's ``mpi_inf_3dhp_<split>.npz`` (:mod:`~kinediff.data.mpii3d.spin`);
- ``"coco"``: ``MPI-INF-3DHP_<split>.json`` as :func:`~kinediff.data.convert_mpii3d` writes it
  (:mod:`~kinediff.data.mpii3d.coco`).

:mod:`~kinediff.data.mpii3d.common` holds the joint sets and the labels every format makes;
:mod:`~kinediff.data.mpii3d.dataset` the data set class and the converter.
"""

from kinediff.data.mpii3d.coco import mpii3d_coco_records
from kinediff.data.mpii3d.common import MPII3D_JOINTS, MPII3D_TEST_JOINTS
from kinediff.data.mpii3d.hybrik import mpii3d_hybrik_records
from kinediff.data.mpii3d.neuralannot import mpii3d_neuralannot_records
from kinediff.data.mpii3d.raw_test import mpii3d_test_intrinsics, mpii3d_test_records
from kinediff.data.mpii3d.raw_train import (
    MPII3D_CAMERA_SETS,
    MPII3D_FRAME_COUNTS,
    mpii3d_train_records,
    read_calibration,
)
from kinediff.data.mpii3d.spin import SPIN_MPII3D_SLOTS, mpii3d_spin_records

# the data set class and the converter are taken from kinediff.data (MPIINF3DHP, convert_mpii3d)
__all__ = ["MPII3D_CAMERA_SETS", "MPII3D_FRAME_COUNTS", "MPII3D_JOINTS", "MPII3D_TEST_JOINTS",
           "SPIN_MPII3D_SLOTS", "mpii3d_coco_records",
           "mpii3d_hybrik_records", "mpii3d_neuralannot_records", "mpii3d_spin_records",
           "mpii3d_test_intrinsics", "mpii3d_test_records", "mpii3d_train_records", "read_calibration"]
