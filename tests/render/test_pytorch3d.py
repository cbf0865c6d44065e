"""soft_silhouette(backend="pytorch3d") against the real pytorch3d on the synthetic body's meshes.

Skipped where pytorch3d does not import (CI installs it from ../shared/wheels/ when there). The
cases are chosen for time: pytorch3d's CPU backward pass costs tens of microseconds per (pixel,
face) pair and its forward pass sorts each pixel's K faces, so gradients run on one image, and
some cases render a window of the image (the same pixels per face, K and distances as the whole
image, a fraction of its pixels). Tolerance: 1e-4 on masks, and on gradients 1e-4 of the
largest gradient component (pytorch3d works in float32; the rest is the coverage below ``eps``
that each backend drops differently, see kinediff/render/pytorch3d_backend.py).
"""

from __future__ import annotations

import pytest
import torch

from kinediff import value_checks
from kinediff.render import (
    SoftSilhouetteRasterizer,
    pytorch3d_faces_per_pixel,
    soft_silhouette,
    soft_silhouette_pytorch3d,
)
from kinediff.render import pytorch3d_backend as p3d

pytest.importorskip("pytorch3d", reason="pytorch3d is not installed (CI installs ../shared/wheels/)")

TOL = 1e-4


@pytest.fixture(scope="module")
def meshes(body32):
    """{vertices: (faces, (2, V, 2) float64 2D meshes of two random poses at 64 px)} for the
    431- and 1723-vertex levels (SynthBody's projection scales with the image: x 4 is 256 px)."""
    from kinediff.data import SynthBody
    from kinediff.mesh import MeshHierarchy

    out = {}
    for factors in ((4, 4), (4,)):
        data = SynthBody(2, seed=3, body=body32, image_size=64, mesh_factors=factors,
                         progress=False)
        mesh2d = data.batch(range(2))["mesh2d"].double()
        out[mesh2d.shape[1]] = (MeshHierarchy.from_body(body32, factors).faces(-1), mesh2d)
    return out


def _compare(verts, faces, size, sigma, grad, seed=0):
    """Masks (and gradients of a random pixel weighting) of both backends; returns the masks."""
    weights = torch.rand(verts.shape[0], size, size, dtype=verts.dtype,
                         generator=torch.Generator().manual_seed(seed))
    masks, grads = [], []
    for backend in ("torch", "pytorch3d"):
        x = verts.clone().requires_grad_(grad)
        m = soft_silhouette(x, faces, size, sigma, backend=backend)
        assert m.dtype == verts.dtype and m.shape == (verts.shape[0], size, size)
        masks.append(m.detach())
        if grad:
            grads.append(torch.autograd.grad((m * weights).sum(), x)[0])
    assert float((masks[0] - masks[1]).abs().max()) <= TOL
    if grad:
        scale = float(grads[0].abs().max())
        assert scale > 0
        assert float((grads[0] - grads[1]).abs().max()) <= TOL * scale
    return masks[0]


def _view(mesh2d, size, window):
    """The 2D meshes drawn at ``size`` pixels, shifted so that a ``window``-pixel image shows the
    part of that render around the body's outline at its middle height (the whole image when
    window == size)."""
    verts = mesh2d * (size / 64)
    if window == size:
        return verts
    centre = verts[0].mean(0)
    band = verts[0][(verts[0, :, 1] - centre[1]).abs() < size / 12]
    return verts - (torch.stack([band[:, 0].max(), centre[1]]) - window / 2)


# (vertices, image size, rendered window, sigma, batch, gradients): every level, size and sigma
# that fits the time budget; 1723 vertices at 64 px and sigma 1 (K of about 3,000 of the 3,442
# faces; about 100 s a 64-pixel image in pytorch3d here) is left out
CASES = [(431, 64, 64, 0.5, 2, False), (431, 64, 64, 1.0, 1, False),
         (431, 256, 256, 0.5, 1, False), (431, 256, 256, 1.0, 1, False),
         (1723, 64, 32, 0.5, 1, False), (1723, 256, 64, 1.0, 1, False),
         (431, 64, 64, 0.5, 1, True), (431, 256, 64, 1.0, 1, True),
         (1723, 256, 32, 0.5, 1, True)]


@pytest.mark.parametrize("vertices,size,window,sigma,batch,grad", CASES)
def test_body_meshes_match_the_torch_backend(meshes, vertices, size, window, sigma, batch, grad):
    faces, mesh2d = meshes[vertices]
    verts = _view(mesh2d[:batch], size, window)
    need = pytorch3d_faces_per_pixel(verts, faces, window, sigma)
    assert int(need.max()) > 50  # the old default of 50 faces per pixel got these wrong
    mask = _compare(verts, faces, window, sigma, grad)
    # a body in the picture (and, in a window, the background too)
    assert (0.05 < float(mask.mean()) < 0.6) if window == size else (0.1 < float(mask.mean()) < 0.9)
    if batch > 1:
        assert len(set(need.tolist())) == batch  # each image rendered with its own K


@pytest.mark.parametrize("vertices,size,batch", [(431, 64, 2), (1723, 256, 1)])
def test_hard_masks_are_identical(meshes, vertices, size, batch):
    faces, mesh2d = meshes[vertices]
    verts = mesh2d[:batch] * (size / 64)
    assert pytorch3d_faces_per_pixel(verts, faces, size, 0.0).tolist() == [1] * batch
    hard = [soft_silhouette(verts, faces, size, 0.0, backend=b) for b in ("torch", "pytorch3d")]
    assert torch.equal(hard[0], hard[1]) and float(hard[0].sum()) > 0


def test_hard_masks_cover_pixel_centres_on_edges_like_the_torch_backend():
    # edges through pixel centres, the shared diagonal included (pytorch3d's own inside test is
    # strict, so without the adapter's 1e-6 NDC radius these centres would be holes)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    for size, lo, hi in ((32, 2.5, 20.5), (256, 20.5, 200.5)):
        square = torch.tensor([[[lo, lo], [hi, lo], [hi, hi], [lo, hi]]], dtype=torch.float64)
        hard = [soft_silhouette(square, faces, size, 0.0, backend=b) for b in ("torch", "pytorch3d")]
        assert torch.equal(hard[0], hard[1]) and float(hard[0].sum()) == (hi - lo + 1) ** 2


def test_float32_input_and_the_module_form(meshes):
    faces, mesh2d = meshes[431]
    verts = mesh2d[:1].float()
    raster = SoftSilhouetteRasterizer(64, 0.5, backend="pytorch3d")
    out = raster(verts, faces)
    assert out.dtype == torch.float32
    assert float((out - soft_silhouette(verts.double(), faces, 64, 0.5)).abs().max()) <= TOL


def test_auto_is_the_torch_backend_even_with_pytorch3d_installed(meshes):
    faces, mesh2d = meshes[431]
    verts = mesh2d[:1] / 2
    torch_mask = soft_silhouette(verts, faces, 32, 0.5)
    assert torch.equal(soft_silhouette(verts, faces, 32, 0.5, backend="auto"), torch_mask)
    assert torch.equal(SoftSilhouetteRasterizer(32, 0.5, backend="auto")(verts, faces), torch_mask)


def test_faces_pytorch3d_would_skip_are_drawn_by_the_torch_backend():
    # a regular triangle, a zero-area one (pytorch3d skips it; the torch backend gives it a
    # coverage of up to 1/2 along its segment), a sliver, and one with a NaN vertex (refused by
    # the value checks; ignored by both backends with the checks off)
    verts = torch.tensor([[[4.0, 4.0], [20.0, 6.0], [8.0, 22.0], [10.0, 26.0], [18.0, 26.0],
                           [26.0, 26.0], [24.0, 4.0], [24.0001, 20.0], [24.0, 28.0],
                           [float("nan"), 3.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 1, 9]])
    assert p3d._faces_for_torch(p3d._ndc(verts, 32), faces, 0.1).tolist() == [[False, True, True,
                                                                                 True]]
    with pytest.raises(ValueError, match="verts2d contains NaN"):
        soft_silhouette(verts, faces, 32, 0.7)
    for sigma in (0.7, 0.0):
        x = verts.clone().requires_grad_(sigma > 0)
        with value_checks(False):
            masks = [soft_silhouette(x, faces, 32, sigma, backend=b) for b in ("torch", "pytorch3d")]
        assert torch.isfinite(masks[1]).all()
        assert float((masks[0] - masks[1]).abs().max().detach()) <= 1e-5
        if sigma > 0:
            grads = [torch.autograd.grad(m.sum(), x)[0][0, :9] for m in masks]
            assert torch.allclose(grads[0], grads[1], atol=1e-4)


def test_too_few_faces_per_pixel_raise_instead_of_dropping_faces(meshes):
    faces, mesh2d = meshes[431]
    verts = mesh2d[:1]
    need = int(pytorch3d_faces_per_pixel(verts, faces, 64, 1.0)[0])
    with pytest.raises(ValueError, match=f"needs faces_per_pixel = {need + 1} here"):
        soft_silhouette(verts, faces, 64, 1.0, backend="pytorch3d", faces_per_pixel=50)
    with pytest.raises(ValueError, match="needs faces_per_pixel"):
        SoftSilhouetteRasterizer(64, 1.0, backend="pytorch3d", faces_per_pixel=need)(verts, faces)


def test_a_pixel_with_every_slot_used_raises(meshes, monkeypatch):
    faces, mesh2d = meshes[431]

    def too_small(tris, s, margin, keep=None):
        return torch.full((tris.shape[0],), 9, dtype=torch.long)

    monkeypatch.setattr(p3d, "_max_box_count", too_small)  # the bound that sets K, broken
    with pytest.raises(RuntimeError, match="filled all 10 slots"):
        soft_silhouette_pytorch3d(mesh2d[:1], faces, 64, 0.5)


def test_errors():
    square = torch.tensor([[[2.0, 2.0], [20.0, 2.0], [20.0, 20.0], [2.0, 20.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    with pytest.raises(ValueError, match="square images only"):
        soft_silhouette(square, faces, (32, 40), 1.0, backend="pytorch3d")
    with pytest.raises(ValueError, match="square images only"):
        pytorch3d_faces_per_pixel(square, faces, (32, 40))
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        soft_silhouette_pytorch3d(square, faces, 32, -1.0)
    with pytest.raises(ValueError, match=r"faces_per_pixel must be an integer >= 1 \(or None\), got 0"):
        soft_silhouette_pytorch3d(square, faces, 32, 1.0, faces_per_pixel=0)
    with pytest.raises(ValueError, match="faces index vertices in"):
        soft_silhouette_pytorch3d(square, torch.tensor([[0, 1, 4]]), 32)
    with pytest.raises(ValueError, match="CUDA kernels hold at most 150"):
        p3d._check_slots(151, torch.device("cuda"), None)
    p3d._check_slots(151, torch.device("cpu"), None)  # the CPU build has no such limit
    empty = soft_silhouette_pytorch3d(square, faces[:0], 32, 1.0)
    assert empty.shape == (1, 32, 32) and not empty.any()
