"""The z-buffer rasterizer and flat renderer (:mod:`kinediff.render.zbuffer`) that draw SynthBody's
images and the fixtures' renders, and the mesh overlay."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.path import Path as MplPath

from kinediff.render import overlay_mesh, rasterize_faces, render_flat


def test_rasterizer_covers_exactly_the_pixel_centres_inside():
    tri = torch.tensor([[[3.2, 2.1, 2.0], [17.5, 5.3, 2.0], [8.1, 15.7, 2.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    index, bary = rasterize_faces(tri, faces, (20, 24))
    jj, ii = np.meshgrid(np.arange(24) + 0.5, np.arange(20) + 0.5)
    inside = MplPath(tri[0, :, :2].numpy()).contains_points(np.stack([jj.ravel(), ii.ravel()], 1))
    assert np.array_equal((index[0] >= 0).numpy().ravel(), inside)
    covered = index[0] >= 0
    torch.testing.assert_close(bary[0][covered].sum(-1), torch.ones(int(covered.sum()),
                                                                     dtype=torch.float64))


def test_rasterizer_keeps_the_nearest_face_and_drops_faces_behind():
    verts = torch.tensor([[[0.0, 0, 5], [10, 0, 5], [0, 10, 5],
                           [0.0, 0, 2], [10, 0, 2], [0, 10, 2],
                           [0.0, 0, -1], [10, 0, -1], [0, 10, -1]]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    index, _ = rasterize_faces(verts, faces, 10)
    assert set(index[index >= 0].tolist()) == {1}
    with pytest.raises(ValueError, match="faces index vertices"):
        rasterize_faces(verts, torch.tensor([[0, 1, 9]]), 10)
    assert torch.equal(rasterize_faces(verts, faces, np.int64(10))[0], index)  # numpy sizes too
    with pytest.raises(TypeError, match=r"image_size must be an int or a pair of ints \(H, W\), got True"):
        rasterize_faces(verts, faces, True)


def test_render_flat_shapes_and_mask(body32):
    pose = torch.zeros(1, 24, 3)
    pose[0, 0, 0] = math.pi
    verts = body32(pose).vertices + torch.tensor([0.0, 0.0, 3.0])
    K = torch.tensor([[60.0, 0, 32], [0, 60, 32], [0, 0, 1]])
    colors = torch.full((body32.faces.shape[0], 3), 0.8)
    images, masks = render_flat(verts, body32.faces, K, colors, 64)
    assert images.shape == (1, 3, 64, 64) and masks.shape == (1, 64, 64)
    assert 0.03 < masks.mean() < 0.5 and images.min() >= 0 and images.max() <= 1
    assert images[0, :, 0, 0].abs().sum() == 0  # black background where nothing is drawn


def test_overlay_mesh_blends_only_where_the_mesh_covers(body32):
    pose = torch.zeros(1, 24, 3)
    pose[0, 0, 0] = math.pi
    verts = body32(pose).vertices + torch.tensor([0.0, 0.0, 3.0])
    K = torch.tensor([[60.0, 0, 32], [0, 60, 32], [0, 0, 1]])
    images = torch.full((1, 3, 64, 64), 0.2)
    out = overlay_mesh(images, verts, body32.faces, K, alpha=0.5)
    _, mask = render_flat(verts, body32.faces, K, torch.ones(body32.faces.shape[0], 3), 64)
    assert torch.equal(out[:, :, mask[0] == 0], images[:, :, mask[0] == 0])
    assert (out[:, :, mask[0] > 0] > 0.2).all()
