"""Hard z-buffer rasterization of 3D triangle meshes, and flat-shaded part-coloured images.

This is what SynthBody uses to draw its images and what ``kinediff predict`` uses for overlays.
pytorch3d's ``MeshRasterizer`` does the same job but cannot be installed here, and no other
pip-installable library rasterizes batched torch meshes on CPU and GPU, so it is written by hand:
every face enumerates the pixel centres inside its bounding box (vectorised over faces and
images with ``repeat_interleave``), keeps those inside the triangle, and the nearest face wins per
pixel through ``scatter_reduce(amin)`` on depth. The cost is linear in the covered pixel count, not
in faces x pixels. Not differentiable (use :mod:`kinediff.render.soft` for gradients).

Convention: pixel (i, j) has its centre at (x, y) = (j + 0.5, i + 0.5), as the soft rasterizer.
"""

from __future__ import annotations

import torch

from kinediff.core.camera import project_points
from kinediff.core.checks import check_image_size
from kinediff.render.boxes import box_pixels, face_pixel_boxes

__all__ = ["overlay_mesh", "rasterize_faces", "render_flat"]


def rasterize_faces(screen: torch.Tensor, faces: torch.Tensor, image_size: int | tuple[int, int],
                    max_pairs: int = 20_000_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest face and barycentric coordinates per pixel.

    Args:
        screen: (B, V, 3) vertices as (x pixels, y pixels, depth); faces behind z <= 0 are dropped.
        faces: (F, 3) vertex indices.
        image_size: S or (H, W).
        max_pairs: refuse (ValueError) a call that would test more (face, pixel) pairs than this
            (a guard against meshes whose triangles span the whole image by mistake).

    Returns:
        face_index (B, H, W) long, -1 where no face covers the pixel;
        bary (B, H, W, 3) barycentric coordinates of the pixel centre in that face (0 elsewhere).
    """
    h, w = check_image_size(image_size)
    if screen.dim() != 3 or screen.shape[-1] != 3:
        raise ValueError(f"screen must have shape (B, V, 3), got {tuple(screen.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {tuple(faces.shape)}")
    if faces.numel() and (int(faces.max()) >= screen.shape[1] or int(faces.min()) < 0):
        raise ValueError(f"faces index vertices in [0, {screen.shape[1]}); got values in "
                         f"[{int(faces.min())}, {int(faces.max())}]")
    b, dev = screen.shape[0], screen.device
    tri = screen.detach()[:, faces.to(dev)]  # (B, F, 3, 3)
    z = tri[..., 2]
    j0, i0, bw, count = face_pixel_boxes(tri[..., :2], h, w,
                                         keep=((z > 0) & torch.isfinite(z)).all(-1))  # in front
    face_index = torch.full((b, h, w), -1, dtype=torch.long, device=dev)
    bary_out = torch.zeros(b, h, w, 3, dtype=screen.dtype, device=dev)
    total = int(count.sum())
    if total == 0:
        return face_index, bary_out
    if total > max_pairs:
        raise ValueError(f"{total} (face, pixel) pairs exceed max_pairs={max_pairs}: are the "
                         f"vertices in pixels and in front of the camera?")
    owner, px, py = box_pixels(j0, i0, bw, count)  # owner: b * F + f
    t = tri.reshape(-1, 3, 3)[owner]  # (P, 3, 3)
    cx, cy = px.to(t.dtype) + 0.5, py.to(t.dtype) + 0.5
    # edge functions: w_k is the signed area opposite vertex k
    def edge(a: int, c: int) -> torch.Tensor:
        return (t[:, c, 0] - t[:, a, 0]) * (cy - t[:, a, 1]) - (t[:, c, 1] - t[:, a, 1]) * (cx - t[:, a, 0])
    w0, w1, w2 = edge(1, 2), edge(2, 0), edge(0, 1)
    area = w0 + w1 + w2
    inside = (area.abs() > 1e-12) & (((w0 >= 0) & (w1 >= 0) & (w2 >= 0))
                                     | ((w0 <= 0) & (w1 <= 0) & (w2 <= 0)))
    bary = torch.stack([w0, w1, w2], -1)[inside] / area[inside, None]
    depth = (bary * t[inside, :, 2]).sum(-1)
    img = torch.div(owner[inside], faces.shape[0], rounding_mode="floor")
    pix = (img * h + py[inside]) * w + px[inside]
    zbuf = torch.full((b * h * w,), float("inf"), dtype=depth.dtype, device=dev)
    zbuf.scatter_reduce_(0, pix, depth, reduce="amin")
    win = depth <= zbuf[pix]
    fidx = (owner[inside] % faces.shape[0])[win]
    # ties (a shared edge at equal depth): the larger face index wins, deterministically
    best = torch.full((b * h * w,), -1, dtype=torch.long, device=dev)
    best.scatter_reduce_(0, pix[win], fidx, reduce="amax")
    keep = best[pix[win]] == fidx
    face_index.view(-1)[pix[win][keep]] = fidx[keep]
    bary_out.view(-1, 3)[pix[win][keep]] = bary[win][keep]
    return face_index, bary_out


def render_flat(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                face_colors: torch.Tensor, image_size: int, background: torch.Tensor | None = None,
                light: torch.Tensor | None = None, ambient: float = 0.35
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat-shaded (Lambert + ambient) images of camera-frame meshes.

    Args:
        vertices: (B, V, 3) camera frame, metres (translation included).
        faces: (F, 3). K: (B, 3, 3) or (3, 3) intrinsics in pixels of the output image.
        face_colors: (F, 3) or (B, F, 3) RGB in [0, 1].
        image_size: S (square output).
        background: (B, 3, S, S) in [0, 1], or None for black.
        light: (B, 3) or (3,) direction the light travels (camera frame), default (0, 0.3, 1).
        ambient: the ambient share of the brightness.

    Returns:
        images (B, 3, S, S) in [0, 1] and masks (B, S, S) (1 where the body covers the pixel centre).
    """
    b = vertices.shape[0]
    uv = project_points(vertices, K if K.dim() == 3 else K.expand(b, 3, 3))
    face_index, _ = rasterize_faces(torch.cat([uv, vertices[..., 2:]], -1), faces, image_size)
    tri = vertices[:, faces]
    normal = torch.nn.functional.normalize(torch.cross(tri[:, :, 1] - tri[:, :, 0],
                                                       tri[:, :, 2] - tri[:, :, 0], dim=-1), dim=-1)
    light = torch.tensor([0.0, 0.3, 1.0], dtype=vertices.dtype, device=vertices.device) \
        if light is None else light.to(vertices)
    light = torch.nn.functional.normalize(light.expand(b, 3), dim=-1)
    # two-sided Lambert: the side facing the camera is the lit one
    shade = ambient + (1 - ambient) * (normal * light[:, None]).sum(-1).abs()  # (B, F)
    colors = face_colors.to(vertices).expand(b, -1, -1) * shade[..., None]  # (B, F, 3)
    mask = face_index >= 0
    gathered = torch.gather(colors, 1, face_index.clamp_min(0).flatten(1)[..., None].expand(-1, -1, 3))
    fg = gathered.view(b, image_size, image_size, 3).permute(0, 3, 1, 2)
    bg = torch.zeros_like(fg) if background is None else background.to(fg)
    images = torch.where(mask[:, None], fg, bg).clamp(0, 1)
    return images, mask.to(vertices.dtype)


def overlay_mesh(images: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                 color: tuple[float, float, float] = (0.55, 0.75, 0.95), alpha: float = 0.65
                 ) -> torch.Tensor:
    """Camera-frame meshes drawn over images: ``alpha`` of the shaded mesh where it covers a pixel.

    Shape: images (B, 3, S, S) in [0, 1], vertices (B, V, 3) metres, faces (F, 3), K (B, 3, 3) or
    (3, 3) in pixels of the images -> (B, 3, S, S).
    """
    colors = torch.tensor(color, dtype=vertices.dtype).expand(faces.shape[0], 3)
    render, mask = render_flat(vertices, faces, K, colors, images.shape[-1])
    blended = (1 - alpha) * images + alpha * render.to(images)
    return torch.where(mask[:, None] > 0, blended, images)

