"""Full-frame prediction (issue 19): people in whole images, placed in the image's camera."""

from __future__ import annotations

import pytest
import torch

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.core.camera import default_intrinsics, project_points
from kinediff.posturehmr import predict_frames


@pytest.fixture(scope="module")
def model(body32, cache_dir):
    torch.manual_seed(0)
    m = PostureHMR(PostureHMRConfig.tiny(), body32).eval()
    with torch.no_grad():  # a decoder that moves the mesh (its last layer starts at zero)
        for p in m.decoder.head[-1].parameters():
            p.normal_(0, 0.02)
    return m


def test_people_are_placed_in_the_images_camera(model):
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 120, 160, generator=g), torch.rand(3, 90, 70, generator=g)]
    boxes = [[(20, 10, 50, 90), (90, 30, 40, 60)], [(5, 5, 60, 80)]]
    K2 = torch.tensor([[150.0, 0, 33], [0, 150.0, 47], [0, 0, 1]])
    people = predict_frames(model, images, boxes, K=[None, K2])
    assert [(p.image, p.box) for p in people] == [(0, (20.0, 10.0, 50.0, 90.0)),
                                                    (0, (90.0, 30.0, 40.0, 60.0)),
                                                    (1, (5.0, 5.0, 60.0, 80.0))]
    torch.testing.assert_close(people[0].K, default_intrinsics(120, 160))
    torch.testing.assert_close(people[2].K, K2.double())
    for p in people:
        # projected through the image's K, the placed coarse mesh lands on the model's own 2D mesh
        # mapped back from the crop, within the one-translation fit's residual
        coarse = model.hierarchy.downsample(p.vertices[None].float()).double()
        placed = project_points(coarse, p.K, torch.zeros(1, 3, dtype=torch.float64))[0]
        assert p.fit_error_px == pytest.approx(float((placed - p.mesh2d).norm(dim=-1).mean()), rel=1e-5)
        # and the joints are the mesh's, in the same frame
        torch.testing.assert_close(p.joints, model.body.J_regressor.double() @ p.vertices)
        assert p.vertices[:, 2].min() > 0  # in front of the camera
    # the translation solves the projection equations in the image's own pixels too, written out:
    # f_x (X + t_x) - (u - c_x)(Z + t_z) = 0, f_y (Y + t_y) - (v - c_y)(Z + t_z) = 0 (the crop's
    # equations are these scaled by the crop's zoom, so the least-squares solution is the same)
    import numpy as np

    for p in people:
        coarse = model.hierarchy.downsample((p.vertices - p.transl)[None].float()).double()[0].numpy()
        (fx, _, cx), (_, fy, cy) = p.K.numpy()[:2]
        du, dv = p.mesh2d[:, 0].numpy() - cx, p.mesh2d[:, 1].numpy() - cy
        n = len(du)
        a = np.concatenate([np.stack([np.full(n, fx), np.zeros(n), -du], 1),
                            np.stack([np.zeros(n), np.full(n, fy), -dv], 1)])
        rhs = np.concatenate([du * coarse[:, 2] - fx * coarse[:, 0], dv * coarse[:, 2] - fy * coarse[:, 1]])
        np.testing.assert_allclose(p.transl.numpy(), np.linalg.lstsq(a, rhs, rcond=None)[0], atol=1e-4)


def test_a_person_predicted_whole_frame_is_the_crop_prediction(model):
    """The body-frame mesh of a person equals predict() on the same crop (placement only moves it)."""
    from kinediff.core.camera import box_to_square, crop_square

    image = torch.rand(3, 100, 100, generator=torch.Generator().manual_seed(2))
    (p,) = predict_frames(model, [image], [[(10, 20, 60, 70)]])
    cx, cy, side = box_to_square((10, 20, 60, 70))
    ref = model.predict(crop_square(image, cx, cy, side, 64)[None])["vertices"][0].double()
    torch.testing.assert_close(p.vertices - p.transl, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("boxes, K, message", [
    ([[(10, 10, 0, 20)]], None, "box .* is empty"),
    ([[(500, 10, 20, 20)]], None, "outside the 80 x 60 image"),
    ([[(10, 10, 20)]], None, r"a box is \(x, y, w, h\)"),
    ([[(10, float("nan"), 20, 20)]], None, "not finite"),
    ([[(10, 10, 20, 20)], []], None, "one list of boxes per image: 1 images, 2 lists"),
    ([[(10, 10, 20, 20)]], torch.zeros(3, 3), "positive focal lengths"),
])
def test_bad_boxes_and_cameras_are_refused(model, boxes, K, message):
    with pytest.raises(ValueError, match=message):
        predict_frames(model, [torch.rand(3, 60, 80)], boxes, K=K)


def test_bad_images_are_refused(model):
    with pytest.raises(ValueError, match=r"image 0 must be \(3, H, W\) RGB"):
        predict_frames(model, [torch.rand(4, 60, 80)], [[(10, 10, 20, 20)]])
    with pytest.raises(ValueError, match="image.float\\(\\) / 255"):
        predict_frames(model, [torch.zeros(3, 60, 80, dtype=torch.uint8)], [[(10, 10, 20, 20)]])
    assert predict_frames(model, [torch.rand(3, 60, 80)], [[]]) == []
