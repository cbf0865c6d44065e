"""``BodyModel``: an SMPL-family body as an ``nn.Module`` over the functional core (``rotations``,
``blendshapes``, ``kinematics``, ``skinning``).

It holds the model arrays as buffers (so ``.to(device, dtype)`` moves them) and computes, for pose
theta and shape beta (paper eq. 1):

    v_shaped = T + B_S(beta)               J = J_regressor v_shaped
    v_posed  = v_shaped + B_P(theta)       M = LBS(v_posed, FK(R(theta), J), W) (+ transl)

The joint regressor is applied to the template and the shape directions once at construction
(``J = J_T + J_S beta``), which is exact by linearity and saves a (24 x V) product per sample.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from kinediff.body import blendshapes
from kinediff.body import kinematics as kin
from kinediff.body.rotations import axis_angle_to_matrix
from kinediff.body.skeleton import kinematic_levels
from kinediff.body.skinning import linear_blend_skinning
from kinediff.body.smpl_io import SMPL_REQUIRED_KEYS, find_smpl_file, load_smpl_pickle
from kinediff.body.synthetic import synthetic_model_path
from kinediff.core.checks import check_finite, check_like, value_checks_enabled
from kinediff.core.io import read_cached

__all__ = ["BodyModel", "BodyOutput"]


class BodyOutput(NamedTuple):
    """Output of :meth:`BodyModel.forward`.

    Attributes:
        vertices: (B, V, 3) posed vertices, metres.
        joints: (B, J, 3) posed joints, metres.
        transforms: (B, J, 4, 4) joint frames in the output frame (rotation, joint position),
            translation included.
        rotmats: (B, J, 3, 3) local joint rotations used.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    transforms: torch.Tensor
    rotmats: torch.Tensor


#: The smplx classes :meth:`BodyModel.from_smplx` takes (SMPL's body; smplx.SMPLLayer is smplx.SMPL
#: without its own parameters).
_SMPLX_SMPL_CLASSES = ("SMPL", "SMPLLayer")


def _tensor(x: Any, dtype: torch.dtype, name: str = "array") -> torch.Tensor:
    """``x`` (an array, a tensor, a scipy.sparse matrix) as a finite tensor of ``dtype``; a
    ``ValueError`` naming ``name`` otherwise. Values too small to be normal numbers of ``dtype``
    (below 1.2e-38 in float32) are stored as 0: subnormal numbers make every CPU GEMM that reads
    them an order of magnitude slower (docs/benchmarks.md, "Where the quickstart's time goes")."""
    try:
        if sp.issparse(x):
            x = x.toarray()
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().double().numpy()
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}: "
                         f"{str(err).splitlines()[0][:120]}") from None
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite: {int((~np.isfinite(a)).sum())} of {a.size} "
                         f"values are NaN or inf")
    t = torch.as_tensor(a, dtype=dtype)
    if t.is_floating_point():
        t = t.masked_fill(t.abs() < torch.finfo(t.dtype).tiny, 0.0)
    return t


def _faces(faces: Any, num_vertices: int) -> torch.Tensor:
    """(F, 3) int64 vertex indices in [0, num_vertices); a ``ValueError`` naming ``faces`` (SMPL's
    key ``f``) otherwise."""
    try:
        f = np.asarray(faces.detach().cpu() if isinstance(faces, torch.Tensor) else faces)
    except (TypeError, ValueError) as err:
        raise ValueError(f"faces (SMPL's 'f') must be an (F, 3) integer array: {err}") from None
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces (SMPL's 'f') must have shape (F, 3), got {f.shape}")
    if not (np.issubdtype(f.dtype, np.integer) or (np.issubdtype(f.dtype, np.floating)
                                                   and np.isfinite(f).all()
                                                   and (f == np.round(f)).all())):
        raise ValueError(f"faces (SMPL's 'f') must hold integer vertex indices, got {f.dtype}")
    f = f.astype(np.int64)
    if f.size and (f.min() < 0 or f.max() >= num_vertices):
        raise ValueError(f"faces (SMPL's 'f') index vertices in [{f.min()}, {f.max()}] but "
                         f"v_template has {num_vertices} vertices")
    return torch.as_tensor(f)


class BodyModel(nn.Module):
    """SMPL-family body model (SMPL's 24 joints, any vertex count).

    Build one with :meth:`synthetic` (built-in, no licence needed), :meth:`from_smpl` (official SMPL
    files, read without chumpy), :meth:`from_smplx` (an ``smplx.SMPL`` model object) or
    :meth:`from_dict` (arrays in SMPL's pickle layout).

    Args:
        v_template: (V, 3) template vertices, metres.
        shapedirs: (V, 3, K) shape directions.
        posedirs: (V, 3, P) pose-corrective directions, P = 9 (J - 1) (SMPL's file layout).
        J_regressor: (J, V) joint regressor (dense or scipy sparse).
        weights: (V, J) skinning weights.
        parents: (J,) parent indices, -1 for the root.
        faces: (F, 3) triangle indices.
        num_betas: number of shape coefficients used (the first ``num_betas`` directions).
        dtype: floating dtype of the buffers.
        name: a label for ``repr`` (e.g. "smpl-neutral", "synthetic-seed0").

    Attributes:
        faces: (F, 3) long tensor. parents: (J,) long tensor (parent_list: the same as Python ints).
        v_template: (V, 3).
        num_vertices, num_joints, num_betas: sizes.

    Example:
        >>> import torch
        >>> from kinediff.body import BodyModel
        >>> body = BodyModel.synthetic()  # built-in, SMPL-compatible, no licence needed
        >>> out = body(torch.zeros(2, 24, 3), torch.zeros(2, 10))
        >>> out.vertices.shape, out.joints.shape
        (torch.Size([2, 6890, 3]), torch.Size([2, 24, 3]))
    """

    v_template: torch.Tensor
    shapedirs: torch.Tensor
    posedirs: torch.Tensor
    J_regressor: torch.Tensor
    weights: torch.Tensor
    parents: torch.Tensor
    faces: torch.Tensor
    joint_template: torch.Tensor
    joint_shapedirs: torch.Tensor

    def __init__(self, v_template, shapedirs, posedirs, J_regressor, weights, parents, faces, *,
                 num_betas: int = 10, dtype: torch.dtype = torch.float32,
                 name: str = "body", shape_names: list[str] | None = None) -> None:
        super().__init__()
        v_template = _tensor(v_template, dtype, "v_template")
        shapedirs = _tensor(shapedirs, dtype, "shapedirs")
        posedirs = _tensor(posedirs, dtype, "posedirs")
        regressor = _tensor(J_regressor, dtype, "J_regressor")
        weights = _tensor(weights, dtype, "weights")
        try:
            parents_np = np.asarray(parents, dtype=np.int64).copy()
        except (TypeError, ValueError) as err:
            raise ValueError(f"parents (SMPL's kintree_table[0]) must be integers: {err}") from None
        if parents_np.ndim != 1 or parents_np.size < 1:
            raise ValueError(f"parents (SMPL's kintree_table[0]) must have shape (J,), got "
                             f"{parents_np.shape}")
        parents_t = torch.as_tensor(parents_np)
        parents_t[0] = -1
        nv = v_template.shape[0]
        nj = parents_t.shape[0]
        checks = [
            (v_template.shape == (nv, 3), "v_template", f"({nv}, 3)", v_template.shape),
            (shapedirs.dim() == 3 and shapedirs.shape[:2] == (nv, 3), "shapedirs", f"({nv}, 3, K)",
             shapedirs.shape),
            (posedirs.shape == (nv, 3, 9 * (nj - 1)), "posedirs", f"({nv}, 3, {9 * (nj - 1)})",
             posedirs.shape),
            (regressor.shape == (nj, nv), "J_regressor", f"({nj}, {nv})", regressor.shape),
            (weights.shape == (nv, nj), "weights", f"({nv}, {nj})", weights.shape),
        ]
        for ok, key, want, got in checks:
            if not ok:
                raise ValueError(f"{key} must have shape {want}, got {tuple(got)}")
        if not 1 <= num_betas <= shapedirs.shape[2]:
            raise ValueError(f"num_betas must be in [1, {shapedirs.shape[2]}], got {num_betas}")
        kinematic_levels(parents_t.tolist())  # validates the tree order
        self.parent_list = parents_t.tolist()  # python ints: no device sync in forward
        shapedirs = shapedirs[:, :, :num_betas].contiguous()
        self.name = name
        self.shape_names = list(shape_names) if shape_names is not None else None
        self.register_buffer("v_template", v_template)
        self.register_buffer("shapedirs", shapedirs)
        # (P, V*3): pose features (B, P) @ posedirs gives the offsets in one matmul
        self.register_buffer("posedirs", posedirs.reshape(nv * 3, -1).transpose(0, 1).contiguous())
        self.register_buffer("J_regressor", regressor)
        self.register_buffer("weights", weights)
        self.register_buffer("parents", parents_t)
        self.register_buffer("faces", _faces(faces, nv))
        # regressor applied once: J(beta) = joint_template + joint_shapedirs . beta
        self.register_buffer("joint_template", regressor @ v_template, persistent=False)
        self.register_buffer("joint_shapedirs",
                             torch.einsum("jv,vck->jck", regressor, shapedirs), persistent=False)

    # ----------------------------------------------------------------------------------------
    # constructors
    # ----------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, num_betas: int = 10,
                  dtype: torch.dtype = torch.float32, name: str = "body") -> BodyModel:
        """Build from a dict in SMPL's pickle layout (as :func:`load_smpl_pickle` returns).

        Raises:
            TypeError: ``data`` is not a dict.
            ValueError: a missing key, or an array of the wrong shape or type, non-finite, faces
                out of range, a kinematic tree (``kintree_table``, (2, J)) out of order; each
                message names the key.
        """
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict in SMPL's pickle layout, got {type(data).__name__}")
        missing = [k for k in SMPL_REQUIRED_KEYS if k not in data]
        if missing:
            raise ValueError(f"SMPL data lacks keys {missing} (needs {list(SMPL_REQUIRED_KEYS)})")
        shapedirs = _tensor(data["shapedirs"], torch.float64, "shapedirs")
        if shapedirs.dim() != 3:
            raise ValueError(f"shapedirs must have shape (V, 3, K), got {tuple(shapedirs.shape)}")
        try:
            tree = np.asarray(data["kintree_table"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"kintree_table must be a (2, J) integer array: {err}") from None
        if tree.ndim != 2 or tree.shape[0] != 2 or not (np.issubdtype(tree.dtype, np.integer)
                                                       or np.issubdtype(tree.dtype, np.floating)):
            raise ValueError(f"kintree_table must be a (2, J) integer array (row 0: each joint's "
                             f"parent), got {tree.dtype} of shape {tree.shape}")
        return cls(data["v_template"], shapedirs, data["posedirs"], data["J_regressor"],
                   data["weights"], tree[0].astype(np.int64),
                   data["f"], num_betas=min(num_betas, shapedirs.shape[-1]), dtype=dtype,
                   name=name, shape_names=data.get("shape_names"))

    @classmethod
    def from_smpl(cls, path_or_dir: str | os.PathLike | None = None, gender: str = "neutral", *,
                  num_betas: int = 10, dtype: torch.dtype = torch.float32) -> BodyModel:
        """Load an official SMPL model (``.pkl``) without chumpy and without running pickled code.

        Args:
            path_or_dir: a ``.pkl`` file, or a folder holding one of
                ``SMPL_FILE_NAMES[gender]`` (also looked for in its ``smpl/`` sub-folder);
                ``None`` uses ``$KINEDIFF_SMPL_DIR``.
            gender: "neutral", "male" or "female".
            num_betas: shape coefficients to use (SMPL v1.1 files hold 300).
            dtype: buffer dtype.

        Raises:
            FileNotFoundError: no model file found (the message lists the names and places tried
                and where SMPL is obtained).
            ValueError: a bad gender, or a file that is not a SMPL model.
        """
        path = find_smpl_file(path_or_dir, gender)
        return cls.from_dict(load_smpl_pickle(path), num_betas=num_betas, dtype=dtype,
                             name=f"smpl-{gender}")

    @classmethod
    def from_smplx(cls, model: Any, *, name: str | None = None) -> BodyModel:
        """The body of an ``smplx.SMPL`` model object, from the arrays it holds.

        Reads the model's buffers, without importing smplx and without reading a file:
        ``v_template`` (V, 3), ``shapedirs`` (V, 3, K), ``posedirs`` (P, V * 3) (smplx's layout:
        SMPL's (V, 3, P) reshaped and transposed), ``J_regressor`` (J, V), ``lbs_weights`` (V, J),
        ``parents`` (J,) and ``faces_tensor`` (F, 3). The result has the model's dtype and device
        and all K of its shape directions (smplx's ``num_betas``, plus one with a kid template).
        Its ``forward(pose, betas, transl)`` gives smplx's vertices and first 24 joints for
        ``pose`` = ``global_orient`` (B, 3) followed by ``body_pose`` (B, 69) and the same
        ``betas`` and ``transl`` (``tests/body/test_body_model.py`` checks both against smplx).
        smplx rounds a file's arrays through float32 when it loads them, so a float64 smplx model
        holds float32 values; :meth:`from_smpl` reads the file itself in full precision.

        Not carried over: the smplx model's own parameters (``betas``, ``global_orient``,
        ``body_pose``, ``transl``: a ``BodyModel`` takes them per call), its ``joint_mapper`` and
        the extra joints its ``vertex_joint_selector`` picks from the vertices.

        Args:
            model: an ``smplx.SMPL`` or ``smplx.SMPLLayer`` (``smplx.create(...,
                model_type="smpl")``), or a subclass of one that is not another smplx model.
            name: a label for ``repr`` and :meth:`fingerprint`; default ``"smpl-<gender>"``, as
                :meth:`from_smpl` names its bodies.

        Raises:
            TypeError: ``model`` is not an smplx SMPL model: another smplx model (SMPL-H and
                SMPL-X have hand and face joints, MANO and FLAME are a hand and a head, none SMPL's
                24-joint body) or an object from elsewhere.
        """
        smplx_classes = [c.__name__ for c in type(model).__mro__
                         if c.__module__.split(".")[0] == "smplx"]
        if not smplx_classes:
            hint = (" (a path: use BodyModel.from_smpl)" if isinstance(model, (str, os.PathLike))
                    else "")
            raise TypeError(f"from_smplx takes an smplx.SMPL model (smplx.create(folder, "
                            f"model_type='smpl')), got {type(model).__name__}{hint}")
        if smplx_classes[0] not in _SMPLX_SMPL_CLASSES:
            raise TypeError(f"from_smplx takes an smplx.SMPL model, got smplx.{smplx_classes[0]}: "
                            f"a BodyModel is SMPL's 24-joint body, and smplx's SMPL-H and SMPL-X "
                            f"add hand and face joints (MANO and FLAME are a hand and a head)")
        arrays = {}
        for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "lbs_weights", "parents",
                    "faces_tensor"):
            value = getattr(model, key, None)
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"the smplx.{smplx_classes[0]} model has no tensor {key!r}: not a "
                                f"model smplx built")
            arrays[key] = value.detach().cpu()
            if arrays[key].is_floating_point():  # float64 holds every float dtype's values exactly
                arrays[key] = arrays[key].double()
        template = model.v_template
        nv = arrays["v_template"].shape[0]
        posedirs = arrays["posedirs"].transpose(0, 1).reshape(nv, 3, -1)  # SMPL's (V, 3, P) layout
        gender = getattr(model, "gender", None)
        body = cls(arrays["v_template"], arrays["shapedirs"], posedirs, arrays["J_regressor"],
                   arrays["lbs_weights"], arrays["parents"], arrays["faces_tensor"],
                   num_betas=arrays["shapedirs"].shape[-1], dtype=template.dtype,
                   name=name if name is not None else
                   (f"smpl-{gender}" if isinstance(gender, str) else "smpl"))
        return body.to(template.device)

    @classmethod
    def synthetic(cls, seed: int = 0, *, dtype: torch.dtype = torch.float32,
                  cache_dir: str | os.PathLike | None = None) -> BodyModel:
        """kinediff's built-in SMPL-compatible body (no licensed data), deterministic from ``seed``.

        Built once (a few seconds) and cached as a SMPL pickle under ``cache_dir`` (default
        ``$KINEDIFF_CACHE_DIR`` or the user cache directory); later calls load the file.
        See :mod:`kinediff.body.synthetic` for what it is and how it is made.
        """
        path = synthetic_model_path(seed, cache_dir)
        data = read_cached(path, load_smpl_pickle, "synthetic body")
        return cls.from_dict(data, dtype=dtype, name=f"synthetic-seed{seed}")

    def to_smpl_dict(self) -> dict[str, Any]:
        """The model as a dict in SMPL's pickle layout (numpy, float64; sparse J_regressor)."""
        nv, nj = self.num_vertices, self.num_joints
        parents = self.parents.cpu().numpy().astype(np.int64)
        kintree = np.stack([np.where(parents < 0, 2**32 - 1, parents), np.arange(nj)])
        out: dict[str, Any] = {
            "v_template": self.v_template.detach().cpu().double().numpy(),
            "shapedirs": self.shapedirs.detach().cpu().double().numpy(),
            "posedirs": self.posedirs.detach().cpu().double().numpy().T.reshape(nv, 3, -1),
            "J_regressor": sp.csc_matrix(self.J_regressor.detach().cpu().double().numpy()),
            "weights": self.weights.detach().cpu().double().numpy(),
            "kintree_table": kintree.astype(np.uint32),
            "f": self.faces.cpu().numpy().astype(np.uint32),
            "J": self.joint_template.detach().cpu().double().numpy(),
            "bs_type": "lrotmin",
            "bs_style": "lbs",
        }
        if self.shape_names is not None:
            out["shape_names"] = list(self.shape_names)
        return out

    # ----------------------------------------------------------------------------------------
    # sizes
    # ----------------------------------------------------------------------------------------

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.parents.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[2])

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this body without its data: ``name``, ``num_vertices``,
        ``num_joints``, ``num_betas`` and ``template_sha256`` (SHA-256 of the mean template's
        vertices as float32 and its faces as int64, so a body loaded in float32 or float64 from
        the same file gives the same hash). A hash, not the (licensed) SMPL data: published with a
        trained model (:meth:`kinediff.PostureHMR.save_pretrained`) so that loading it against
        another body can be refused."""
        digest = hashlib.sha256()
        digest.update(self.v_template.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        digest.update(self.faces.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
        return {"name": self.name, "num_vertices": self.num_vertices, "num_joints": self.num_joints,
                "num_betas": self.num_betas, "template_sha256": digest.hexdigest()}

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, vertices={self.num_vertices}, joints={self.num_joints}, "
                f"betas={self.num_betas}, dtype={self.v_template.dtype}")

    # ----------------------------------------------------------------------------------------
    # input checks
    # ----------------------------------------------------------------------------------------

    def _check_tensor(self, x: Any, name: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        check_like(x, name, self.v_template)
        check_finite(x, name)
        return x

    def rotations(self, pose: torch.Tensor) -> torch.Tensor:
        """Local joint rotation matrices from a pose.

        Shape:
            - pose: (B, J, 3) axis-angle (radians), (B, J * 3) flattened axis-angle, or (B, J, 3, 3)
              rotation matrices.
            - output: (B, J, 3, 3).

        Raises:
            ValueError: a wrong shape, or (value checks, :func:`kinediff.value_checks`) NaN or
                infinite entries, an axis-angle longer than ``MAX_ANGLE`` radians (Rodrigues'
                formula squares the angle: in float32 angles above about 1e19 overflow to NaN,
                and far below that the angle's rounding exceeds a turn), or matrices that are not
                rotations (R^T R = I and det R = 1 within ``ROTATION_TOLERANCE``: a zero or
                scaled matrix would skin a collapsed or inflated mesh without any error). With
                value checks off such inputs are used as given.
        """
        pose = self._check_tensor(pose, "pose")
        nj = self.num_joints
        if pose.dim() == 2 and pose.shape[1] == 3 * nj:
            pose = pose.reshape(-1, nj, 3)
        if pose.dim() == 3 and pose.shape[1:] == (nj, 3):
            if value_checks_enabled() and pose.numel():
                longest = float(pose.detach().norm(dim=-1).max())
                if longest > self.MAX_ANGLE:
                    raise ValueError(f"pose has an axis-angle of {longest:.3g} rad, beyond "
                                     f"MAX_ANGLE = {self.MAX_ANGLE:g} rad: wrap the angles to "
                                     f"[-pi, pi] (or pass rotation matrices)")
            return axis_angle_to_matrix(pose)
        if pose.dim() == 4 and pose.shape[1:] == (nj, 3, 3):
            if value_checks_enabled() and pose.numel():
                self._check_rotations(pose)
            return pose
        raise ValueError(f"pose must have shape (B, {nj}, 3) axis-angle, (B, {3 * nj}) or "
                         f"(B, {nj}, 3, 3) rotation matrices; got {tuple(pose.shape)}")

    #: The longest axis-angle (radians) :meth:`rotations` accepts (a value check).
    MAX_ANGLE = 1e4
    #: The largest entry of ``abs(R^T R - I)`` and ``abs(det R - 1)`` accepted as a rotation (a value
    #: check).
    ROTATION_TOLERANCE = 1e-2

    def _check_rotations(self, rotmats: torch.Tensor) -> None:
        """Refuse (B, J, 3, 3) matrices that are not rotations, naming the first bad one."""
        eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        rotmats = rotmats.detach()
        ortho = (rotmats.transpose(-1, -2) @ rotmats - eye).abs().amax((-1, -2))  # (B, J)
        det = (torch.linalg.det(rotmats) - 1).abs()
        bad = (ortho > self.ROTATION_TOLERANCE) | (det > self.ROTATION_TOLERANCE)
        if bool(bad.any()):
            b, j = (int(i) for i in bad.nonzero()[0])
            raise ValueError(f"pose[{b}, {j}] is not a rotation matrix (|R^T R - I| = "
                             f"{float(ortho[b, j]):.3g}, det R = {float(det[b, j]) + 1:.3g}); "
                             f"{int(bad.sum())} of {bad.numel()} matrices fail: orthonormalise "
                             f"them (e.g. from 6D with rotation_6d_to_matrix)")

    def prepare_betas(self, betas: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Checked shape coefficients for ``batch`` samples: zeros for ``None``, padded to
        ``num_betas``, a batch of 1 expanded. Shape: (B or 1, K <= num_betas) -> (batch, num_betas).
        """
        ref = self.v_template
        if betas is None:
            return ref.new_zeros(batch, self.num_betas)
        betas = self._check_tensor(betas, "betas")
        if betas.dim() != 2 or betas.shape[0] not in (1, batch) or betas.shape[1] > self.num_betas:
            raise ValueError(f"betas must have shape (B, K) with B = {batch} (or 1) and "
                             f"K <= {self.num_betas}; got {tuple(betas.shape)}")
        if betas.shape[1] < self.num_betas:
            betas = torch.nn.functional.pad(betas, (0, self.num_betas - betas.shape[1]))
        return betas.expand(batch, -1)

    # ----------------------------------------------------------------------------------------
    # model pieces
    # ----------------------------------------------------------------------------------------

    def shape_offsets(self, betas: torch.Tensor) -> torch.Tensor:
        """B_S(beta). Shape: betas (B, K<=num_betas) -> (B, V, 3)."""
        return blendshapes.shape_offsets(self.prepare_betas(betas, betas.shape[0]), self.shapedirs)

    def pose_offsets(self, pose: torch.Tensor) -> torch.Tensor:
        """B_P(theta). Shape: pose as in :meth:`rotations` -> (B, V, 3)."""
        return blendshapes.pose_offsets(self.rotations(pose), self.posedirs)

    def rest_vertices(self, betas: torch.Tensor) -> torch.Tensor:
        """Shaped template T + B_S(beta). Shape: (B, K) -> (B, V, 3)."""
        return self.v_template + self.shape_offsets(betas)

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """Rest-pose joints J_regressor (T + B_S(beta)). Shape: (B, K) -> (B, J, 3)."""
        betas = self.prepare_betas(betas, betas.shape[0])
        return self.joint_template + blendshapes.shape_offsets(betas, self.joint_shapedirs)

    def forward(self, pose: torch.Tensor, betas: torch.Tensor | None = None,
                transl: torch.Tensor | None = None) -> BodyOutput:
        """Posed mesh and joints.

        Args:
            pose: (B, J, 3) axis-angle, (B, J*3), or (B, J, 3, 3) matrices; joint 0 is the global
                orientation.
            betas: (B, K) or (1, K) shape coefficients, K <= ``num_betas`` (missing ones are 0);
                ``None`` for the mean shape.
            transl: (B, 3) translation added to vertices and joints, metres.

        Returns:
            :class:`BodyOutput` with vertices (B, V, 3), joints (B, J, 3), transforms (B, J, 4, 4)
            and rotmats (B, J, 3, 3).

        Raises:
            ValueError: wrong shape, a dtype/device other than the model's, and (value checks,
                :func:`kinediff.value_checks`) NaN/inf, non-rotation matrices or absurd angles
                (:meth:`rotations`).
        """
        rotmats = self.rotations(pose)
        batch = rotmats.shape[0]
        betas = self.prepare_betas(betas, batch)
        v_shaped = self.v_template + blendshapes.shape_offsets(betas, self.shapedirs)
        rest_joints = self.joint_template + blendshapes.shape_offsets(betas, self.joint_shapedirs)
        v_posed = v_shaped + blendshapes.pose_offsets(rotmats, self.posedirs)
        fk = kin.forward_kinematics(rotmats, rest_joints, self.parent_list)
        vertices = linear_blend_skinning(v_posed, self.weights, fk.skinning_transforms)
        joints = fk.joints
        frames = fk.global_transforms
        if transl is not None:
            transl = self._check_tensor(transl, "transl")
            if transl.shape != (batch, 3):
                raise ValueError(f"transl must have shape ({batch}, 3), got {tuple(transl.shape)}")
            vertices = vertices + transl[:, None]
            joints = joints + transl[:, None]
            frames = frames.clone()
            frames[..., :3, 3] += transl[:, None]
        return BodyOutput(vertices, joints, frames, rotmats)
