"""Robustness of the soft rasterizer's inputs (marker ``robust``, harness :mod:`robust`): bad
vertices, faces, softness and image sizes refused naming the argument, and the image sizes it
documents accepting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from robust import Outcome, accepted_if_documented, expect, refusal

from kinediff.render import soft_silhouette

pytestmark = pytest.mark.robust

SQUARE = torch.tensor([[[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]]])
SQUARE_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize(("kw", "error", "message"), [
    (dict(sigma=float("nan")), ValueError, "sigma must be a finite number >= 0, got nan"),
    (dict(sigma=float("inf")), ValueError, "sigma must be a finite number >= 0, got inf"),
    (dict(sigma="1"), ValueError, "sigma must be a finite number >= 0, got '1'"),
    (dict(eps=0.0), ValueError, r"eps must be a finite number in \(0, 1\), got 0.0"),
    (dict(image_size=(8,)), TypeError, "image_size must be an int or a pair of ints"),
    (dict(image_size=8.5), TypeError, "image_size must be an int or a pair of ints"),
    (dict(image_size="8"), TypeError, "image_size must be an int or a pair of ints"),
    (dict(image_size=True), TypeError, "image_size must be an int or a pair of ints"),
    (dict(faces="float"), TypeError, r"faces must be an integer tensor \(int64 or int32\), got torch.float32"),
    (dict(verts="nan"), ValueError, "verts2d contains NaN"),
])
def test_soft_silhouette_refuses_bad_inputs(kw, error, message):
    verts = torch.tensor([[[2.0, 2.0], [6.0, 2.0], [6.0, 6.0]]])
    faces = torch.tensor([[0, 1, 2]])
    if kw.pop("faces", None):
        faces = faces.float()
    if kw.pop("verts", None):
        verts = verts.clone()
        verts[0, 1, 0] = float("nan")
    args = {"image_size": 8, "sigma": 0.5, **kw}
    with pytest.raises(error, match=message):
        soft_silhouette(verts, faces, **args)
    assert soft_silhouette(torch.tensor([[[2.0, 2.0], [6.0, 2.0], [6.0, 6.0]]]), torch.tensor([[0, 1, 2]]),
                           np.int64(8), 0.5).shape == (1, 8, 8)  # numpy integers are sizes


#: name -> (faces, image_size, sigma, what the message names)
SILHOUETTE_FAULTS = {
    "sigma:negative": (SQUARE_FACES, 8, -1.0, [("sigma",)]),
    "faces:out_of_range": (torch.tensor([[0, 1, 7]]), 8, 0.5, [("faces",)]),
    "image_size:3_tuple": (SQUARE_FACES, (8, 8, 3), 0.5, [("image_size",)]),
    "image_size:float_8.0": (SQUARE_FACES, 8.0, 0.5, [("image_size",)]),
    "image_size:zero": (SQUARE_FACES, 0, 0.5, [("image_size",)]),
}


@pytest.mark.parametrize("case", SILHOUETTE_FAULTS)
def test_a_bad_rasterizer_argument_is_refused_naming_it(case):
    faces, size, sigma, names = SILHOUETTE_FAULTS[case]
    expect(refusal(lambda: soft_silhouette(SQUARE.clone(), faces, size, sigma=sigma), names))


@pytest.mark.parametrize(("size", "words"), [((8, 8), ["(H, W)"]), (np.int64(8), ["NumPy"])])
def test_the_image_sizes_it_documents_are_accepted_and_right(size, words):
    reference = soft_silhouette(SQUARE, SQUARE_FACES, 8, sigma=0.5)

    def accept(out) -> Outcome:
        right = out.shape == reference.shape and bool(torch.allclose(out, reference))
        return accepted_if_documented(soft_silhouette, words, right, f"image_size={size!r}")

    expect(refusal(lambda: soft_silhouette(SQUARE, SQUARE_FACES, size, sigma=0.5), [("image_size",)], accept),
           "ok")
