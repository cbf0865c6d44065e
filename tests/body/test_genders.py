"""Ground truth by gender: 3DPW and SURREAL GT built with each person's own SMPL model.

The synthetic body's gender stand-ins (same topology, another rest shape, so J0 moves by about a
centimetre) play SMPL's male and female files. Every check is against a computation written here
from the fixture's own numbers, not through the code under test.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tolerances import atol_for

from kinediff.body import BodyModel, BodySet, load_smpl_bodies, save_smpl, synthetic_gendered_bodies
from kinediff.core.camera import project_points
from kinediff.data import PW3D, Augment, Augmented, Surreal, check_sample
from kinediff.testing import write_3dpw_raw, write_surreal_raw

KW = dict(image_size=64, mesh_factors=(4, 4, 4))


@pytest.fixture(scope="module")
def genders(cache_dir, synthetic_path):
    return synthetic_gendered_bodies(cache_dir=cache_dir)


@pytest.fixture(scope="module")
def two_people(tmp_path_factory, genders):
    """3DPW raw: a woman and a man, each written with their own gender's stand-in."""
    root = tmp_path_factory.mktemp("3dpw_genders")
    return root, write_3dpw_raw(root, genders, frames=2, seed=5, genders=("f", "m"))


def _f64(body) -> BodyModel:
    return copy.deepcopy(body).double()  # Module.double() converts in place: never the fixture


def _camera_mesh(body, sample) -> torch.Tensor:
    out = _f64(body)(sample["pose"][None].double(), sample["betas"][None].double())
    return out.vertices[0] + sample["transl"].double()


# -- BodySet -------------------------------------------------------------------------------------

def test_body_set_one_body_or_one_per_gender(genders, body32):
    one = BodySet(body32)
    assert not one.gendered and one.for_gender("female") is body32 and one.reference is body32
    both = BodySet(genders)
    assert both.gendered and both.for_gender("male") is genders["male"]
    assert both.reference is genders["neutral"] and BodySet.of(both) is both
    only_neutral = BodySet({"neutral": genders["neutral"]})
    with pytest.raises(ValueError, match=r"SynthBody: a female record needs the female SMPL model "
                                         r"\(SMPL_FEMALE\.pkl or .*load_smpl_bodies"):
        only_neutral.for_gender("female", "SynthBody")
    with pytest.raises(ValueError, match="a male record needs the male SMPL model"):
        one.require(["neutral", "male"], "x")
    with pytest.raises(ValueError, match="unknown gender 'f'"):
        both.for_gender("f")
    with pytest.raises(ValueError, match="keys must be among"):
        BodySet({"woman": body32})
    with pytest.raises(ValueError, match="empty"):
        BodySet({})
    with pytest.raises(TypeError, match=r"body\['male'\] must be a BodyModel"):
        BodySet({"neutral": body32, "male": "SMPL_MALE.pkl"})
    with pytest.raises(TypeError, match="must be a BodyModel or a mapping"):
        BodySet("SMPL_NEUTRAL.pkl")


def test_body_set_refuses_mixed_topologies(genders, body32):
    data = body32.to_smpl_dict()
    data["f"] = data["f"][:, ::-1].copy()  # same vertices, other faces
    other = BodyModel.from_dict(data)
    with pytest.raises(ValueError, match="does not share the neutral body's topology"):
        BodySet({"neutral": body32, "female": other})


def test_body_set_to_copies_instead_of_converting(body64):
    before = body64.v_template.clone()
    moved = BodySet(body64).to("cpu", torch.float32)
    assert moved.reference.v_template.dtype == torch.float32
    assert body64.v_template.dtype == torch.float64 and torch.equal(body64.v_template, before)
    same = BodySet(body64).to("cpu", torch.float64)
    assert same.reference is body64  # already there: shared, not copied


def test_load_smpl_bodies_reads_the_three_official_files(genders, tmp_path):
    names = {"neutral": "SMPL_NEUTRAL.pkl", "male": "SMPL_MALE.pkl",
             "female": "basicModel_f_lbs_10_207_0_v1.0.0.pkl"}
    for gender, name in names.items():
        save_smpl(genders[gender], tmp_path / name)
    loaded = load_smpl_bodies(tmp_path)
    assert list(loaded) == ["neutral", "male", "female"]
    for gender in names:
        torch.testing.assert_close(loaded[gender].v_template, genders[gender].v_template)
        assert loaded[gender].name == f"smpl-{gender}"
    assert list(load_smpl_bodies(tmp_path, ("female",))) == ["female"]
    (tmp_path / names["female"]).unlink()
    with pytest.raises(FileNotFoundError, match=r"no female SMPL model .*SMPL_FEMALE\.pkl"):
        load_smpl_bodies(tmp_path)
    with pytest.raises(ValueError, match="genders must be among"):
        load_smpl_bodies(tmp_path, ("woman",))


# -- data sets -----------------------------------------------------------------------------------

def test_3dpw_raw_converts_each_person_with_their_own_model(two_people, genders):
    root, info = two_people
    data = PW3D(root, "test", body=genders, **KW)
    assert data.gt_gender == "gendered" and len(data) == 4
    assert [data[i]["gender"] for i in range(4)] == ["female", "female", "male", "male"]
    for i in range(4):
        sample = data[i]
        check_sample(sample)
        body = genders[sample["gender"]]
        torch.testing.assert_close(_camera_mesh(body, sample), info["cam_vertices"][i], atol=1e-5,
                                   rtol=0)
        # the 2D mesh label is the gendered mesh's projection
        verts = _f64(body)(sample["pose"][None].double(), sample["betas"][None].double()).vertices
        expected = project_points(verts[:, data.selection], sample["K"][None].double(),
                                  sample["transl"][None].double())[0]
        torch.testing.assert_close(sample["mesh2d"].double(), expected, atol=1e-3, rtol=0)
        torch.testing.assert_close(sample["vertices"].double(), verts[0], atol=1e-5, rtol=0)
    # the old behaviour, one (neutral) body for everyone, puts the woman's root off by ~1 cm
    neutral = PW3D(root, "test", body=genders["neutral"], **KW)
    assert neutral.gt_gender == "neutral"
    off = (_camera_mesh(genders["female"], neutral[0]) - info["cam_vertices"][0]).norm(dim=-1)
    assert float(off.max()) > 5e-3


def test_3dpw_neutral_gt_with_exact_conversion(two_people, genders):
    root, info = two_people
    data = PW3D(root, "test", body=genders, gt_gender="neutral", **KW)
    sample = data[0]  # converted with her model, labelled with the neutral one
    torch.testing.assert_close(_camera_mesh(genders["female"], sample), info["cam_vertices"][0],
                               atol=1e-5, rtol=0)
    verts = _f64(genders["neutral"])(sample["pose"][None].double(),
                                        sample["betas"][None].double()).vertices
    expected = project_points(verts[:, data.selection], sample["K"][None].double(),
                              sample["transl"][None].double())[0]
    torch.testing.assert_close(sample["mesh2d"].double(), expected, atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="gendered GT needs one SMPL model per gender"):
        PW3D(root, "test", body=genders["neutral"], gt_gender="gendered", **KW)
    with pytest.raises(ValueError, match="gt_gender must be 'gendered' or 'neutral'"):
        PW3D(root, "test", body=genders, gt_gender="male", **KW)
    with pytest.raises(ValueError, match="a male record needs the male SMPL model"):
        PW3D(root, "test", body={k: genders[k] for k in ("neutral", "female")}, **KW)


def test_augmentation_relabels_with_the_samples_own_model(two_people, genders):
    root, _ = two_people
    data = Augmented(PW3D(root, "test", body=genders, **KW), Augment(flip=0.0, occlusion=0.0))
    sample = data[2]  # the man, rotated and scaled
    assert sample["gender"] == "male"
    verts = _f64(genders["male"])(sample["pose"][None].double(),
                                     sample["betas"][None].double()).vertices
    expected = project_points(verts[:, data.dataset.selection], sample["K"][None].double(),
                              sample["transl"][None].double())[0]
    torch.testing.assert_close(sample["mesh2d"].double(), expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(sample["vertices"].double(), verts[0], atol=1e-5, rtol=0)


def test_the_2d_stage_learns_points_of_the_samples_own_mesh(two_people, genders):
    from kinediff import PostureHMR, PostureHMRConfig
    from kinediff.data import collate

    root, _ = two_people
    data = PW3D(root, "test", body=genders, **KW)
    batch = collate([data[i] for i in range(4)])
    model = PostureHMR(PostureHMRConfig.tiny(), genders["neutral"])
    gt = model.ground_truth(batch)
    kp = torch.einsum("kv,bvc->bkc", model.keypoint_weights, batch["vertices"])
    torch.testing.assert_close(gt["points"], project_points(kp, batch["K"], batch["transl"]))
    torch.testing.assert_close(gt["mesh2d"], batch["mesh2d"])
    # the 3D targets are the model's (neutral) body's mesh: its forward path starts at its template
    neutral = genders["neutral"](batch["pose"], batch["betas"]).vertices
    torch.testing.assert_close(gt["vertices"], neutral)
    assert float((batch["vertices"] - neutral).norm(dim=-1).mean()) > 5e-3


def test_surreal_raw_places_each_clip_with_its_own_model(tmp_path, genders):
    info = write_surreal_raw(tmp_path, genders, "val", clips=2, frames=2, seed=4)
    data = Surreal(tmp_path, "val", "raw", body=genders, **KW)
    assert [data[i]["gender"] for i in range(4)] == ["male", "male", "female", "female"]
    for i in range(4):
        sample = data[i]
        torch.testing.assert_close(_camera_mesh(genders[sample["gender"]], sample),
                                   info["cam_vertices"][i], atol=1e-5, rtol=0)


def test_unknown_genders_are_refused_not_read_as_neutral(two_people, genders, tmp_path):
    import pickle
    import shutil

    from kinediff.body.smpl_io import load_restricted_pickle

    root, _ = two_people
    shutil.copytree(root, tmp_path / "copy")
    path = next((tmp_path / "copy" / "sequenceFiles" / "test").glob("*.pkl"))
    data = load_restricted_pickle(path)
    data["genders"] = ["f", "x"]
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    with pytest.raises(ValueError, match=r"person 1: unknown gender 'x'"):
        PW3D(tmp_path / "copy", "test", body=genders, **KW)


def test_data_sets_leave_the_callers_body_as_it_was(two_people, genders, tmp_path):
    from kinediff.data import Human36M, SpinNpz, SynthBody
    from kinediff.testing import write_h36m

    root, _ = two_people
    given = {g: copy.deepcopy(b).double() for g, b in genders.items()}
    before = {g: {k: v.clone() for k, v in b.state_dict().items()} for g, b in given.items()}
    write_h36m(tmp_path / "h36m", genders["neutral"], 9, frames=(0, 5), cameras=(4,))
    surreal = tmp_path / "surreal"
    write_surreal_raw(surreal, genders, "val", clips=1, frames=1)
    pw3d = PW3D(root, "test", body=given, **KW)
    np.savez(tmp_path / "spin.npz", imgname=np.array([str(r.image.relative_to(root))
                                                      for r in pw3d.records]),
             center=np.full((4, 2), 60.0), scale=np.full(4, 0.5),
             pose=np.stack([r.pose for r in pw3d.records]),
             shape=np.stack([r.betas for r in pw3d.records]), gender=np.array(["f", "f", "m", "m"]))
    built = [pw3d, Human36M(tmp_path / "h36m", "test", subjects=(9,), body=given, **KW),
             Surreal(surreal, "val", "raw", body=given, **KW),
             SpinNpz(tmp_path / "spin.npz", root, body=given, **KW),
             SynthBody(2, body=given["neutral"], progress=False, **KW)]
    for data in built:
        data[0]
    for gender, body in given.items():
        assert body.v_template.dtype == torch.float64 and body.v_template.device.type == "cpu"
        for key, value in body.state_dict().items():
            assert torch.equal(value, before[gender][key]), (gender, key)
    assert pw3d.body_for("male").v_template.dtype == torch.float32
    # copies even where no conversion is needed: moving your model later cannot move theirs
    same = PW3D(root, "test", body=genders, **KW)
    assert all(same.bodies.bodies[g] is not genders[g] for g in genders)
    assert SynthBody(1, body=genders["neutral"], progress=False, **KW).body is not genders["neutral"]


def test_evaluate_monitors_a_real_body_without_its_regressor(two_people, genders):
    from kinediff import PostureHMR, PostureHMRConfig
    from kinediff.training import evaluate

    real_named = copy.deepcopy(genders["neutral"])
    real_named.name = "smpl-neutral"  # not the synthetic body: no protocol regressor to build
    model = PostureHMR(PostureHMRConfig.tiny(), real_named)
    data = PW3D(two_people[0], "test", body=genders, **KW)
    with pytest.warns(UserWarning, match="not the protocol's numbers"):
        summary = evaluate(model, data, batch_size=4, progress=False).summary()
    assert summary["samples"] == 4


def test_the_convert_cli_uses_each_persons_own_model(two_people, genders, tmp_path):
    import json

    from kinediff.cli import main

    root, _ = two_people
    smpl = tmp_path / "smpl"
    for gender, name in (("neutral", "SMPL_NEUTRAL.pkl"), ("male", "SMPL_MALE.pkl"),
                         ("female", "SMPL_FEMALE.pkl")):
        save_smpl(genders[gender], smpl / name)
    assert main(["data", "convert", "3dpw", str(root), str(tmp_path / "out"), "--split", "test",
                 "--smpl", str(smpl)]) == 0
    coco = json.loads((tmp_path / "out" / "3DPW_test.json").read_text())
    raw = PW3D(root, "test", body=genders, **KW)
    for ann, record in zip(coco["annotations"], raw.records):
        np.testing.assert_allclose(ann["smpl_param"]["trans"], record.transl, atol=1e-6)


# -- evaluation ----------------------------------------------------------------------------------

def _independent_scores(pred: torch.Tensor, gt: torch.Tensor, regressor: torch.Tensor,
                        joint_map: tuple[int, ...]) -> dict[str, float]:
    """MPVE / MPJPE / PA-MPJPE (mm) written out in numpy: regressed joint 0 as the pelvis of both
    meshes, 14 mapped joints, Umeyama similarity alignment with the reflection fix."""
    p, g, r = pred.double().numpy(), gt.double().numpy(), regressor.double().numpy()
    out = {"mpve": [], "mpjpe": [], "pa_mpjpe": []}
    for pv, gv in zip(p, g):
        pj, gj = r @ pv, r @ gv
        out["mpve"].append(np.linalg.norm((pv - pj[0]) - (gv - gj[0]), axis=1).mean())
        a, b = pj[list(joint_map)] - pj[0], gj[list(joint_map)] - gj[0]
        out["mpjpe"].append(np.linalg.norm(a - b, axis=1).mean())
        ma, mb = a.mean(0), b.mean(0)
        x, y = a - ma, b - mb
        u, s, vt = np.linalg.svd(x.T @ y)
        d = np.sign(np.linalg.det(u @ vt))
        rot = u @ np.diag([1, 1, d]) @ vt
        scale = (s * [1, 1, d]).sum() / (x ** 2).sum()
        out["pa_mpjpe"].append(np.linalg.norm(scale * x @ rot + mb - b, axis=1).mean())
    return {k: 1000 * float(np.mean(v)) for k, v in out.items()}


def test_evaluate_builds_each_samples_gt_with_its_gender(two_people, genders):
    from kinediff import PostureHMR, PostureHMRConfig
    from kinediff.metrics import GRAPHORMER_3DPW, SPIN_3DPW, load_regressor
    from kinediff.training import evaluate

    root, _ = two_people
    torch.manual_seed(0)
    model = PostureHMR(PostureHMRConfig.tiny(), genders["neutral"]).eval()
    data = PW3D(root, "test", body=genders, **KW)
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in ("image", "pose", "betas")}
    with torch.no_grad():
        pred = model.predict(batch["image"])["vertices"]
        gt = torch.cat([genders[g](batch["pose"][i:i + 1], batch["betas"][i:i + 1]).vertices
                        for i, g in enumerate(["female", "female", "male", "male"])])
        gt_neutral = genders["neutral"](batch["pose"], batch["betas"]).vertices
    for protocol, target in ((SPIN_3DPW, gt), (GRAPHORMER_3DPW, gt_neutral)):
        regressor = load_regressor(protocol, body=genders["neutral"])
        got = evaluate(model, data, batch_size=3, protocol=protocol, regressor=regressor,
                       body=genders, progress=False).summary()
        want = _independent_scores(pred, target, regressor, protocol.joint_map)
        for key, value in want.items():
            assert got[key] == pytest.approx(  # mm, float32 points at about 1 m
                value, abs=1000 * atol_for(target, torch.float32, ulps=128)), (protocol.name, key)
    # the gendered GT differs from the neutral one: the test can tell them apart
    assert float((gt - gt_neutral).norm(dim=-1).mean()) > 5e-3
    # a gendered protocol on gendered data with only the neutral model: a clear error
    with pytest.raises(ValueError, match=r"spin-3dpw protocol builds the GT with each sample's "
                                         r"gendered SMPL model: a female record needs the female "
                                         r"SMPL model \(SMPL_FEMALE\.pkl"):
        evaluate(model, data, batch_size=4, protocol=SPIN_3DPW, body=genders["neutral"],
                 progress=False)


def test_the_reproduce_scripts_load_the_models_the_protocol_needs(genders, tmp_path, monkeypatch,
                                                                  capsys):
    from kinediff.apps.reproduce import smpl_bodies
    from kinediff.body import BodyModel
    from kinediff.metrics import GRAPHORMER_3DPW, SPIN_3DPW

    for gender, name in (("neutral", "SMPL_NEUTRAL.pkl"), ("male", "SMPL_MALE.pkl"),
                         ("female", "SMPL_FEMALE.pkl")):
        save_smpl(genders[gender], tmp_path / name)
    loads = []
    original = BodyModel.from_smpl.__func__

    def counting(cls, path=None, gender="neutral", **kw):
        loads.append(gender)
        return original(cls, path, gender, **kw)

    monkeypatch.setattr(BodyModel, "from_smpl", classmethod(counting))
    folder = str(tmp_path)
    neutral, bodies = smpl_bodies("3dpw", folder, SPIN_3DPW)
    assert sorted(loads) == ["female", "male", "neutral"]  # each file read once
    assert bodies["neutral"] is neutral and set(bodies) == {"neutral", "male", "female"}
    assert smpl_bodies("h36m", folder, GRAPHORMER_3DPW)[1].name == "smpl-neutral"
    (tmp_path / "SMPL_FEMALE.pkl").unlink()
    with pytest.raises(SystemExit, match="spin-3dpw protocol builds its ground truth .* "
                                         "SMPL_FEMALE.pkl"):
        smpl_bodies("3dpw", folder, SPIN_3DPW)
    neutral, only = smpl_bodies("3dpw", folder, GRAPHORMER_3DPW)
    assert only is neutral and "no male / female SMPL model" in capsys.readouterr().out
