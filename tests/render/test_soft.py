"""The soft silhouette rasterizer: areas, convergence, equivariance, gradients, culling, and its
optional pytorch3d backend."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kinediff.render import SoftSilhouetteRasterizer, soft_silhouette, soft_silhouette_naive

SQUARE_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])


def _square(x0, y0, x1, y1, dtype=torch.float64):
    return torch.tensor([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], dtype=dtype)


def test_hard_mask_area_of_a_polygon():
    tri = torch.tensor([[[5.3, 4.1], [50.7, 12.2], [20.2, 55.9]]], dtype=torch.float64)
    area = 0.5 * abs((tri[0, 1, 0] - tri[0, 0, 0]) * (tri[0, 2, 1] - tri[0, 0, 1])
                     - (tri[0, 1, 1] - tri[0, 0, 1]) * (tri[0, 2, 0] - tri[0, 0, 0]))
    hard = soft_silhouette(tri, torch.tensor([[0, 1, 2]]), 64, sigma=0.0)
    rows = 55.9 - 4.1
    assert abs(float(hard.sum()) - float(area)) < rows  # within one pixel per row of the polygon
    assert float(soft_silhouette(_square(10, 10, 40, 30), SQUARE_FACES, 64, 0.0).sum()) == 600.0


def test_soft_masks_converge_to_the_hard_one():
    v = _square(10.2, 10.7, 40.4, 30.1)
    hard = soft_silhouette(v, SQUARE_FACES, 64, 0.0)
    gaps = [float((soft_silhouette(v, SQUARE_FACES, 64, s) - hard).abs().mean())
            for s in (2.0, 0.5, 0.1, 0.02)]
    assert all(a > b for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-3


def test_translating_the_mesh_translates_the_mask():
    v = _square(10.2, 10.7, 30.4, 25.1)
    m = soft_silhouette(v, SQUARE_FACES, 64, 0.7)
    moved = soft_silhouette(v + torch.tensor([5.0, 3.0], dtype=torch.float64), SQUARE_FACES, 64, 0.7)
    assert torch.allclose(moved[:, 3:, 5:], m[:, :-3, :-5], atol=1e-6)


def test_area_gradient_points_outward():
    v = _square(10.0, 10.0, 40.0, 30.0).requires_grad_()
    soft_silhouette(v, SQUARE_FACES, 64, 1.0).sum().backward()
    g = v.grad[0]
    # corners: (10,10) top-left, (40,10) top-right, (40,30) bottom-right, (10,30) bottom-left
    for corner, outward in zip(g, ([-1, -1], [1, -1], [1, 1], [-1, 1])):
        assert corner[0] * outward[0] > 0 and corner[1] * outward[1] > 0


@given(st.integers(0, 2**31 - 1))
def test_culling_agrees_with_the_naive_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    v = torch.rand(2, 12, 2, generator=gen, dtype=torch.float64) * 40 + 2
    f = torch.randint(0, 12, (10, 3), generator=gen)
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    culled = soft_silhouette(v, f, (40, 48), 0.8, max_elements=500)  # many chunks
    assert torch.allclose(culled, soft_silhouette_naive(v, f, (40, 48), 0.8), atol=1e-5)
    weights = torch.rand(2, 40, 48, generator=gen, dtype=torch.float64)
    grads = [torch.autograd.grad((render(v.requires_grad_(), f, (40, 48), 0.8) * weights).sum(), v)[0]
             for render in (lambda *a: soft_silhouette(*a, max_elements=500), soft_silhouette_naive)]
    assert torch.allclose(grads[0], grads[1], atol=1e-4)  # the culled terms are < eps each
    hard = soft_silhouette(v.detach(), f, (40, 48), 0.0, max_elements=500)
    assert torch.equal(hard, soft_silhouette_naive(v.detach(), f, (40, 48), 0.0))


def test_rasterizer_module_and_bad_input():
    r = SoftSilhouetteRasterizer(32, sigma=0.5)
    assert r(_square(2, 2, 20, 20), SQUARE_FACES).shape == (1, 32, 32)
    with pytest.raises(ValueError, match="faces index vertices in"):
        r(_square(2, 2, 20, 20), torch.tensor([[0, 1, 4]]))
    with pytest.raises(ValueError, match=r"verts2d must have shape \(B, V, 2\)"):
        r(torch.zeros(4, 2), SQUARE_FACES)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        soft_silhouette(_square(2, 2, 20, 20), SQUARE_FACES, 32, -1.0)


# -- the optional pytorch3d backend ----------------------------------------------------------------

def _fake_pytorch3d(monkeypatch):
    """Stand-ins for pytorch3d's Meshes and rasterize_meshes written from their documented contract
    (NDC +x left, +y up, pixel column i at 1 - (2 i + 1) / S; squared signed distances, negative
    inside; blur_radius squared; nearest faces_per_pixel kept, used slots first, -1 padded; packed
    face indices; bin_size=0 is naive rasterization), so the adapter's conversions are tested where
    pytorch3d is not installed (tests/render/test_pytorch3d.py runs the real one)."""
    import sys
    import types

    import torch.nn.functional as F

    from kinediff.render import signed_distance_to_triangles

    class Meshes:
        def __init__(self, verts, faces):
            self.verts, self.faces = verts, faces

    def rasterize_meshes(meshes, image_size, blur_radius, faces_per_pixel, bin_size,
                         perspective_correct):
        assert bin_size == 0  # the adapter asks for naive rasterization: no per-bin face limit
        b, n_faces, s = meshes.verts.shape[0], meshes.faces.shape[1], image_size
        centre = 1 - (2 * torch.arange(s, dtype=meshes.verts.dtype) + 1) / s
        pix = torch.stack(torch.meshgrid(centre, centre, indexing="xy"), -1).view(1, s * s, 1, 2)
        tris = torch.stack([meshes.verts[i, meshes.faces[i]] for i in range(b)])[..., :2]
        d = signed_distance_to_triangles(pix, tris[:, None])  # (B, S*S, F)
        sq = torch.sign(d) * d.square()
        keep = (d < 0) | (sq < blur_radius)
        order = torch.where(keep, sq, torch.inf).argsort(-1)[..., :faces_per_pixel]
        kept = keep.gather(-1, order)
        packed = order + n_faces * torch.arange(b)[:, None, None]
        pix_to_face = torch.where(kept, packed, -1).view(b, s, s, -1)
        dists = torch.where(kept, sq.gather(-1, order), -1.0).view(b, s, s, -1)
        pad = faces_per_pixel - pix_to_face.shape[-1]  # K slots even where K > F
        return F.pad(pix_to_face, (0, pad), value=-1), None, None, F.pad(dists, (0, pad), value=-1)

    modules = {name: types.ModuleType(name) for name in (
        "pytorch3d", "pytorch3d.renderer", "pytorch3d.renderer.mesh",
        "pytorch3d.renderer.mesh.rasterize_meshes", "pytorch3d.structures")}
    modules["pytorch3d.renderer.mesh.rasterize_meshes"].rasterize_meshes = rasterize_meshes
    modules["pytorch3d.structures"].Meshes = Meshes
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def _backends_agree(backend, atol):
    gen = torch.Generator().manual_seed(3)
    v = torch.rand(2, 12, 2, generator=gen, dtype=torch.float64) * 28 + 2
    f = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [0, 4, 8]])
    weights = torch.rand(2, 32, 32, generator=gen, dtype=torch.float64)
    masks, grads = [], []
    for name in ("torch", backend):
        x = v.clone().requires_grad_()
        m = soft_silhouette(x, f, 32, 0.8, backend=name)
        masks.append(m.detach())
        grads.append(torch.autograd.grad((m * weights).sum(), x)[0])
    assert torch.allclose(masks[0], masks[1], atol=atol)
    assert torch.allclose(grads[0], grads[1], atol=100 * atol)
    hard = [soft_silhouette(v, f, 32, 0.0, backend=name) for name in ("torch", backend)]
    assert (hard[0] != hard[1]).sum() <= 2  # pixel centres exactly on an edge may differ


def test_pytorch3d_adapter_follows_pytorch3ds_documented_conventions(monkeypatch):
    _fake_pytorch3d(monkeypatch)
    from kinediff.render import pytorch3d_available

    assert pytorch3d_available()
    _backends_agree("pytorch3d", 1e-5)  # the adapter hands pytorch3d float32
    _backends_agree("auto", 1e-5)
    v = _square(2, 2, 20, 20)
    # "auto" is the torch backend even where pytorch3d imports (it must never change results)
    assert torch.equal(soft_silhouette(v, SQUARE_FACES, 32, 1.0, backend="auto"),
                       soft_silhouette(v, SQUARE_FACES, 32, 1.0))
    # K is counted, never guessed: a limit below what the mesh needs raises
    with pytest.raises(ValueError, match="needs faces_per_pixel"):
        soft_silhouette(v, SQUARE_FACES, 32, 1.0, backend="pytorch3d", faces_per_pixel=1)
    with pytest.raises(ValueError, match="square images only"):
        soft_silhouette(_square(2, 2, 20, 20), SQUARE_FACES, (32, 40), 1.0, backend="pytorch3d")
    from kinediff.render import soft_silhouette_pytorch3d

    with pytest.raises(ValueError, match="faces index vertices in"):
        soft_silhouette_pytorch3d(_square(2, 2, 20, 20), torch.tensor([[0, 1, 4]]), 32)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        soft_silhouette_pytorch3d(_square(2, 2, 20, 20), SQUARE_FACES, 32, -1.0)


def test_pytorch3d_backend_errors_without_pytorch3d(monkeypatch):
    import sys

    # import fails, even where the real pytorch3d (and so its submodules) was imported before
    for name in [n for n in sys.modules if n.split(".")[0] == "pytorch3d"] + ["pytorch3d"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="backend='pytorch3d' needs pytorch3d"):
        soft_silhouette(_square(2, 2, 20, 20), SQUARE_FACES, 32, 1.0, backend="pytorch3d")
    auto = SoftSilhouetteRasterizer(32, 1.0, backend="auto")(_square(2, 2, 20, 20), SQUARE_FACES)
    assert torch.equal(auto, soft_silhouette(_square(2, 2, 20, 20), SQUARE_FACES, 32, 1.0))
    with pytest.raises(ValueError, match="backend must be"):
        SoftSilhouetteRasterizer(32, backend="opengl")


def test_pytorch3d_backend_matches_torch_when_installed():
    pytest.importorskip("pytorch3d", reason="pytorch3d is not installed (CI installs ../shared/wheels/)")
    _backends_agree("pytorch3d", 1e-4)  # pytorch3d rasterizes in float32
