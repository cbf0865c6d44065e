"""Test fixtures in the data sets' official file formats: small data sets drawn from a body model
(the synthetic body, or your SMPL model) and written exactly as the released files are laid out, so
that a loader, a converter or your own pipeline can be tested end to end without the real data.

One module per data set; each writer takes a folder and a body model, writes the files and returns
what it drew (camera-frame vertices and joints, 2D joints, intrinsics, the parameters), so a test
can check what a loader reads against an independent computation:

- :mod:`kinediff.testing.pw3d`: :func:`write_3dpw_raw` (3DPW's sequence pickles and images);
- :mod:`kinediff.testing.h36m`: :func:`write_h36m` (Human3.6M, Pose2Mesh's per-subject JSON);
- :mod:`kinediff.testing.surreal`: :func:`write_surreal_raw` (SURREAL's ``_info.mat``,
  ``_segm.mat`` and ``.mp4`` clips; needs PyAV, ``pip install 'kinediff[video]'``);
- :mod:`kinediff.testing.coco`: :func:`write_coco` (COCO keypoints with NeuralAnnot and EFT fits);
- :mod:`kinediff.testing.mpii3d`: :func:`write_mpii3d_train`, :func:`write_mpii3d_test`,
  :func:`write_mpii3d_neuralannot`, :func:`write_mpii3d_hybrik`, :func:`write_mpii3d_spin`
  (MPI-INF-3DHP's released sets and the preprocessed files other methods read);
- :mod:`kinediff.testing.up3d`: :func:`write_up3d`, :func:`write_up3d_spin_npz` (UP-3D);
- :mod:`kinediff.testing.markers`: :func:`write_virtual_markers` (VirtualMarker's marker
  files, ``vm_B_sym.npz`` and ``smpl_indices.pkl``);
- :mod:`kinediff.testing.scene`: the people, cameras and renders they all draw.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from kinediff.body import BodyModel
    >>> from kinediff.data import PW3D
    >>> from kinediff.testing import write_3dpw_raw
    >>> root = Path(tempfile.mkdtemp())
    >>> body = BodyModel.synthetic()
    >>> drawn = write_3dpw_raw(root, body, frames=2)
    >>> data = PW3D(root, "test", body=body, image_size=64, mesh_factors=(4, 4, 4))
    >>> len(data), tuple(drawn["cam_vertices"].shape)
    (2, (2, 6890, 3))

Writing these files needs only kinediff's own dependencies, except the videos (PyAV) and MATLAB
v7.3 files (h5py). :mod:`kinediff.apps.reproduce` uses them for its ``--synthetic`` dry runs.
"""

from kinediff.testing.coco import write_coco
from kinediff.testing.h36m import write_h36m
from kinediff.testing.markers import write_virtual_markers
from kinediff.testing.mpii3d import (
    write_mpii3d_hybrik,
    write_mpii3d_neuralannot,
    write_mpii3d_spin,
    write_mpii3d_test,
    write_mpii3d_train,
)
from kinediff.testing.pw3d import write_3dpw_raw
from kinediff.testing.surreal import write_surreal_raw
from kinediff.testing.up3d import write_up3d, write_up3d_spin_npz

__all__ = ["write_3dpw_raw", "write_coco", "write_h36m", "write_mpii3d_hybrik", "write_mpii3d_neuralannot",
           "write_mpii3d_spin", "write_mpii3d_test", "write_mpii3d_train", "write_surreal_raw", "write_up3d",
           "write_up3d_spin_npz", "write_virtual_markers"]
