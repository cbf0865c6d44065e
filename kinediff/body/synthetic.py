"""A procedurally generated, SMPL-compatible body with no licensed data in it.

The synthetic body has SMPL's 24-joint tree and joint order, a closed genus-0 triangle mesh with
exactly 6890 vertices and 13776 faces (SMPL's sizes, so every later level of the mesh hierarchy has
the paper's sizes), smooth sparse skinning weights, 10 named shape directions, small pose-corrective
blend shapes (207 = 23 x 9) and a convex-weight joint regressor. It is written in SMPL's pickle
layout, so ``smplx.create`` loads it unchanged.

How it is built (all deterministic from ``seed``):

1. A skeleton in SMPL's frame (metres, y up, +z = facing direction, +x = subject's left),
   about 1.7 m tall, arms out (T-pose), palms down.
2. A smooth implicit surface: a soft union (exponential smooth-min, width ``_BLEND``) of tapered
   capsules and ellipsoids around the bones, each *owned* by the joint whose rotation moves it.
3. Marching cubes (scikit-image) on an 8 mm grid, quadric decimation (fast-simplification) to just
   under 6890 vertices, then longest-edge splits (new vertices projected back onto the implicit
   surface) to exactly 6890; closed, manifold and genus 0 are checked.
   A few tangential relaxation steps (re-projected) remove the decimator's sliver edges.
4. Skinning weights: a soft assignment of each vertex to the primitives' owner joints from the
   primitives' distance fields, smoothed over the mesh, kept to the 4 largest, rows summing to 1.
5. Shape directions: each named proportion (stature, torso girth, leg length, ...) moves the
   skeleton and the primitives; every vertex follows its primitives' affine maps (blended with the
   smooth weights), and the central finite difference per unit of the proportion's standard
   deviation is the direction. So ``betas[k] = 1`` is one standard deviation of that proportion.
6. Pose correctives: for every (joint, entry of R - I) a small smooth bulge along the surface normal,
   local to the joint (Gaussian falloff), with seeded coefficients of a few millimetres.
7. Joint regressor: for each joint, non-negative weights summing to 1 over the vertices around it,
   found by bounded least squares, so that regressing the template returns the skeleton.

Why hand-written: no library generates a rigged, SMPL-layout body; the pieces that libraries do
(marching cubes, decimation, bounded least squares, sparse matrices) come from scikit-image,
fast-simplification and scipy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import fast_simplification
import numpy as np
import scipy.sparse as sp
from skimage.measure import marching_cubes

from kinediff.body.smpl_io import write_smpl_pickle
from kinediff.core.checks import check_int
from kinediff.core.conventions import SMPL_PARENTS
from kinediff.core.io import cache_dir as resolve_cache_dir
from kinediff.core.io import write_atomic
from kinediff.mesh.topology import edges, is_closed_manifold

__all__ = [
    "GENERATOR_VERSION",
    "SHAPE_NAMES",
    "SHAPE_STD",
    "build_synthetic_smpl",
    "synthetic_model_path",
    "synthetic_skeleton",
]

#: Pose correctives' bumps below this share of their peak are zero (each zeroed entry of posedirs
#: is under 2e-14 m per unit of (R - I); vertices move by at most 2.3e-14 m, docs/benchmarks.md).
_BUMP_FLOOR = 1e-12

#: Bump when the generator's output changes, so cached files are rebuilt.
GENERATOR_VERSION = "4"

#: Meaning of each of the 10 shape coefficients of the synthetic body.
SHAPE_NAMES: tuple[str, ...] = (
    "stature",  # uniform scale of the whole body
    "torso_girth",  # left-right and front-back size of the torso
    "leg_length",  # thigh and shin length
    "arm_length",  # upper arm, forearm and hand length
    "shoulder_width",  # collar-to-shoulder distance (metres)
    "hip_width",  # hip joint spacing (metres)
    "torso_length",  # pelvis-to-neck length
    "head_size",  # head scale
    "belly",  # front-back size of the abdomen
    "limb_girth",  # thickness of arms and legs
)
#: One standard deviation of each proportion: relative change, except the two widths in metres.
SHAPE_STD: tuple[float, ...] = (0.045, 0.10, 0.05, 0.05, 0.02, 0.015, 0.05, 0.06, 0.18, 0.10)

NUM_VERTICES = 6890
NUM_FACES = 2 * NUM_VERTICES - 4  # a closed genus-0 triangle mesh
_BLEND = 0.014  # smooth-union width (m)
_GRID = 0.008  # marching-cubes grid spacing (m)
_SKIN_TAU = 0.006  # softness of the joint assignment (m)
_SKIN_SMOOTH_ITERS = 20
_MAX_INFLUENCES = 4


# --------------------------------------------------------------------------------------------
# Skeleton and primitives as functions of the proportions
# --------------------------------------------------------------------------------------------


def synthetic_skeleton(p: np.ndarray) -> np.ndarray:
    """The synthetic body's designed skeleton: joint positions (24, 3) in metres, SMPL's joint order
    and frame, for proportions ``p`` (10,) in absolute units (``SHAPE_STD`` times the betas, in
    ``SHAPE_NAMES``' order; zeros for the canonical body). Its joint regressor returns this skeleton
    from the template (step 7 above)."""
    stature, _tg, leg, arm, sw, hw, tl, _hs, _belly, _lg = p
    leg, arm, tl = 1 + leg, 1 + arm, 1 + tl
    J = np.zeros((24, 3))
    J[0] = (0.0, -0.23, 0.0)
    J[3] = J[0] + tl * np.array([0.0, 0.12, -0.01])
    J[6] = J[3] + tl * np.array([0.0, 0.13, 0.01])
    J[9] = J[6] + tl * np.array([0.0, 0.06, 0.01])
    J[12] = J[9] + tl * np.array([0.0, 0.21, -0.03])
    J[15] = J[12] + np.array([0.0, 0.075, 0.04])
    for side, (hip, knee, ankle, foot, collar, sho, elb, wri, hand) in (
        (1.0, (1, 4, 7, 10, 13, 16, 18, 20, 22)),
        (-1.0, (2, 5, 8, 11, 14, 17, 19, 21, 23)),
    ):
        J[hip] = J[0] + np.array([side * (0.085 + hw), -0.09, 0.0])
        J[knee] = J[hip] + leg * np.array([side * 0.015, -0.39, 0.01])
        J[ankle] = J[knee] + leg * np.array([0.0, -0.40, -0.035])
        J[foot] = J[ankle] + np.array([side * 0.01, -0.055, 0.12])
        J[collar] = J[9] + tl * np.array([side * 0.07, 0.11, -0.01])
        J[sho] = J[collar] + np.array([side * (0.10 + sw), 0.02, -0.01])
        J[elb] = J[sho] + arm * np.array([side * 0.26, -0.01, -0.01])
        J[wri] = J[elb] + arm * np.array([side * 0.25, 0.0, 0.0])
        J[hand] = J[wri] + arm * np.array([side * 0.085, -0.005, 0.0])
    return J * (1.0 + stature)


@dataclass
class _Primitives:
    """Tapered capsules (a -> b, radius r0 -> r1) and axis-aligned ellipsoids, with owner joints."""

    cap_a: np.ndarray  # (Nc, 3)
    cap_b: np.ndarray  # (Nc, 3)
    cap_r: np.ndarray  # (Nc, 2)
    cap_owner: np.ndarray  # (Nc,)
    ell_c: np.ndarray  # (Ne, 3)
    ell_r: np.ndarray  # (Ne, 3)
    ell_owner: np.ndarray  # (Ne,)

    @property
    def owners(self) -> np.ndarray:
        return np.concatenate([self.cap_owner, self.ell_owner])

    @property
    def count(self) -> int:
        return len(self.cap_owner) + len(self.ell_owner)


def _primitives(p: np.ndarray) -> _Primitives:
    """The body's primitives for proportions ``p`` (absolute units, see ``SHAPE_STD``)."""
    J = synthetic_skeleton(p)
    stature, tg, _leg, arm, _sw, hw, tl, hs, belly, lg = p
    s = 1.0 + stature
    tgx, limb, head = 1.0 + tg, s * (1.0 + lg), s * (1.0 + hs)
    caps: list[tuple[np.ndarray, np.ndarray, float, float, int]] = []
    ells: list[tuple[np.ndarray, np.ndarray, int]] = []
    # torso: pelvis, abdomen, lower and upper chest (owned by pelvis, spine1, spine2, spine3)
    ells.append((J[0] + s * np.array([0, -0.02, -0.005]),
                 s * np.array([(0.165 + hw) * tgx, 0.15, 0.115 * tgx]), 0))
    ells.append((J[3] + s * np.array([0, 0.01, 0.012 * (1 + belly)]),
                 s * np.array([0.145 * tgx, 0.16 * (1 + tl), 0.11 * tgx * (1 + belly)]), 3))
    ells.append((J[6] + s * np.array([0, 0.03, 0.005]),
                 s * np.array([0.155 * tgx, 0.15 * (1 + tl), 0.115 * tgx]), 6))
    ells.append((J[9] + s * np.array([0, 0.07, -0.01]),
                 s * np.array([0.17 * tgx, 0.13 * (1 + tl), 0.11 * tgx]), 9))
    # neck and head
    caps.append((J[12] - s * np.array([0, 0.03, -0.01]), J[15], 0.055 * s, 0.05 * s, 12))
    ells.append((J[15] + head * np.array([0, 0.085, 0.005]),
                 head * np.array([0.078, 0.105, 0.095]), 15))
    for side, (hip, knee, ankle, foot, collar, sho, elb, wri, hand) in (
        (1.0, (1, 4, 7, 10, 13, 16, 18, 20, 22)),
        (-1.0, (2, 5, 8, 11, 14, 17, 19, 21, 23)),
    ):
        sv = np.array([side, 1.0, 1.0])
        caps.append((J[collar] - s * side * np.array([0.04, 0, 0]), J[sho],
                     0.06 * s * tgx, 0.058 * limb, collar))
        caps.append((J[sho], J[elb], 0.052 * limb, 0.04 * limb, sho))
        caps.append((J[elb], J[wri], 0.038 * limb, 0.027 * limb, elb))
        # hand: a palm paddle (wrist) and a finger paddle (hand joint), palms down
        ells.append((J[wri] + (J[hand] - J[wri]) * 0.55,
                     s * (1 + arm) * np.array([0.058, 0.021, 0.045]) * np.array([1, 1, 1]), wri))
        ells.append((J[hand] + sv * s * (1 + arm) * np.array([0.045, -0.003, 0.0]),
                     s * (1 + arm) * np.array([0.052, 0.014, 0.042]), hand))
        caps.append((J[hip] + s * np.array([0, 0.02, 0]), J[knee], 0.082 * limb, 0.052 * limb, hip))
        caps.append((J[knee], J[ankle], 0.05 * limb, 0.034 * limb, knee))
        # foot: heel-to-ball (ankle) and toes (foot joint)
        caps.append((J[ankle] + s * np.array([0, -0.035, -0.05]), J[foot] + s * np.array([0, 0.0, -0.01]),
                     0.036 * s, 0.032 * s, ankle))
        caps.append((J[foot], J[foot] + s * np.array([side * 0.005, -0.007, 0.065]),
                     0.03 * s, 0.022 * s, foot))
    return _Primitives(
        cap_a=np.array([c[0] for c in caps]),
        cap_b=np.array([c[1] for c in caps]),
        cap_r=np.array([[c[2], c[3]] for c in caps]),
        cap_owner=np.array([c[4] for c in caps]),
        ell_c=np.array([e[0] for e in ells]),
        ell_r=np.array([e[1] for e in ells]),
        ell_owner=np.array([e[2] for e in ells]),
    )


# --------------------------------------------------------------------------------------------
# Distance fields
# --------------------------------------------------------------------------------------------


def _capsule_param(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Clamped position u in [0, 1] of the closest point of segment a-b to each point x (N, 3)."""
    ab = b - a
    return np.clip(((x - a) @ ab) / (ab @ ab), 0.0, 1.0)


def _capsule_sdf(x: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    u = _capsule_param(x, a, b)
    closest = a + u[:, None] * (b - a)
    return np.linalg.norm(x - closest, axis=1) - (r[0] + u * (r[1] - r[0]))


def _ellipsoid_sdf(x: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    # A first-order distance bound for ellipsoids: k0 (k0 - 1) / k1 (exact on the axes).
    q = x - c
    k0 = np.linalg.norm(q / r, axis=1)
    k1 = np.maximum(np.linalg.norm(q / (r * r), axis=1), 1e-12)
    return k0 * (k0 - 1.0) / k1


def _primitive_sdfs(x: np.ndarray, prims: _Primitives) -> np.ndarray:
    """Signed distances (N, P) of points x (N, 3) to every primitive (capsules first)."""
    cols = [_capsule_sdf(x, a, b, r) for a, b, r in zip(prims.cap_a, prims.cap_b, prims.cap_r)]
    cols += [_ellipsoid_sdf(x, c, r) for c, r in zip(prims.ell_c, prims.ell_r)]
    return np.stack(cols, axis=1)


def _smooth_union(d: np.ndarray) -> np.ndarray:
    """Exponential smooth minimum over the last axis, width ``_BLEND``."""
    m = d.min(axis=-1, keepdims=True)
    return (m - _BLEND * np.log(np.exp(-(d - m) / _BLEND).sum(axis=-1, keepdims=True)))[..., 0]


def _implicit(x: np.ndarray, prims: _Primitives) -> np.ndarray:
    return _smooth_union(_primitive_sdfs(x, prims))


def _implicit_grid(prims: _Primitives) -> tuple[np.ndarray, np.ndarray]:
    """The implicit function on a regular grid, each primitive evaluated only near itself."""
    lo_pts = np.concatenate([np.minimum(prims.cap_a, prims.cap_b) - prims.cap_r.max(1, keepdims=True),
                             prims.ell_c - prims.ell_r])
    hi_pts = np.concatenate([np.maximum(prims.cap_a, prims.cap_b) + prims.cap_r.max(1, keepdims=True),
                             prims.ell_c + prims.ell_r])
    margin = 8 * _BLEND
    origin = lo_pts.min(0) - margin - 2 * _GRID
    shape = np.ceil((hi_pts.max(0) + margin + 2 * _GRID - origin) / _GRID).astype(int) + 1
    acc = np.zeros(shape, dtype=np.float64)
    for i in range(prims.count):
        i0 = np.maximum(np.floor((lo_pts[i] - margin - origin) / _GRID).astype(int), 0)
        i1 = np.minimum(np.ceil((hi_pts[i] + margin - origin) / _GRID).astype(int) + 1, shape)
        axes = [origin[k] + _GRID * np.arange(i0[k], i1[k]) for k in range(3)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        if i < len(prims.cap_owner):
            d = _capsule_sdf(pts, prims.cap_a[i], prims.cap_b[i], prims.cap_r[i])
        else:
            k = i - len(prims.cap_owner)
            d = _ellipsoid_sdf(pts, prims.ell_c[k], prims.ell_r[k])
        acc[i0[0]:i1[0], i0[1]:i1[1], i0[2]:i1[2]] += np.exp(-d / _BLEND).reshape(i1 - i0)
    field = -_BLEND * np.log(np.maximum(acc, 1e-300))
    return field, origin


# --------------------------------------------------------------------------------------------
# Meshing
# --------------------------------------------------------------------------------------------


def _check_closed_genus0(verts: np.ndarray, faces: np.ndarray) -> None:
    closed, euler = is_closed_manifold(len(verts), faces)
    if not closed:
        raise RuntimeError("synthetic body mesh is not closed and manifold (an edge lacks 2 faces)")
    if euler != 2:
        raise RuntimeError(f"synthetic body mesh has Euler characteristic {euler}, expected 2")


def _project(x: np.ndarray, prims: _Primitives, iters: int = 4) -> np.ndarray:
    """Move points onto the implicit surface with Newton steps along the numerical gradient."""
    h = 1e-4
    for _ in range(iters):
        f = _implicit(x, prims)
        g = np.stack([(_implicit(x + h * e, prims) - _implicit(x - h * e, prims)) / (2 * h)
                      for e in np.eye(3)], axis=1)
        x = x - (f / np.maximum((g * g).sum(1), 1e-12))[:, None] * g
    return x


def _split_longest_edges(verts: np.ndarray, faces: np.ndarray, count: int,
                         prims: _Primitives) -> tuple[np.ndarray, np.ndarray]:
    """Split the ``count`` longest edges (one at a time), each adding exactly one vertex."""
    verts, faces = verts.copy(), faces.copy()
    new_pts = []
    for _ in range(count):
        e = edges(faces)
        a, b = e[np.argmax(np.linalg.norm(verts[e[:, 0]] - verts[e[:, 1]], axis=1))]
        m = len(verts)
        verts = np.vstack([verts, 0.5 * (verts[a] + verts[b])])
        new_pts.append(m)
        adjacent = np.where(np.isin(faces, [a, b]).sum(1) == 2)[0]
        new_faces = []
        for fi in adjacent:
            f = faces[fi]
            # rotate so that the face reads (a', b', c) with {a', b'} = {a, b}
            k = next(i for i in range(3) if {f[i], f[(i + 1) % 3]} == {a, b})
            p, q, r = f[k], f[(k + 1) % 3], f[(k + 2) % 3]
            faces[fi] = (p, m, r)
            new_faces.append((m, q, r))
        faces = np.vstack([faces, np.array(new_faces)])
    idx = np.array(new_pts)
    verts[idx] = _project(verts[idx], prims)
    return verts, faces


def _relax(verts: np.ndarray, faces: np.ndarray, prims: _Primitives, iters: int = 5) -> np.ndarray:
    """Even out edge lengths: tangential Laplacian steps, each followed by re-projection."""
    walk = _vertex_adjacency(len(verts), faces)
    for _ in range(iters):
        n = _vertex_normals(verts, faces)
        step = walk @ verts - verts
        step -= (step * n).sum(1, keepdims=True) * n  # keep the motion tangential
        verts = _project(verts + 0.5 * step, prims, iters=2)
    return verts


def _mesh(prims: _Primitives) -> tuple[np.ndarray, np.ndarray]:
    field, origin = _implicit_grid(prims)
    v, f, _, _ = marching_cubes(field, level=0.0, spacing=(_GRID,) * 3, allow_degenerate=False)
    v = v + origin
    # merge duplicate vertices that marching cubes may emit
    v, inverse = np.unique(np.round(v, 9), axis=0, return_inverse=True)
    f = inverse.reshape(-1)[f]
    # decimate to a little under the target, then split edges to hit the vertex count exactly
    target_faces = NUM_FACES - 60
    v, f = fast_simplification.simplify(v.astype(np.float64), f.astype(np.int64),
                                        target_count=target_faces, agg=7)
    _check_closed_genus0(v, f)
    missing = NUM_VERTICES - len(v)
    if missing < 0:
        raise RuntimeError(f"decimation kept {len(v)} vertices, more than {NUM_VERTICES}")
    v, f = _split_longest_edges(v, f, missing, prims)
    _check_closed_genus0(v, f)
    return _relax(v, f, prims), f


# --------------------------------------------------------------------------------------------
# Rigging
# --------------------------------------------------------------------------------------------


def _vertex_adjacency(n: int, faces: np.ndarray) -> sp.csr_matrix:
    e = edges(faces)
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    a = (a + a.T).tocsr()
    deg = np.asarray(a.sum(1)).ravel()
    return sp.diags(1.0 / deg) @ a


def _soft_assignment(d: np.ndarray, groups: np.ndarray, n_groups: int, tau: float) -> np.ndarray:
    """Soft assignment (N, n_groups) from per-primitive distances d (N, P) grouped by ``groups``."""
    g = np.full((d.shape[0], n_groups), np.inf)
    for k in range(d.shape[1]):
        g[:, groups[k]] = np.minimum(g[:, groups[k]], d[:, k])
    g = g - g.min(1, keepdims=True)
    w = np.exp(-g / tau)
    return w / w.sum(1, keepdims=True)


def _smooth_rows(w: np.ndarray, walk: sp.csr_matrix, iters: int) -> np.ndarray:
    for _ in range(iters):
        w = 0.5 * w + 0.5 * (walk @ w)
    return w


def _sparsify(w: np.ndarray, k: int) -> np.ndarray:
    keep = np.argsort(-w, axis=1)[:, :k]
    out = np.zeros_like(w)
    np.put_along_axis(out, keep, np.take_along_axis(w, keep, 1), 1)
    return out / out.sum(1, keepdims=True)


def _deform(v: np.ndarray, w_prim: np.ndarray, p0: _Primitives, p1: _Primitives) -> np.ndarray:
    """Move vertices v (N, 3) with the primitives' affine maps p0 -> p1, blended by w_prim (N, P)."""
    out = np.zeros_like(v)
    for i in range(len(p0.cap_owner)):
        a0, b0, r0 = p0.cap_a[i], p0.cap_b[i], p0.cap_r[i]
        a1, b1, r1 = p1.cap_a[i], p1.cap_b[i], p1.cap_r[i]
        u = _capsule_param(v, a0, b0)
        axis0 = a0 + u[:, None] * (b0 - a0)
        ratio = (r1[0] + u * (r1[1] - r1[0])) / (r0[0] + u * (r0[1] - r0[0]))
        moved = a1 + u[:, None] * (b1 - a1) + ratio[:, None] * (v - axis0)
        out += w_prim[:, i:i + 1] * moved
    nc = len(p0.cap_owner)
    for k in range(len(p0.ell_owner)):
        moved = p1.ell_c[k] + (p1.ell_r[k] / p0.ell_r[k]) * (v - p0.ell_c[k])
        out += w_prim[:, nc + k:nc + k + 1] * moved
    return out


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _joint_regressor(v: np.ndarray, joints: np.ndarray) -> sp.csc_matrix:
    """Convex weights (24, V) over the vertices around each joint reproducing the joint."""
    from scipy.optimize import lsq_linear  # heavy to import; only building a new body needs it

    rows, cols, vals = [], [], []
    for j, x in enumerate(joints):
        order = np.argsort(np.linalg.norm(v - x, axis=1))
        for k in (24, 48, 96, 192, 384, 768):
            idx = order[:k]
            # constraints (position and sum to one) weighted heavily; a small pull towards the
            # uniform weights spreads the mass over the ring instead of 4 hull vertices
            rho, eps = 1e3, 1e-2
            a = np.vstack([rho * v[idx].T, rho * np.ones((1, k)), eps * np.eye(k)])
            b = np.concatenate([rho * x, [rho], eps * np.full(k, 1.0 / k)])
            sol = lsq_linear(a, b, bounds=(0.0, np.inf), method="bvls").x
            sol = sol / sol.sum()
            if np.linalg.norm(sol @ v[idx] - x) < 2e-4:
                break
        else:
            raise RuntimeError(f"joint {j} is not inside the hull of the vertices around it")
        keep = sol > 1e-6
        sol = sol[keep] / sol[keep].sum()
        rows += [j] * int(keep.sum())
        cols += idx[keep].tolist()
        vals += sol.tolist()
    return sp.csc_matrix((vals, (rows, cols)), shape=(len(joints), len(v)))


def _pose_correctives(v: np.ndarray, f: np.ndarray, joints: np.ndarray, rng: np.random.Generator,
                      scale: float = 0.004) -> np.ndarray:
    """Smooth local bulges (V, 3, 207) along the normal, per (joint, R - I entry)."""
    normals = _vertex_normals(v, f)
    coeff = rng.normal(0.0, 1.0, size=(23, 9)) * scale
    posedirs = np.zeros((len(v), 3, 23 * 9))
    for j in range(1, 24):
        sigma = 0.03 if j in (10, 11, 20, 21, 22, 23) else 0.06
        bump = np.exp(-np.sum((v - joints[j]) ** 2, axis=1) / (2 * sigma**2))
        # compact support: the tail far from the joint is zero, not values down to 1e-300 that
        # become float32 subnormals, which made every float32 GEMM with this basis (kinediff's
        # and smplx's) about 20x slower (docs/benchmarks.md, "Where the quickstart's time goes")
        bump[bump < _BUMP_FLOOR] = 0.0
        for e in range(9):
            posedirs[:, :, (j - 1) * 9 + e] = coeff[j - 1, e] * bump[:, None] * normals
    return posedirs


# --------------------------------------------------------------------------------------------
# Public
# --------------------------------------------------------------------------------------------


def build_synthetic_smpl(seed: int = 0) -> dict[str, np.ndarray]:
    """Build the synthetic body's SMPL-layout arrays.

    Args:
        seed: 0 gives the canonical body; any other seed jitters the base proportions (by 0.3 of
            their standard deviations) and draws other pose-corrective coefficients.

    Returns:
        A dict with SMPL's keys: ``v_template`` (6890, 3), ``f`` (13776, 3) uint32, ``shapedirs``
        (6890, 3, 10), ``posedirs`` (6890, 3, 207), ``J_regressor`` (24, 6890) scipy CSC,
        ``weights`` (6890, 24), ``kintree_table`` (2, 24) uint32, ``J`` (24, 3), ``bs_type``,
        ``bs_style``, and kinediff's ``shape_names``. Units: metres.

    Takes a few seconds; :func:`synthetic_model_path` caches the result on disk.
    """
    rng = np.random.default_rng(check_int(seed, "seed", 0))
    std = np.asarray(SHAPE_STD)
    base = np.zeros(10) if seed == 0 else rng.normal(0.0, 0.3, size=10) * std
    prims = _primitives(base)
    v, f = _mesh(prims)
    n_joints = 24
    d = _primitive_sdfs(v, prims)
    walk = _vertex_adjacency(len(v), f)
    skin = _soft_assignment(d, prims.owners, n_joints, _SKIN_TAU)
    skin = _sparsify(_smooth_rows(skin, walk, _SKIN_SMOOTH_ITERS), _MAX_INFLUENCES)
    w_prim = _smooth_rows(_soft_assignment(d, np.arange(prims.count), prims.count, _SKIN_TAU),
                          walk, _SKIN_SMOOTH_ITERS)
    shapedirs = np.zeros((len(v), 3, 10))
    for k in range(10):
        delta = np.zeros(10)
        delta[k] = 1e-3 * std[k]
        plus = _deform(v, w_prim, prims, _primitives(base + delta))
        minus = _deform(v, w_prim, prims, _primitives(base - delta))
        shapedirs[:, :, k] = (plus - minus) / 2e-3
    joints = synthetic_skeleton(base)
    regressor = _joint_regressor(v, joints)
    posedirs = _pose_correctives(v, f, joints, rng)
    kintree = np.array([[(p if p >= 0 else 2**32 - 1) for p in SMPL_PARENTS], list(range(24))],
                       dtype=np.uint32)
    return {
        "v_template": v.astype(np.float64),
        "f": f.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": regressor,
        "weights": skin,
        "kintree_table": kintree,
        "J": np.asarray(regressor @ v),
        "bs_type": "lrotmin",
        "bs_style": "lbs",
        "shape_names": list(SHAPE_NAMES),
    }


def synthetic_model_path(seed: int = 0, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the synthetic body's SMPL pickle, building and caching it on first use.

    The file lives under ``cache_dir`` (default: ``$KINEDIFF_CACHE_DIR`` or the user cache
    directory) as ``SMPL_SYNTHETIC_v<version>_seed<seed>.pkl`` and is a valid SMPL pickle that
    ``smplx.SMPL(model_path=path)`` loads.
    """
    seed = check_int(seed, "seed", 0)
    path = resolve_cache_dir(cache_dir) / f"SMPL_SYNTHETIC_v{GENERATOR_VERSION}_seed{seed}.pkl"
    if not path.exists():
        data = build_synthetic_smpl(seed)
        write_atomic(path, lambda tmp: write_smpl_pickle(data, tmp))
    return path
