"""Benchmark evaluation protocols: which joint regressor, which 14 joints, which pelvis, which GT
gender, which frames. Getting these right is half of reproducing a table; mixing one regressor
with another's joint map is refused.

Each protocol follows one source repository's evaluation code (docs/metrics.md has the table, with
file and function names, and where other sources differ):

- ``GRAPHORMER_3DPW``: ``J_regressor_h36m_correct.npy``, joints [3,2,1,4,5,6,16,15,14,11,12,13,8,10],
  pelvis = regressed H36M joint 0, GT built with the neutral model: VirtualMarker's 3DPW evaluation
  (and MeshGraphormer's prediction side and MPVE; its GT joints and MPJPE centring differ).
- ``SPIN_3DPW``: ``J_regressor_h36m.npy``, SPIN's map [6,5,4,1,2,3,16,15,14,11,12,13,8,10],
  pelvis = regressed H36M joint 0 (taken from the 17 before the map), gendered GT: SPIN's
  ``eval.py``. SPIN reports no MPVE; kinediff's MPVE uses the same pelvis.
- ``H36M_P2``: Protocol 2 — subjects S9 and S11, the frontal camera, every 5th frame (SPIN) or
  64th (I2L: ``frame_step=64``); Graphormer's regressor and map; joints scored against the measured
  (mocap) joints when given: I2L-MeshNet's Human3.6M evaluation.
- ``SURREAL``: Graphormer's regressor and map, pelvis = regressed joint 0, gendered GT:
  VirtualMarker's SURREAL evaluation.

MPVE is over all vertices after subtracting each mesh's regressed H36M joint 0, without Procrustes,
in every protocol. PA-MPJPE is a per-sample similarity Procrustes of the prediction onto the GT.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from kinediff.core.checks import (
    check_choice,
    check_finite,
    check_int,
    check_pair_shape,
    check_shape,
    value_checks,
)
from kinediff.core.conventions import (
    GRAPHORMER_MAP,
    MEASURED_MAP,
    REGRESSOR_MAPS,
    SPIN_MAP,
    synthetic_h36m_regressor,
)
from kinediff.metrics.errors import check_points, metric_dtype, mpjpe, mpve, pa_mpjpe

__all__ = [
    "GRAPHORMER_3DPW",
    "H36M_P2",
    "PROTOCOLS",
    "SPIN_3DPW",
    "SURREAL",
    "Protocol",
    "load_regressor",
]

PELVIS_CHOICES = ("h36m_joint0", "hip_midpoint")
GENDER_CHOICES = ("neutral", "gendered")
_WHERE = {
    "J_regressor_h36m_correct.npy": "MeshGraphormer's and METRO's data folders "
                                    "(src/modeling/data/J_regressor_h36m_correct.npy)",
    "J_regressor_h36m.npy": "SPIN's data folder (data/J_regressor_h36m.npy, from its fetch_data.sh)",
}
# rows of the H36M-order synthetic regressor, reordered into each regressor file's row order
_ROW_ORDER = {"J_regressor_h36m_correct.npy": tuple(range(17)),
              "J_regressor_h36m.npy": (0, 4, 5, 6, 1, 2, 3, *range(7, 17))}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class Protocol:
    """One evaluation convention.

    Attributes:
        name: the protocol's key in ``PROTOCOLS`` (and the ``--protocol`` flag).
        regressor_file: the (17, 6890) H36M joint regressor it needs.
        joint_map: the 14 of the regressor's 17 rows that are scored, in ``J14_NAMES`` order.
        pelvis: what is subtracted from the joints before MPJPE: "h36m_joint0" (the regressed —
            or measured — H36M joint 0, taken from the 17 before the map) or "hip_midpoint" (the
            mean of the two hips of the 14, as MeshGraphormer's ``mean_per_joint_position_error``).
        gt_gender: "neutral" or "gendered": which body model the GT meshes are built with (the data
            and ``kinediff.training.evaluate`` act on it; the metric code here does not).
        frame_step, camera, subjects: the frame selection (None: every frame of the test split).
        source: the repository and file whose evaluation this protocol follows.
        notes: where kinediff goes beyond, or other sources differ from, that evaluation.
    """

    name: str
    regressor_file: str
    joint_map: tuple[int, ...]
    pelvis: str
    gt_gender: str
    frame_step: int | None = None
    camera: str | None = None
    subjects: tuple[str, ...] | None = None
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        check_choice(self.pelvis, "pelvis", PELVIS_CHOICES)
        check_choice(self.gt_gender, "gt_gender", GENDER_CHOICES)
        joint_map = tuple(self.joint_map)
        if len(joint_map) != 14 or any(not 0 <= int(j) < 17 for j in joint_map):
            raise ValueError(f"joint_map must be 14 indices into the 17 H36M joints, got {joint_map}")
        expected = REGRESSOR_MAPS.get(self.regressor_file)
        if expected is not None and joint_map != expected:
            raise ValueError(f"joint_map {list(joint_map)} does not fit {self.regressor_file}, whose "
                             f"14-joint map is {list(expected)}: never mix one regressor with "
                             "another's map")
        if self.frame_step is not None:
            check_int(self.frame_step, "frame_step", what="or None")
        object.__setattr__(self, "joint_map", joint_map)

    def describe(self) -> str:
        """One line: regressor, joints, pelvis, MPVE alignment, GT gender, frames and source."""
        pelvis = ("H36M joint 0 (regressed, or measured)" if self.pelvis == "h36m_joint0"
                  else "mid-hip of the 14")
        parts = [f"{self.name}: regressor {self.regressor_file}, joints {list(self.joint_map)}",
                 f"MPJPE pelvis = {pelvis}",
                 "MPVE over all vertices minus each mesh's regressed H36M joint 0, no PA",
                 "PA-MPJPE per-sample similarity Procrustes",
                 f"GT meshes: {'neutral model' if self.gt_gender == 'neutral' else 'gendered models'}"]
        if self.subjects:
            step = f"every {_ordinal(self.frame_step)} frame" if self.frame_step else "every frame"
            parts.append(f"subjects {', '.join(self.subjects)}, {self.camera} camera, {step}")
        elif self.frame_step:
            parts.append(f"every {_ordinal(self.frame_step)} frame")
        if self.source:
            parts.append(f"follows {self.source}")
        if self.notes:
            parts.append(self.notes)
        return "; ".join(parts)

    def with_frame_step(self, step: int) -> Protocol:
        """The same protocol keeping every ``step``-th frame (e.g. 64 for I2L's Protocol 2)."""
        return replace(self, frame_step=step)

    def _check_regressor(self, vertices: torch.Tensor, regressor: torch.Tensor) -> None:
        check_points((vertices, regressor), ("vertices", "regressor"))
        if regressor.dim() != 2 or regressor.shape[0] != 17 or regressor.shape[1] != vertices.shape[1]:
            raise ValueError(f"{self.name} needs a (17, {vertices.shape[1]}) H36M joint regressor "
                             f"({self.regressor_file}); got {tuple(regressor.shape)}")

    def joints17(self, vertices: torch.Tensor, regressor: torch.Tensor) -> torch.Tensor:
        """The regressed 17 H36M joints (B, 17, 3) of meshes (B, V, 3), in the meshes' units and
        dtype (the regressor is cast to it).

        Raises ``TypeError`` for a non-tensor or non-floating argument, ``ValueError`` for meshes
        that are not (B, V, 3), a regressor that is not (17, V) or one on another device."""
        check_points((vertices,), ("vertices",))
        check_shape(vertices, "vertices", ("B", "V", 3))
        self._check_regressor(vertices, regressor)
        return torch.einsum("jv,bvc->bjc", regressor.to(vertices.dtype), vertices)

    def joints(self, vertices: torch.Tensor, regressor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 14 evaluated joints (B, 14, 3) and the MPJPE pelvis (B, 1, 3) from meshes (B, V, 3)."""
        return self._select(self.joints17(vertices, regressor), self.joint_map)

    def _select(self, j17: torch.Tensor, joint_map: tuple[int, ...]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        j14 = j17[:, list(joint_map)]
        pelvis = j17[:, :1] if self.pelvis == "h36m_joint0" else j14[:, 2:4].mean(1, keepdim=True)
        return j14, pelvis

    def evaluate(self, pred_vertices: torch.Tensor, gt_vertices: torch.Tensor,
                 regressor: torch.Tensor, gt_joints17: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
        """Per-sample MPVE, MPJPE, PA-MPJPE (B,) and per-joint errors (B, 14), in the input's units.

        Args:
            pred_vertices, gt_vertices: (B, V, 3) meshes (kinediff: metres).
            regressor: (17, V) H36M joint regressor (``self.regressor_file``).
            gt_joints17: (B, 17, 3) measured H36M joints (Human3.6M's mocap, in H36M's own order,
                see ``MEASURED_MAP``) to score the joints against instead of joints regressed from
                ``gt_vertices`` (which MPVE still uses).

        MPJPE: the 14 joints minus the pelvis (``self.pelvis``), mean Euclidean distance. PA-MPJPE:
        the same joints after aligning the prediction to the GT by a similarity Procrustes. MPVE:
        every vertex minus each mesh's own regressed H36M joint 0.

        Inputs: floating tensors on one device, computed in their common dtype, at least float32
        (as :mod:`kinediff.metrics.errors`). NaN or infinite meshes, joints or regressor weights
        are refused (``ValueError`` naming the argument) while kinediff's value checks are on
        (:func:`kinediff.value_checks`).
        """
        check_points((pred_vertices, gt_vertices, regressor), ("pred_vertices", "gt_vertices", "regressor"))
        check_pair_shape(pred_vertices, gt_vertices, ("B", "V", 3), ("pred_vertices", "gt_vertices"))
        self._check_regressor(pred_vertices, regressor)
        checked = {"pred_vertices": pred_vertices, "gt_vertices": gt_vertices, "regressor": regressor}
        if gt_joints17 is not None:
            check_points((pred_vertices, gt_joints17), ("pred_vertices", "gt_joints17"))
            check_shape(gt_joints17, "gt_joints17", (pred_vertices.shape[0], 17, 3))
            checked["gt_joints17"] = gt_joints17
        for name, value in checked.items():
            check_finite(value, name)
        tensors = [v for k, v in checked.items() if k != "regressor"]
        dtype = metric_dtype(*tensors)
        pred_vertices, gt_vertices = pred_vertices.to(dtype), gt_vertices.to(dtype)
        with value_checks(False):  # checked above: the metrics need not read the data again
            pred17 = self.joints17(pred_vertices, regressor)
            mesh17 = self.joints17(gt_vertices, regressor)
            pj, pp = self._select(pred17, self.joint_map)
            if gt_joints17 is None:
                gj, gp = self._select(mesh17, self.joint_map)
            else:
                gj, gp = self._select(gt_joints17.to(dtype), MEASURED_MAP)
            pj, gj = pj - pp, gj - gp
            return {"mpve": mpve(pred_vertices, gt_vertices, (pred17[:, :1], mesh17[:, :1])),
                    "mpjpe": mpjpe(pj, gj), "pa_mpjpe": pa_mpjpe(pj, gj),
                    "per_joint": (pj - gj).norm(dim=-1)}


_VIRTUALMARKER = ("ShirleyMaxx/VirtualMarker virtualmarker/dataset/joints_dataset.py "
                  "(compute_per_joint_err_dict, compute_per_mesh_err_dict)")
#: 3DPW test as METRO, MeshGraphormer and VirtualMarker score it (the paper's Table 1).
GRAPHORMER_3DPW = Protocol(
    "graphormer-3dpw", "J_regressor_h36m_correct.npy", GRAPHORMER_MAP, "h36m_joint0", "neutral",
    source=_VIRTUALMARKER,
    notes="MeshGraphormer's run_validate shares the regressor, map, neutral GT and MPVE but scores "
          "MPJPE against its TSV's SMPL-regressed joints re-centred at the mid-hip")
#: 3DPW test as SPIN scores it (gendered GT, its own H36M regressor).
SPIN_3DPW = Protocol("spin-3dpw", "J_regressor_h36m.npy", SPIN_MAP, "h36m_joint0", "gendered",
                     source="nkolot/SPIN eval.py (run_evaluation)",
                     notes="SPIN reports no MPVE: kinediff's is an addition")
#: Human3.6M protocol 2 (S9 and S11, frontal camera, every 5th frame).
H36M_P2 = Protocol("h36m-p2", "J_regressor_h36m_correct.npy", GRAPHORMER_MAP, "h36m_joint0",
                   "neutral", frame_step=5, camera="frontal", subjects=("S9", "S11"),
                   source="mks0601/I2L-MeshNet_RELEASE data/Human36M/Human36M.py (evaluate)",
                   notes="every 5th frame is SPIN's (and MeshGraphormer's) test set, every 64th "
                         "I2L's; joints scored against the measured joints when given; I2L and "
                         "SPIN report no MPVE: kinediff's is VirtualMarker's")
#: SURREAL test as VirtualMarker scores it (gendered GT).
SURREAL = Protocol("surreal", "J_regressor_h36m_correct.npy", GRAPHORMER_MAP, "h36m_joint0",
                   "gendered", source=_VIRTUALMARKER,
                   notes="Pose2Mesh's SURREAL evaluate scores the 24 SMPL joints at SMPL joint 0 "
                         "instead")
#: Every protocol by its name.
PROTOCOLS = {p.name: p for p in (GRAPHORMER_3DPW, SPIN_3DPW, H36M_P2, SURREAL)}


def check_protocol(protocol: object) -> None:
    """Raise ``TypeError`` unless ``protocol`` is a :class:`Protocol` (the message names
    ``PROTOCOLS[name]`` for a protocol's name)."""
    if not isinstance(protocol, Protocol):
        name = protocol if isinstance(protocol, str) else "graphormer-3dpw"
        raise TypeError(f"protocol must be a Protocol, e.g. PROTOCOLS[{name!r}], got "
                        f"{type(protocol).__name__} {protocol!r}")


#: The vertex count of SMPL (and of the synthetic body): the V of the regressor files.
SMPL_VERTICES = 6890


def load_regressor(protocol: Protocol, path: str | os.PathLike | None = None, body=None) -> torch.Tensor:
    """The protocol's (17, V) regressor, float32: from ``path`` (a ``.npy`` or a folder holding
    ``protocol.regressor_file``), or built for a synthetic ``body`` when no path is given (its rows
    put in the row order of ``protocol.regressor_file``, so the protocol's map names them right).

    A file is read without pickles and must hold a finite floating-point (17, V) array, V the
    body's vertex count when a ``body`` is given (else any V >= 1; SMPL's files have 6890).

    Raises:
        FileNotFoundError: no file (the message names the file and where it is usually found).
        TypeError: ``protocol`` is not a :class:`Protocol` or ``path`` not a path.
        ValueError: the file is not a readable ``.npy`` array (empty, truncated, a ``.npz``, an
            array of objects), its array is not floating-point, not (17, V) (a transposed (V, 17)
            array is named as such), or holds NaN or infinite weights; each message names the file.
    """
    check_protocol(protocol)
    if path is None:
        if body is not None and str(getattr(body, "name", "")).startswith("synthetic"):
            rows = _ROW_ORDER.get(protocol.regressor_file, tuple(range(17)))
            return synthetic_h36m_regressor(body)[list(rows)]
        raise FileNotFoundError(
            f"the {protocol.name} protocol needs {protocol.regressor_file} (17 x {SMPL_VERTICES}), "
            f"usually found in {_WHERE.get(protocol.regressor_file, 'its source repository')}; "
            f"pass its path")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a .npy file or a folder (str or os.PathLike) or None, got "
                        f"{type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        p = p / protocol.regressor_file
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: {protocol.name} needs {protocol.regressor_file}, "
                                f"usually found in "
                                f"{_WHERE.get(protocol.regressor_file, 'its source repository')}")
    num_vertices = None if body is None else int(body.num_vertices)
    return torch.as_tensor(_read_regressor(p, num_vertices), dtype=torch.float32)


def _read_regressor(p: Path, num_vertices: int | None) -> np.ndarray:
    """The checked (17, V) array of the ``.npy`` file ``p`` (V = ``num_vertices`` when given)."""
    with open(p, "rb") as fh:
        magic = fh.read(6)
    if magic.startswith(b"PK"):
        raise ValueError(f"{p} is a zip (.npz) archive, not a .npy array: save the (17, V) "
                         f"regressor with np.save")
    if magic != b"\x93NUMPY":
        what = "is empty" if not magic else "has no .npy header"
        raise ValueError(f"{p} {what}: expected a .npy array of joint-regressor weights (np.save)")
    try:
        array = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # truncated, a pickled array of objects
        raise ValueError(f"{p} is not a readable .npy array of joint-regressor weights ({err})") from err
    shape = array.shape
    transposed = array.ndim == 2 and shape[0] != 17 and shape[1] == 17
    v = num_vertices if num_vertices is not None else (
        shape[0] if transposed else shape[1] if array.ndim == 2 and shape[1] > 0 else SMPL_VERTICES)
    if array.ndim != 2 or shape[0] != 17 or shape[1] != v or v < 1:
        hint = " (a transposed regressor: save its .T)" if transposed and shape[0] == v else ""
        body = f"; the body has {num_vertices} vertices" if num_vertices is not None else ""
        raise ValueError(f"{p}: expected a (17, {v}) joint regressor, got {shape}{hint}{body}")
    if array.dtype.kind != "f":
        raise ValueError(f"{p}: a joint regressor holds floating-point weights, got dtype {array.dtype}")
    bad = ~np.isfinite(array)
    if bad.any():
        nan = int(np.isnan(array).sum())
        raise ValueError(f"{p}: the joint regressor must hold finite weights; it has {nan} NaN and "
                         f"{int(bad.sum()) - nan} infinite entries")
    return array
