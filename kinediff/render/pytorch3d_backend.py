"""The optional pytorch3d backend of :func:`kinediff.render.soft_silhouette` (``backend="pytorch3d"``),
equal to the torch backend's silhouette up to float32 rounding.

pytorch3d's rasterizer (CUDA or C++) finds, per pixel, the faces within the blur radius and their
signed squared distances in NDC units; this adapter turns those into the torch backend's soft
silhouette: D_f = sigmoid(-d_f / sigma) with d_f in pixels, aggregated as 1 - prod(1 - D_f).

pytorch3d keeps only the ``faces_per_pixel`` (K) faces *nearest in depth* at each pixel, and every
face of a 2D mesh has the same depth, so the adapter never guesses K and never lets pytorch3d drop
a face:

- **K is counted, per image** (:func:`pytorch3d_faces_per_pixel`): the most faces at one pixel
  whose bounding box grown by sigma * ln(1 / eps) pixels (plus a rounding slack) covers the pixel's
  centre, with the torch backend's culling (:func:`kinediff.render.boxes.face_pixel_boxes`), bounds
  the faces pytorch3d can find there; one spare slot checks it (a pixel that fills every slot
  raises instead of returning a wrong mask). The hard mask (sigma = 0) needs one slot.
- **Nothing is culled by pytorch3d**: rasterization is naive (``bin_size=0``), and the faces
  pytorch3d would skip or mis-test in float32 (near-degenerate ones, and faces with non-finite
  vertices) are drawn by the torch backend instead and combined exactly, 1 - (1 - A)(1 - B).

pytorch3d's conventions used here (its ``rasterize_meshes`` documentation): +x points left and +y
up in NDC, the centre of pixel column i of an S-wide image is at x = 1 - (2 i + 1) / S (rows
alike), one pixel is 2 / S NDC units, ``blur_radius`` and ``dists`` are squared NDC distances,
``dists`` negative inside a face, used slots come first and unused slots have ``pix_to_face = -1``.
Square images only (pytorch3d scales NDC by the shorter side on rectangular ones).

Memory: about 9 bytes per slot of the whole batch (B x S x S x K) kept for the backward pass, plus
40 bytes per slot of the one image being rasterized or differentiated. How closely the two backends
agree, the K that body meshes need, and what that costs: ``docs/render_heads.md`` ("Backends:
torch and pytorch3d") and ``docs/benchmarks.md`` ("The pytorch3d backend").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kinediff.core.checks import check_image_size, check_int, check_mesh2d, check_number
from kinediff.render.boxes import face_pixel_boxes
from kinediff.render.coverage import coverage_silhouette

__all__ = ["pytorch3d_available", "pytorch3d_faces_per_pixel", "soft_silhouette_pytorch3d"]

#: The most faces per pixel pytorch3d's CUDA kernels hold (its ``kMaxPointsPerPixel``).
CUDA_MAX_FACES_PER_PIXEL = 150
#: pytorch3d skips faces whose float32 edge function (twice the signed NDC area) is at most this.
_PYTORCH3D_AREA_EPS = 1e-8
#: Slack (pixels) added to the counting boxes to cover float32 rounding of pytorch3d's NDC tests.
_BOX_SLACK = 1e-3
#: Hard masks: pytorch3d's inside test is strict, the torch backend's is not (a pixel centre on an
#: edge is covered); a blur radius of this many NDC units (about 16 times float32 rounding there)
#: covers such centres too.
_HARD_EDGE_NDC = 1e-6


def pytorch3d_available() -> bool:
    """Whether pytorch3d's mesh rasterizer imports."""
    try:  # pytorch3d, a heavy optional dependency, is imported where it is used
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes  # noqa: F401
        from pytorch3d.structures import Meshes  # noqa: F401
    except ImportError:
        return False
    return True


def _check_inputs(verts2d: torch.Tensor, faces: torch.Tensor, image_size: int | tuple[int, int],
                  sigma: float) -> int:
    """Check the 2D meshes (B, V, 2), faces (F, 3), sigma (>= 0) and that the image is square;
    return its side S."""
    check_mesh2d(verts2d, faces)
    h, w = check_image_size(image_size)
    check_number(sigma, "sigma", 0.0)
    if h != w:
        raise ValueError(f"the pytorch3d backend renders square images only, got {h} x {w}")
    return h


def _margin(sigma: float, eps: float) -> float:
    """Distance (pixels) beyond which a face's coverage is below ``eps``."""
    return sigma * math.log(1.0 / eps) if sigma > 0 else 0.0


def _ndc(verts2d: torch.Tensor, s: int) -> torch.Tensor:
    """(B, V, 3) float32 NDC vertices at depth 1: what pytorch3d is given."""
    return torch.stack([1 - 2 * verts2d[..., 0] / s, 1 - 2 * verts2d[..., 1] / s,
                        torch.ones_like(verts2d[..., 0])], -1).float()


def _faces_for_torch(ndc: torch.Tensor, faces: torch.Tensor, margin_ndc: float) -> torch.Tensor:
    """(B, F) bool: faces the torch backend draws instead of pytorch3d.

    Faces with a non-finite vertex (the torch backend ignores them; pytorch3d's tests would pass
    NaN through) and near-degenerate ones: pytorch3d skips a face whose float32 edge function is
    within 1e-8 of zero, and for a thin face the float32 sum of its barycentric coordinates (the
    depth it tests against 0) loses accuracy at pixels far from it. Routed: every face whose edge
    function, computed here in float64 from the same float32 inputs, is below twice pytorch3d's
    threshold plus 2e-4 (margin + L) L, L its longest edge; the float32 rounding of both tests is
    orders of magnitude smaller.
    """
    tris = ndc.detach()[:, faces][..., :2].double()  # (B, F, 3, 2)
    finite = torch.isfinite(tris).flatten(2).all(-1)
    tris = torch.where(finite[..., None, None], tris, 0.0)
    e1, e2 = tris[:, :, 1] - tris[:, :, 0], tris[:, :, 2] - tris[:, :, 0]
    edge_fn = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]
    longest = torch.stack([e1.norm(dim=-1), e2.norm(dim=-1),
                           (tris[:, :, 2] - tris[:, :, 1]).norm(dim=-1)], -1).amax(-1)
    thin = edge_fn.abs() <= 2 * _PYTORCH3D_AREA_EPS + 2e-4 * (margin_ndc + longest) * longest
    return ~finite | thin


def _max_box_count(tris: torch.Tensor, s: int, margin: float,
                   keep: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) long: per image, the most faces whose box grown by ``margin`` covers one pixel."""
    b, n_faces = tris.shape[:2]
    j0, i0, width, count = face_pixel_boxes(tris, s, s, margin, keep)
    height = torch.div(count, width.clamp_min(1), rounding_mode="floor")
    owner = torch.arange(b, device=tris.device).repeat_interleave(n_faces)
    hit = count > 0
    owner, j0, i0, width, height = owner[hit], j0[hit], i0[hit], width[hit], height[hit]
    diff = torch.zeros(b, s + 1, s + 1, dtype=torch.long, device=tris.device)
    ones = torch.ones_like(owner)
    for rows, cols, sign in ((i0, j0, 1), (i0, j0 + width, -1), (i0 + height, j0, -1),
                             (i0 + height, j0 + width, 1)):
        diff.index_put_((owner, rows, cols), sign * ones, accumulate=True)
    per_pixel = diff.cumsum(1).cumsum(2)[:, :s, :s]
    return per_pixel.flatten(1).amax(1)


def pytorch3d_faces_per_pixel(verts2d: torch.Tensor, faces: torch.Tensor,
                              image_size: int | tuple[int, int], sigma: float = 1.0,
                              eps: float = 1e-6) -> torch.Tensor:
    """The faces per pixel (K) pytorch3d must keep to render each image exactly: (B,) long.

    Per image, the most faces at one pixel whose bounding box grown by sigma * ln(1 / eps) pixels
    covers the pixel's centre (the torch backend's culling), counting only the faces the adapter
    hands to pytorch3d; 1 for the hard mask (sigma = 0). :func:`soft_silhouette_pytorch3d` uses
    this plus one spare slot (see :mod:`kinediff.render.pytorch3d_backend` for the memory).
    """
    h = _check_inputs(verts2d, faces, image_size, sigma)
    if sigma == 0 or faces.shape[0] == 0:
        return torch.full((verts2d.shape[0],), 0 if faces.shape[0] == 0 else 1, dtype=torch.long)
    margin = _margin(sigma, eps)
    routed = _faces_for_torch(_ndc(verts2d, h), faces, 2.0 * margin / h)
    tris = verts2d.detach()[:, faces]
    return _max_box_count(tris, h, margin + _BOX_SLACK, keep=~routed).cpu()


def _check_slots(k: int, device: torch.device, faces_per_pixel: int | None) -> None:
    """Refuse a K that would make pytorch3d drop faces or that exceeds the caller's cap."""
    if faces_per_pixel is not None and k > faces_per_pixel:
        raise ValueError(f"the pytorch3d backend needs faces_per_pixel = {k} here to be exact "
                         f"(faces within sigma * ln(1 / eps) pixels of a pixel), more than the "
                         f"faces_per_pixel={faces_per_pixel} allowed; raise it or pass None "
                         f"(memory: about 9 bytes per slot of the batch, B x S x S x K, plus 40 "
                         f"per slot of one image), or use backend='torch'")
    if device.type == "cuda" and k > CUDA_MAX_FACES_PER_PIXEL:
        raise ValueError(f"the pytorch3d backend needs {k} faces per pixel here to be exact, but "
                         f"pytorch3d's CUDA kernels hold at most {CUDA_MAX_FACES_PER_PIXEL}; use "
                         f"backend='torch' (or a smaller sigma)")


def soft_silhouette_pytorch3d(verts2d: torch.Tensor, faces: torch.Tensor,
                              image_size: int | tuple[int, int],
                              sigma: float = 1.0, eps: float = 1e-6,
                              faces_per_pixel: int | None = None) -> torch.Tensor:
    """Soft silhouette through pytorch3d's rasterizer, equal to the torch backend's (see the
    module docstring).

    Shape: verts2d (B, V, 2) pixels (x right, y down, pixel (i, j) centred at (j + 0.5, i + 0.5)),
    faces (F, 3) -> (B, S, S) in [0, 1]; differentiable with respect to ``verts2d`` when sigma > 0.

    Args:
        sigma, eps: as in :func:`~kinediff.render.soft_silhouette`.
        faces_per_pixel: an upper limit on the faces kept per pixel (K), or None (no limit). K is
            never guessed: each image gets the K it needs (:func:`pytorch3d_faces_per_pixel`,
            plus one), and a mesh needing more than this limit raises ``ValueError`` instead of
            being rendered wrongly. Memory: about 9 bytes per slot of the batch (B x S x S x K)
            plus 40 bytes per slot of the image being rasterized or differentiated.

    Raises:
        ImportError: pytorch3d is not installed.
        ValueError: bad shapes or sigma, a non-square image, more faces per pixel needed than
            ``faces_per_pixel`` (or than pytorch3d's CUDA kernels hold, 150).
        RuntimeError: a pixel used every slot, so pytorch3d may have dropped faces (the count
            that sets K should make this impossible).
    """
    try:  # pytorch3d, a heavy optional dependency, is imported where it is used
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
        from pytorch3d.structures import Meshes
    except ImportError:
        raise ImportError("backend='pytorch3d' needs pytorch3d (https://github.com/facebookresearch/"
                          "pytorch3d/blob/main/INSTALL.md); backend='torch' needs nothing") from None
    s = _check_inputs(verts2d, faces, image_size, sigma)
    if faces_per_pixel is not None:
        check_int(faces_per_pixel, "faces_per_pixel", what="or None")
    b = verts2d.shape[0]
    faces = faces.to(verts2d.device)
    if faces.shape[0] == 0:
        return verts2d.new_zeros(b, s, s)
    margin = _margin(sigma, eps)
    margin_ndc = 2.0 * margin / s
    ndc = _ndc(verts2d, s)
    routed = _faces_for_torch(ndc, faces, margin_ndc)  # (B, F)
    if sigma == 0:
        need = torch.ones(b, dtype=torch.long)
    else:
        need = _max_box_count(verts2d.detach()[:, faces], s, margin + _BOX_SLACK,
                              keep=~routed).cpu() + 1  # + 1: the spare slot that checks the bound
    for k in need.tolist():
        _check_slots(k, verts2d.device, faces_per_pixel)
    masks = []
    for i in range(b):
        mine = faces[~routed[i]]
        mask = verts2d.new_zeros(s, s)
        if mine.shape[0]:
            mask = _render_one(rasterize_meshes, Meshes, ndc[i:i + 1], mine, s, sigma, margin_ndc,
                               int(need[i])).to(verts2d.dtype)
        if bool(routed[i].any()):
            other = coverage_silhouette(verts2d[i:i + 1], faces[routed[i]], s, s, sigma, eps)[0]
            mask = 1.0 - (1.0 - mask) * (1.0 - other)
        masks.append(mask)
    return torch.stack(masks)


def _render_one(rasterize_meshes, meshes_cls, ndc: torch.Tensor, faces: torch.Tensor, s: int,
                sigma: float, margin_ndc: float, k: int) -> torch.Tensor:
    """One image (S, S) from pytorch3d with K = ``k`` slots per pixel."""
    meshes = meshes_cls(verts=ndc, faces=faces[None])
    radius = margin_ndc if sigma > 0 else _HARD_EDGE_NDC
    pix_to_face, zbuf, bary, dists = rasterize_meshes(
        meshes, image_size=s, blur_radius=radius ** 2, faces_per_pixel=k, bin_size=0,
        perspective_correct=False)
    del zbuf, bary  # a third of the forward memory, not needed
    valid = pix_to_face[0] >= 0  # (S, S, K); used slots come first
    if sigma == 0:
        return valid[..., 0].to(dists.dtype)
    if bool(valid[..., -1].any()):
        raise RuntimeError(f"pytorch3d filled all {k} slots of a pixel, so it may have dropped faces "
                           f"and the silhouette would be wrong; please report this mesh "
                           f"(backend='torch' renders it)")
    used = valid.sum(-1).view(-1)  # (S * S,)
    sq = dists[0][valid].double()  # squared NDC distances, negative inside
    d = torch.sign(sq) * (sq.abs() + 1e-20).sqrt() * (s / 2.0)  # signed distance, pixels
    terms = F.softplus(-d / sigma)  # -log(1 - D_f)
    pixel = torch.repeat_interleave(torch.arange(s * s, device=used.device), used)
    total = terms.new_zeros(s * s).index_add(0, pixel, terms)
    return (1.0 - torch.exp(-total)).view(s, s)
