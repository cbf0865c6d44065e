"""The torch rasterizer's core: the signed distance of pixel centres to triangles, each face's
coverage, and the face-culled per-pixel coverage sums as one custom operator (its own backward),
on checked inputs. :func:`kinediff.render.soft_silhouette` (which checks them) and the pytorch3d
backend's faces near the image edge both run :func:`coverage_silhouette`.

Pixel convention: vertices are (x, y) in pixels, x to the right, y down; pixel (i, j) has its
centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kinediff.render.boxes import box_pixels, face_pixel_boxes

__all__ = ["coverage", "coverage_silhouette", "pixel_centres", "signed_distance_to_triangles"]


def signed_distance_to_triangles(points: torch.Tensor, tris: torch.Tensor) -> torch.Tensor:
    """Signed distance (pixels) from points to triangles: negative inside, any winding.

    Shape:
        - points: (..., P, 1, 2).
        - tris: (..., 1, K, 3, 2), broadcastable against points.
        - output: (..., P, K).
    """
    # x and y kept apart: reductions over a size-2 axis are slow elementwise passes in torch
    px, py = points[..., 0], points[..., 1]
    xs = [tris[..., k, 0] for k in range(3)]
    ys = [tris[..., k, 1] for k in range(3)]
    area = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (ys[1] - ys[0]) * (xs[2] - xs[0])
    dist = None
    inside = None
    for k0, k1 in ((0, 1), (1, 2), (2, 0)):
        ex, ey = xs[k1] - xs[k0], ys[k1] - ys[k0]
        rx, ry = px - xs[k0], py - ys[k0]
        t = ((rx * ex + ry * ey) / (ex * ex + ey * ey).clamp_min(1e-12)).clamp(0.0, 1.0)
        dx, dy = rx - t * ex, ry - t * ey
        d = dx * dx + dy * dy
        dist = d if dist is None else torch.minimum(dist, d)
        side = (ex * ry - ey * rx) * area >= 0
        inside = side if inside is None else inside & side
    assert dist is not None and inside is not None
    dist = (dist + 1e-12).sqrt()
    inside = inside & (area.abs() > 1e-12)  # degenerate triangles cover nothing
    return torch.where(inside, -dist, dist)


def pixel_centres(h: int, w: int, device, dtype) -> torch.Tensor:
    """(H, W, 2) the (x, y) centres of an H x W image's pixels: (j + 0.5, i + 0.5)."""
    ys = torch.arange(h, device=device, dtype=dtype) + 0.5
    xs = torch.arange(w, device=device, dtype=dtype) + 0.5
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)


def coverage(sd: torch.Tensor, sigma: float) -> torch.Tensor:
    """1 - prod(1 - sigmoid(-sd / sigma)) over the last axis (a pixel's coverage from its signed
    distances ``sd`` (..., K) to K faces); the hard inside test for sigma = 0."""
    if sigma == 0:
        return (sd < 0).any(-1).to(sd.dtype)
    return 1.0 - torch.exp(-F.softplus(-sd / sigma).sum(-1))  # softplus(-sd / sigma) = -log(1 - D)


def _chunk_terms(tris_flat: torch.Tensor, boxes: tuple[torch.Tensor, ...], first: int,
                 n_faces: int, h: int, w: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The (face, pixel) pairs of the faces ``first ...`` whose boxes ``boxes`` describe: each
    pair's flat pixel index into (B*H*W,) and its term -log(1 - D_f(p)) (an inside indicator for
    sigma = 0)."""
    owner, px, py = box_pixels(*boxes)
    owner = owner + first  # b * F + f
    centres = torch.stack([px, py], -1).to(tris_flat.dtype) + 0.5
    sd = signed_distance_to_triangles(centres[:, None], tris_flat[owner][:, None])[:, 0]
    pixel = (torch.div(owner, n_faces, rounding_mode="floor") * h + py) * w + px
    terms = (sd < 0).to(sd.dtype) if sigma == 0 else F.softplus(-sd / sigma)  # -log(1 - D)
    return pixel, terms


def _chunks(tris: torch.Tensor, h: int, w: int, sigma: float, eps: float, max_elements: int
            ) -> list[tuple[int, int, tuple[torch.Tensor, ...]]]:
    """The faces' pixel boxes (grown by the culling margin) split into runs of whole faces of at
    most ``max_elements`` (face, pixel) pairs (at least one face each): (first, stop, boxes).

    The one host synchronisation of the rasterizer: how many pairs each face has decides the
    chunks, so the per-face counts' running sum is read back once per call."""
    margin = sigma * math.log(1.0 / eps) if sigma > 0 else 0.0
    boxes = face_pixel_boxes(tris, h, w, margin)
    cumulative = torch.cumsum(boxes[3], 0).cpu()
    n_owners = cumulative.numel()
    out = []
    start, done = 0, 0
    while start < n_owners and done < int(cumulative[-1]):
        stop = int(torch.searchsorted(cumulative, done + max_elements, right=True))
        stop = min(max(stop, start + 1), n_owners)  # at least one face per chunk
        out.append((start, stop, tuple(x[start:stop] for x in boxes)))
        done = int(cumulative[stop - 1])
        start = stop
    return out


# Why a custom operator: the number of (face, pixel) pairs depends on where the faces lie, so the
# chunk loop reads that count back and has data-dependent shapes, which torch.compile cannot trace.
# As one opaque operator with a declared output shape (B, H, W) the rasterizer sits inside a
# compiled training step as a single node (no graph break); its backward is a second operator
# that recomputes each chunk's pairs with gradients and applies the incoming gradient of the
# per-pixel sums at once: memory stays one chunk.
@torch.library.custom_op("kinediff::soft_coverage_sum", mutates_args=())
def _coverage_sum(verts2d: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                  sigma: float, eps: float, max_elements: int) -> torch.Tensor:
    """Per-pixel sums (B, H, W) of -log(1 - D_f(p)) over the faces (inside counts for sigma =
    0): the silhouette is 1 - exp(-sum)."""
    b, n_faces = verts2d.shape[0], faces.shape[0]
    total = verts2d.new_zeros(b * height * width)
    tris = verts2d[:, faces]  # (B, F, 3, 2)
    tris_flat = tris.reshape(-1, 3, 2)
    for first, _, part in _chunks(tris, height, width, sigma, eps, max_elements):
        pixel, terms = _chunk_terms(tris_flat, part, first, n_faces, height, width, sigma)
        total.index_add_(0, pixel, terms)
    return total.view(b, height, width)


@_coverage_sum.register_fake
def _(verts2d, faces, height, width, sigma, eps, max_elements):
    return verts2d.new_empty(verts2d.shape[0], height, width)


@torch.library.custom_op("kinediff::soft_coverage_sum_backward", mutates_args=())
def _coverage_sum_backward(grad: torch.Tensor, verts2d: torch.Tensor, faces: torch.Tensor,
                           height: int, width: int, sigma: float, eps: float,
                           max_elements: int) -> torch.Tensor:
    """d(sum_p grad_p * sum_p) / d verts2d: (B, V, 2), chunk by chunk."""
    if sigma == 0:  # the hard mask has no gradient
        return torch.zeros_like(verts2d)
    n_faces = faces.shape[0]
    flat_grad = grad.reshape(-1).to(verts2d.dtype)
    # torch.func.vjp, not torch.autograd: an operator's body runs below the autograd dispatch
    # (torch.enable_grad has no effect there); functorch's transforms carry their own
    tris_flat, to_verts = torch.func.vjp(lambda v: v[:, faces].reshape(-1, 3, 2), verts2d)
    grad_tris = torch.zeros_like(tris_flat)
    for first, _, part in _chunks(tris_flat.view(verts2d.shape[0], n_faces, 3, 2), height, width,
                                  sigma, eps, max_elements):
        def terms_of(t: torch.Tensor, part=part, first=first):
            pixel, terms = _chunk_terms(t, part, first, n_faces, height, width, sigma)
            return terms, pixel  # pixel: the auxiliary output

        _, vjp, pixel = torch.func.vjp(terms_of, tris_flat, has_aux=True)
        grad_tris += vjp(flat_grad[pixel])[0]
    return to_verts(grad_tris)[0]


@_coverage_sum_backward.register_fake
def _(grad, verts2d, faces, height, width, sigma, eps, max_elements):
    return torch.empty_like(verts2d)


def _coverage_setup(ctx, inputs, output) -> None:
    verts2d, faces, *ctx.options = inputs
    ctx.save_for_backward(verts2d, faces)


def _coverage_grad(ctx, grad):
    verts2d, faces = ctx.saved_tensors
    grad_v = _coverage_sum_backward(grad.contiguous(), verts2d, faces, *ctx.options)
    return (grad_v,) + (None,) * 6


_coverage_sum.register_autograd(_coverage_grad, setup_context=_coverage_setup)


def coverage_silhouette(verts2d: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                        sigma: float, eps: float, max_elements: int = 2**20) -> torch.Tensor:
    """The face-culled soft silhouette of checked inputs (see
    :func:`kinediff.render.soft_silhouette`, which checks them).

    Shape: verts2d (B, V, 2) pixels, faces (F, 3) -> (B, height, width) in [0, 1].
    """
    if faces.shape[0] == 0:
        return verts2d.new_zeros(verts2d.shape[0], height, width)
    total = _coverage_sum(verts2d, faces, height, width, float(sigma), float(eps), int(max_elements))
    return (total > 0).to(verts2d.dtype) if sigma == 0 else 1.0 - torch.exp(-total)
