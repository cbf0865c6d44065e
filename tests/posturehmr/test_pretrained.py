"""Shareable pretrained models (save_pretrained / from_pretrained with the body's fingerprint) and
float64 end to end."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from tolerances import atol_for

from kinediff.apps.predict import load_model
from kinediff.body import BodyModel
from kinediff.data import SynthBody
from kinediff.posturehmr import PostureHMR, PostureHMRConfig
from kinediff.training import TrainConfig


@pytest.fixture(scope="module")
def batch(body32, cache_dir):
    return SynthBody(4, seed=5, body=body32, image_size=64, mesh_factors=(4, 4, 4)).batch(range(4))


@pytest.fixture(scope="module", params=["m2p", "regressor"])
def trained(request, body32, batch):
    torch.manual_seed(0)
    decoder = {"class": "GraphormerRegressor"} if request.param == "regressor" else {}
    model = PostureHMR(PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=4), decoder=decoder),
                       body32)
    model.init_coefficients(batch)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(2):  # move the weights away from their initialisation
        opt.zero_grad()
        model.train_mode("3d").loss_3d(batch, torch.Generator().manual_seed(0))["total"].backward()
        opt.step()
    return model.eval()


def test_round_trip_predicts_the_same(trained, body32, batch, tmp_path):
    path = trained.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["body.json", "config.json", "model.safetensors"]
    again = PostureHMR.from_pretrained(path, body32)
    assert not again.training and again.config == trained.config
    a = trained.predict(batch["image"])["vertices"]
    b = again.predict(batch["image"])["vertices"]
    # equal up to the float32 rounding of the up-sampler's stored change from its start
    assert (a - b).abs().max() <= atol_for(b, ulps=128)
    assert torch.equal(load_model(path, body32).predict(batch["image"])["vertices"], b)
    for key, value in again.state_dict().items():
        if not key.startswith("upsampler."):
            assert torch.equal(value, trained.state_dict()[key]), key


def test_no_smpl_data_is_published(trained, body32, tmp_path):
    path = trained.save_pretrained(tmp_path / "model")
    stored = load_file(str(path / "model.safetensors"))
    assert not any(n.startswith(("body.", "hierarchy.", "decoder.template")) for n in stored)
    template = body32.v_template.flatten()
    for tensor in stored.values():
        # no stored tensor holds the template's coordinates (or a coarse subset of them)
        flat = tensor.flatten().float()
        assert not (flat.numel() >= 30 and torch.isin(flat[:30], template).all())
    # the up-sampler (untrained here: the tiny config's loss sits on the coarse mesh) starts as the
    # body's barycentric matrices: what is stored is its change, zero
    for key in ("upsampler.layers.0.weight", "upsampler.layers.1.weight", "upsampler.layers.2.weight"):
        assert not stored[key].any(), key
    body = json.loads((path / "body.json").read_text())
    assert set(body) == {"name", "num_vertices", "num_joints", "num_betas", "template_sha256",
                         "kinediff_version"}
    assert body["template_sha256"] == body32.fingerprint()["template_sha256"]


def test_fingerprint_is_dtype_free_and_tells_bodies_apart(body32, body64, cache_dir):
    assert body32.fingerprint() == body64.fingerprint()
    other = BodyModel.synthetic(1, cache_dir=cache_dir)
    assert other.fingerprint()["template_sha256"] != body32.fingerprint()["template_sha256"]


def test_another_body_is_refused_naming_the_expected_one(trained, cache_dir, tmp_path):
    path = trained.save_pretrained(tmp_path / "model")
    other = BodyModel.synthetic(1, cache_dir=cache_dir)
    with pytest.raises(ValueError, match=r"trained with the body 'synthetic-seed0' \(6890 vertices"):
        PostureHMR.from_pretrained(path, other)


def test_as_trained_drops_only_the_hrnet_file(tmp_path):
    weights = tmp_path / "hrnet.pth"
    weights.write_bytes(b"")
    config = PostureHMRConfig.tiny().update({"head.pretrained": str(weights)})
    assert config.as_trained() == PostureHMRConfig.tiny()
    assert config.as_trained().as_trained() == config.as_trained()


def test_a_local_hrnet_file_is_not_part_of_a_trained_model(trained, body32, tmp_path):
    path = trained.save_pretrained(tmp_path / "model")
    saved = json.loads((path / "config.json").read_text())
    saved["head"]["pretrained"] = str(tmp_path / "someone_elses_hrnet.pth")  # absent here
    (path / "config.json").write_text(json.dumps(saved))
    again = PostureHMR.from_pretrained(path, body32)  # not read: the weights replace it
    assert again.config.head.pretrained is None


def test_saving_over_a_saved_folder_replaces_it_whole(trained, body32, tmp_path):
    path = trained.save_pretrained(tmp_path / "model")
    (path / "config.json").write_text("from an older save")
    trained.save_pretrained(path)
    assert sorted(p.name for p in path.iterdir()) == ["body.json", "config.json", "model.safetensors"]
    assert PostureHMR.from_pretrained(path, body32).config == trained.config
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_folder_holding_other_files_is_never_replaced(trained, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / "3d_last.pt").write_text("a checkpoint")
    with pytest.raises(ValueError, match=r"run holds files a save did not write \(\['3d_last.pt'\]\)"):
        trained.save_pretrained(run)
    assert sorted(p.name for p in run.iterdir()) == ["3d_last.pt"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="afile is a file"):
        trained.save_pretrained(tmp_path / "afile")
    monkeypatch.chdir(tmp_path / "run")
    with pytest.raises(ValueError, match="holds files a save did not write"):
        trained.save_pretrained(".")  # the current folder, resolved: named, not a crash
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert trained.save_pretrained(".") == empty.resolve()


def test_bad_pretrained_folders_are_reported(trained, body32, tmp_path):
    with pytest.raises(FileNotFoundError, match="no pretrained model folder"):
        PostureHMR.from_pretrained(tmp_path / "nothing", body32)
    path = trained.save_pretrained(tmp_path / "model")
    (path / "body.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no body.json"):
        PostureHMR.from_pretrained(path, body32)
    path = trained.save_pretrained(tmp_path / "model2")
    (path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        PostureHMR.from_pretrained(path, body32)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match="model.safetensors has no format_version"):
        PostureHMR.from_pretrained(path, body32)
    save_file({"x": torch.zeros(1)}, str(path / "model.safetensors"),
              metadata={"format_version": "1", "class": "M2PDecoder"})
    with pytest.raises(ValueError, match="holds the weights of 'M2PDecoder', not of 'PostureHMR'"):
        PostureHMR.from_pretrained(path, body32)
    path = trained.save_pretrained(tmp_path / "model3")
    config = json.loads((path / "config.json").read_text())
    config["decoder"]["dim"] = 32
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match this model"):
        PostureHMR.from_pretrained(path, body32)
    (path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a JSON config"):
        PostureHMR.from_pretrained(path, body32)


def test_float64_end_to_end(body64, cache_dir):
    data = SynthBody(2, seed=1, body=body64, image_size=64, mesh_factors=(4, 4, 4))
    batch = data.batch(range(2))
    torch.manual_seed(0)
    model = PostureHMR(PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=2)), body64).double()
    model.init_coefficients(batch)
    terms = model.train_mode("3d").loss_3d(batch, torch.Generator().manual_seed(0))
    assert terms["total"].dtype == torch.float64 and torch.isfinite(terms["total"])
    assert model.eval().predict(batch["image"])["vertices"].dtype == torch.float64
