"""Hardening across modules: damaged cache files, config limits read from files, the module entry
point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kinediff import PostureHMRConfig
from kinediff.body import BodyModel
from kinediff.decoders import M2PDecoder
from kinediff.mesh import MeshHierarchy
from kinediff.training import TrainConfig


def _cached_files(cache_dir, tmp_path):
    """The session's synthetic body copied into a cache of its own (drawing it takes seconds),
    and its (4, 4) hierarchy built there."""
    BodyModel.synthetic(0, cache_dir=cache_dir)
    for path in Path(cache_dir).glob("SMPL_SYNTHETIC*seed0.pkl"):
        shutil.copy(path, tmp_path / path.name)
    body = BodyModel.synthetic(0, cache_dir=tmp_path)
    MeshHierarchy.from_body(body, (4, 4), cache_dir=tmp_path)
    return body


@pytest.mark.parametrize("sizes", [(0, 100), (100, 0)])
def test_damaged_cache_files_are_named_and_safe_to_delete(cache_dir, tmp_path, sizes):
    body = _cached_files(cache_dir, tmp_path)
    files = sorted(p for p in tmp_path.iterdir() if p.is_file())
    assert [p.suffix for p in files] == [".pkl", ".npz"] or [p.suffix for p in files] == [".npz", ".pkl"]
    for path in files:  # empty or cut short
        path.write_bytes(path.read_bytes()[:sizes[path.suffix == ".npz"]])
    with pytest.raises(ValueError, match=r"SMPL_SYNTHETIC.*cached synthetic body is damaged.*deleting the file is safe"):
        BodyModel.synthetic(0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"hierarchy_.*\.npz: kinediff's cached mesh hierarchy is damaged"):
        MeshHierarchy.from_body(body, (4, 4), cache_dir=tmp_path)
    for path in files:  # deleting them is indeed safe
        path.unlink()
    assert MeshHierarchy.from_body(body, (4, 4), cache_dir=tmp_path).sizes[-1] > 0


def test_a_hierarchy_cache_without_its_arrays_is_damaged(cache_dir, tmp_path):
    body = _cached_files(cache_dir, tmp_path)
    (path,) = tmp_path.glob("hierarchy_*.npz")
    np.savez(path, other=np.zeros(3))
    with pytest.raises(ValueError, match="arrays missing"):
        MeshHierarchy.from_body(body, (4, 4), cache_dir=tmp_path)


@pytest.mark.parametrize(("kw", "message"), [
    (dict(dim=10**6), r"dim must be an integer in \[1, 2048\], got 1000000"),
    (dict(cond_dim=0), r"cond_dim must be an integer in \[1, 8192\]"),
    (dict(cond_dim=10**6), r"cond_dim must be an integer in \[1, 8192\]"),
    (dict(cond_dim="2"), "cond_dim must be an integer"),
    (dict(num_heads=3), "divisible by num_heads"),
])
def test_m2p_config_limits(kw, message):
    with pytest.raises(ValueError, match=message):
        M2PDecoder.Config(**kw)


@pytest.mark.parametrize(("kw", "message"), [
    (dict(lr_2d=float("inf")), r"lr_2d must be a finite number > 0, got inf"),
    (dict(lr_3d=float("nan")), r"lr_3d must be a finite number > 0, got nan"),
    (dict(epochs=10**7), r"epochs must be an integer in \[1, 10000\], got 10000000"),
    (dict(batch_size=10**6), r"batch_size must be an integer in \[1, 65536\], got 1000000"),
    (dict(grad_clip=float("inf")), "grad_clip must be a finite number > 0, got inf"),
    (dict(epochs=2.0), "epochs must be an integer"),
])
def test_train_config_limits(kw, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kw)


def test_train_config_takes_numpy_numbers():
    train = TrainConfig(epochs=np.int64(3), batch_size=np.int32(8), lr_2d=np.float32(0.5))
    assert (train.epochs, train.batch_size, train.lr_2d) == (3, 8, 0.5)
    assert type(train.epochs) is int and TrainConfig.from_json(train.to_json()) == train


def test_a_config_file_with_an_absurd_value_is_refused_naming_the_file(tmp_path):
    data = json.loads(PostureHMRConfig.tiny().to_json())
    data["head"]["num_points"] = 200_000_000
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"{path}: head.num_points must be an integer"):
        PostureHMRConfig.load(path)


def test_a_head_with_more_markers_than_vertices_is_refused_before_building(body32):
    from kinediff import PostureHMR

    cfg = PostureHMRConfig.tiny()
    data = json.loads(cfg.to_json())
    big = PostureHMRConfig.from_json(json.dumps({**data, "head": {**data["head"], "num_points": 6907}}))
    with pytest.raises(ValueError, match="markers but the body has"):
        PostureHMR(big, _few_vertices(body32))


def _few_vertices(body):
    """A stand-in body reporting fewer vertices than the config's markers (the check reads
    ``num_vertices`` before anything is built from the body's arrays)."""
    class Few:
        num_vertices = 100

        def __getattr__(self, name):
            return getattr(body, name)

    return Few()


def test_python_dash_m_kinediff_runs_the_command_line():
    out = subprocess.run([sys.executable, "-m", "kinediff", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "usage: kinediff" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "kinediff", "predict", "--model", "/nonexistent",
                          "x.png"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "kinediff" in bad.stderr


def test_trimap_loss_refuses_masks_outside_the_unit_interval():
    import torch

    from kinediff.losses import trimap_iou_loss

    gt = torch.zeros(1, 16, 16)
    gt[:, 4:12, 4:12] = 1.0
    with pytest.raises(ValueError, match=r"masks must hold values in \[0, 1\], got values in \[0, 255\]"):
        trimap_iou_loss(gt * 255, gt, width=2)
    with pytest.raises(ValueError, match="masks contains NaN"):
        trimap_iou_loss(torch.where(gt > 0, torch.nan, gt), gt, width=2)
    with pytest.raises(TypeError, match="masks must be floating-point"):
        trimap_iou_loss(gt.to(torch.uint8), gt, width=2)
    with pytest.raises(ValueError, match=r"width must be an integer >= 1 \(pixels\), got 2.5"):
        trimap_iou_loss(gt, gt, width=2.5)  # type: ignore[arg-type]
    assert float(trimap_iou_loss(gt, gt, width=2)) == 0.0


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
    import torch

    from kinediff.render import soft_silhouette

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


def _full_disk(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_leaves_nothing_half_written(body32, tmp_path, monkeypatch):
    import kinediff.core.pretrained

    from kinediff import PostureHMR

    model = PostureHMR(PostureHMRConfig.tiny(), body32)
    monkeypatch.setattr(kinediff.core.pretrained, "save_file", _full_disk)
    with pytest.raises(OSError, match=rf"No space left on device writing {tmp_path / 'model'}"):
        model.save_pretrained(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []  # no temporary folder left
    monkeypatch.undo()
    cfg = PostureHMRConfig.tiny()
    cfg.save(tmp_path)
    before = (tmp_path / "config.json").read_text()
    monkeypatch.setattr(Path, "write_text", _full_disk)
    with pytest.raises(OSError, match="writing .*config.json"):
        PostureHMRConfig.tiny(image_size=32).save(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "config.json").read_text() == before  # the old file kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_weights_with_nan_are_refused_before_any_is_copied(body32, tmp_path):
    import torch

    from kinediff import PostureHMR
    from kinediff.training import load_model_weights, model_weights

    model = PostureHMR(PostureHMRConfig.tiny(), body32)
    state = {k: v.clone() for k, v in model_weights(model).items()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name].view(-1)[0] = float("nan")
    other = PostureHMR(PostureHMRConfig.tiny(), body32)
    before = {k: v.clone() for k, v in model_weights(other).items()}
    with pytest.raises(ValueError, match=rf"ckpt.pt holds NaN or infinite weights in 1 tensor\(s\) \({name}\)"):
        load_model_weights(other, state, "ckpt.pt")
    assert all(torch.equal(v, before[k]) for k, v in model_weights(other).items())


def test_predict_refuses_a_non_finite_mesh2d_naming_it(body32):
    import torch

    from kinediff import PostureHMR

    model = PostureHMR(PostureHMRConfig.tiny(), body32).eval()
    mesh2d = torch.full((1, model.num_coarse, 2), 30.0)
    mesh2d[0, 3, 1] = float("inf")
    with pytest.raises(ValueError, match=r"mesh2d contains NaN or infinite values \(0 NaN, 1 infinite\)"):
        model.predict(torch.rand(1, 3, 64, 64), mesh2d=mesh2d)


def test_noise_schedule_sizes_are_bounded():
    from kinediff.forward import GaussianNoiseSchedule

    with pytest.raises(ValueError, match=r"num_train_steps must be an integer in \[1, 10000\], got 10000000000"):
        GaussianNoiseSchedule(num_train_steps=10**10)
    with pytest.raises(ValueError, match="num_train_steps must be an integer"):
        GaussianNoiseSchedule(num_train_steps=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"num_steps \(20\) must not exceed num_train_steps \(10\)"):
        GaussianNoiseSchedule(num_steps=20, num_train_steps=10)


@pytest.mark.parametrize(("box", "message"), [
    ([0, 0, 1e30, 1e30], "more than 100 times the 40 x 30 image"),
    ([500, 5, 10, 10], "lies outside the 40 x 30 image"),
    ([-50, 5, 10, 10], "lies outside the 40 x 30 image"),
])
def test_predict_refuses_boxes_that_show_nothing_of_the_image(body32, tmp_path, box, message):
    from PIL import Image

    from kinediff import PostureHMR
    from kinediff.apps.predict import predict_images

    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(photo)
    PostureHMR(PostureHMRConfig.tiny(), body32).save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match=rf"photo.png: box 0 .*{message}"):
        predict_images([photo], tmp_path / "model", bbox=box, out_dir=tmp_path / "out", body=body32)
