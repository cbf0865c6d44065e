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

from typing import Annotated, Any

import torch
from torch import nn

from kinediff.core.checks import (
    ImageSize,
    Number,
    OneOf,
    check_choice,
    check_finite,
    check_image_size,
    check_int,
    check_mesh2d,
    check_number,
    check_tensor,
)
from kinediff.core.config import Configurable
from kinediff.render.coverage import (
    coverage,
    coverage_silhouette,
    pixel_centres,
    signed_distance_to_triangles,
)
from kinediff.render.pytorch3d_backend import soft_silhouette_pytorch3d

__all__ = ["SILHOUETTE_BACKENDS", "SoftSilhouetteRasterizer", "soft_silhouette", "soft_silhouette_naive"]

#: The ``backend`` values of :func:`soft_silhouette`.
SILHOUETTE_BACKENDS = ("torch", "pytorch3d", "auto")


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
    pix = pixel_centres(h, w, verts2d.device, verts2d.dtype).view(1, h * w, 1, 2)
    sd = signed_distance_to_triangles(pix, tris[:, None])  # (B, H*W, F)
    return coverage(sd, sigma).view(-1, h, w)


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
        image_size: H = W (int) or (H, W), positive integers (Python or NumPy integers).
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
        return soft_silhouette_pytorch3d(verts2d, faces, (h, w), sigma, eps, faces_per_pixel)
    check_int(max_elements, "max_elements")
    return coverage_silhouette(verts2d, faces, h, w, sigma, eps, max_elements)


def _check_softness(sigma: float, eps: float) -> None:
    """``sigma`` a finite number >= 0 and ``eps`` in (0, 1) (NaN fails both)."""
    check_number(sigma, "sigma", 0.0)
    check_number(eps, "eps", 0.0, 1.0, low_open=True, high_open=True)


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
        check_int(max_elements, "max_elements")
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
