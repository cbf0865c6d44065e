"""A pure-torch differentiable silhouette rasterizer for 2D triangle meshes (SoftRas-style).

Each face f covers pixel p with probability D_f(p) = sigmoid(-d_f(p) / sigma), d_f the signed
distance in pixels from the pixel centre to the triangle (negative inside); the silhouette is
1 - prod_f (1 - D_f), computed stably as 1 - exp(-sum_f softplus(d_f / sigma)). ``sigma = 0``
gives the hard mask (inside tests, no gradient) for data generation.

Memory and time stay bounded: each face is evaluated only at the pixels of its bounding box grown
by the distance where D_f drops below ``eps`` (face culling at the finest tile, one pixel), the
(face, pixel) pairs are listed sparsely and processed in chunks of at most ``max_elements``,
recomputed in the backward pass instead of stored; nothing of size
B x H x W x F is ever formed. Why hand-written: pytorch3d has no wheels here, and no other
installable library rasterizes differentiably in torch.

Pixel convention: vertices are (x, y) in pixels, x to the right, y down, (0, 0) the image's top-left
corner; pixel (i, j) has its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import nn

from kinediff.core.checks import (
    ImageSize,
    Number,
    OneOf,
    check_choice,
    check_count,
    check_finite,
    check_image_size,
    check_mesh2d,
    check_tensor,
)
from kinediff.core.config import Configurable
from kinediff.render.boxes import box_pixels, face_pixel_boxes

__all__ = [
    "SoftSilhouetteRasterizer",
    "signed_distance_to_triangles",
    "soft_silhouette",
    "soft_silhouette_naive",
]

#: The ``backend`` values of :func:`soft_silhouette`.
SILHOUETTE_BACKENDS = ("torch", "pytorch3d", "auto")


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


def _pixel_centres(h: int, w: int, device, dtype) -> torch.Tensor:
    ys = torch.arange(h, device=device, dtype=dtype) + 0.5
    xs = torch.arange(w, device=device, dtype=dtype) + 0.5
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)


def _coverage(sd: torch.Tensor, sigma: float) -> torch.Tensor:
    """1 - prod(1 - sigmoid(-sd / sigma)) over the last axis; hard inside test for sigma = 0."""
    if sigma == 0:
        return (sd < 0).any(-1).to(sd.dtype)
    return 1.0 - torch.exp(-F.softplus(-sd / sigma).sum(-1))  # softplus(-sd / sigma) = -log(1 - D)


def _check(verts2d: torch.Tensor, faces: torch.Tensor, image_size) -> tuple[int, int]:
    """Check a batch of 2D meshes (B, V, 2), their faces (F, 3) and the image size; return (H, W).
    Finiteness and the faces' index range are value checks (:func:`kinediff.value_checks`)."""
    check_tensor(verts2d, "verts2d")
    check_tensor(faces, "faces")
    check_mesh2d(verts2d, faces)
    check_finite(verts2d, "verts2d")
    return check_image_size(image_size)


def soft_silhouette_naive(verts2d: torch.Tensor, faces: torch.Tensor, image_size, sigma: float = 1.0
                          ) -> torch.Tensor:
    """Reference implementation over all (pixel, face) pairs at once: B * H * W * F memory.

    Shape: verts2d (B, V, 2) pixels, faces (F, 3) -> (B, H, W) in [0, 1].
    """
    h, w = _check(verts2d, faces, image_size)
    tris = verts2d[:, faces]  # (B, F, 3, 2)
    pix = _pixel_centres(h, w, verts2d.device, verts2d.dtype).view(1, h * w, 1, 2)
    sd = signed_distance_to_triangles(pix, tris[:, None])  # (B, H*W, F)
    return _coverage(sd, sigma).view(-1, h, w)


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


def soft_silhouette(verts2d: torch.Tensor, faces: torch.Tensor, image_size, sigma: float = 1.0,
                    eps: float = 1e-6, max_elements: int = 2**20, backend: str = "torch",
                    faces_per_pixel: int | None = None) -> torch.Tensor:
    """Face-culled soft silhouette (see the module docstring).

    Each face is evaluated only at the pixels inside its bounding box grown by the distance where
    its coverage falls below ``eps`` (sigma * ln(1 / eps)); the (face, pixel) pairs are listed
    sparsely, evaluated in chunks of at most ``max_elements`` pairs that are recomputed in the
    backward pass, and summed into the pixels with ``index_add``.

    On a GPU and under ``torch.compile``: the rasterizer is one custom operator
    (``torch.ops.kinediff.soft_coverage_sum``, declared output shape, its own backward), so a
    compiled training step holds it without a graph break; inside, it reads back once per call how
    many (face, pixel) pairs the faces cover (that count decides the chunks): one host
    synchronisation per call, inherent to face culling. The vertex range and finiteness checks
    are value checks (:func:`kinediff.value_checks`).

    Args:
        verts2d: (B, V, 2) vertex positions in pixels, finite.
        faces: (F, 3) integer triangle indices into the V vertices.
        image_size: H = W (int) or (H, W), positive integers.
        sigma: softness in pixels (0: hard mask); finite, >= 0.
        eps: coverage below which a face is culled at a pixel, in (0, 1).
        max_elements: (face, pixel) pairs per chunk (bounds memory).
        backend: "torch" (this function), "pytorch3d" (pytorch3d's rasterizer, which must be
            installed; square images; the same result up to float32 rounding, with B x S x S x K
            memory; see :mod:`kinediff.render.pytorch3d_backend`) or "auto", which is "torch":
            the two backends never agree bit for bit, and on CPU pytorch3d is far slower (and
            larger at 256 px; figures in docs/benchmarks.md), so choosing it automatically could
            only change results, never improve them.
        faces_per_pixel: the pytorch3d backend's limit on the faces kept per pixel (K), or None:
            each image gets the K it needs to be exact (a mesh needing more than the limit raises
            instead of silently dropping faces); see
            :func:`~kinediff.render.pytorch3d_faces_per_pixel`.

    Returns:
        (B, H, W) silhouette in [0, 1], differentiable with respect to ``verts2d`` when sigma > 0
        (once: the operator's backward has no gradient of its own, so ``create_graph=True``
        second derivatives are refused by torch).

    Raises:
        ValueError: wrong shapes, NaN or negative sigma, eps outside (0, 1), a bad image size or
            backend; NaN / infinite vertices or faces indexing missing vertices (value checks).
        TypeError: non-integer faces or image size.

    Example:
        >>> import torch
        >>> from kinediff.render import soft_silhouette
        >>> square = torch.tensor([[[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]]])
        >>> faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
        >>> mask = soft_silhouette(square, faces, 8, sigma=0.1)
        >>> mask.shape, bool(mask[0, 3, 4] > 0.99), bool(mask[0, 0, 0] < 0.01)  # [row, column]
        (torch.Size([1, 8, 8]), True, True)
    """
    h, w = _check(verts2d, faces, image_size)
    _check_softness(sigma, eps)
    check_choice(backend, "backend", SILHOUETTE_BACKENDS)
    if backend == "pytorch3d":  # "auto" is "torch" (see the docstring)
        from kinediff.render.pytorch3d_backend import soft_silhouette_pytorch3d

        return soft_silhouette_pytorch3d(verts2d, faces, (h, w), sigma, eps, faces_per_pixel)
    check_count(max_elements, "max_elements")
    if faces.shape[0] == 0:
        return verts2d.new_zeros(verts2d.shape[0], h, w)
    total = _coverage_sum(verts2d, faces, h, w, float(sigma), float(eps), int(max_elements))
    return (total > 0).to(verts2d.dtype) if sigma == 0 else 1.0 - torch.exp(-total)


def _check_softness(sigma: float, eps: float) -> None:
    """``sigma`` a finite number >= 0 and ``eps`` in (0, 1) (NaN fails both)."""
    for name, value in (("sigma", sigma), ("eps", eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0 <= sigma < math.inf:
        raise ValueError(f"sigma must be >= 0 and finite, got {sigma}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps}")


class SoftSilhouetteRasterizer(Configurable, nn.Module):
    """Module form of :func:`soft_silhouette`.

    Args:
        image_size: H = W or (H, W) in pixels.
        sigma: softness in pixels (>= 0; 0 = hard mask for data generation).
        eps: the coverage below which a face is culled, in (0, 1).
        backend: "torch", "pytorch3d" or "auto" (:data:`SILHOUETTE_BACKENDS`).
        max_elements, faces_per_pixel: memory bounds (how, not what: not part of the config).

    Configurable (:mod:`kinediff.core.config`): ``rasterizer.config`` holds ``image_size``,
    ``sigma``, ``eps`` and ``backend``.

    Shape: verts2d (B, V, 2) pixels, faces (F, 3) -> (B, H, W) in [0, 1].
    """

    config_runtime = ("max_elements", "faces_per_pixel")

    def __init__(self, image_size: Annotated[Any, ImageSize()],
                 sigma: Annotated[float, Number(0.0)] = 1.0,
                 eps: Annotated[float, Number(0.0, 1.0, low_open=True, high_open=True)] = 1e-6,
                 max_elements: int = 2**20,
                 backend: Annotated[str, OneOf(*SILHOUETTE_BACKENDS)] = "torch",
                 faces_per_pixel: int | None = None) -> None:
        super().__init__()
        c = self.config
        check_count(max_elements, "max_elements")
        self.image_size = c.image_size
        self.sigma = c.sigma
        self.eps = c.eps
        self.max_elements = max_elements
        self.backend = c.backend
        self.faces_per_pixel = faces_per_pixel

    def forward(self, verts2d: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return soft_silhouette(verts2d, faces, self.image_size, self.sigma, self.eps,
                               self.max_elements, self.backend, self.faces_per_pixel)

    def extra_repr(self) -> str:
        return (f"image_size={self.image_size}, sigma={self.sigma}, eps={self.eps}, "
                f"backend={self.backend!r}")
