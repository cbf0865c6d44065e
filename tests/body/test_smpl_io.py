"""Chumpy-free SMPL loading: fake-chumpy fixtures, malicious pickles, file lookup errors."""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
import smplx
import torch

from kinediff.body import (
    BodyModel,
    clean_smpl_pickle,
    find_smpl_file,
    load_smpl_pickle,
    save_smpl,
    write_smpl_pickle,
)


@pytest.fixture
def fake_chumpy(monkeypatch):
    """Modules ``chumpy`` and ``chumpy.ch`` with a ``Ch`` class pickled the way chumpy pickles."""
    ch_mod = types.ModuleType("chumpy.ch")

    class Ch:  # chumpy's Ch keeps its value in 'x' and pickles its __dict__ minus caches
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            self._dirty_vars = {"x"}
            self._itr = None
            self._depends_on_deps = {}

        def __getstate__(self):
            return dict(self.__dict__)

    class Select(Ch):  # a chumpy op without 'x': kinediff cannot evaluate it without chumpy
        def __init__(self, a):
            self.a = a

    for cls in (Ch, Select):
        cls.__module__ = "chumpy.ch"
        cls.__qualname__ = cls.__name__
        setattr(ch_mod, cls.__name__, cls)
    pkg = types.ModuleType("chumpy")
    pkg.ch = ch_mod
    monkeypatch.setitem(sys.modules, "chumpy", pkg)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch_mod)
    return ch_mod


def _official_like(body, ch):
    """A dict shaped like the official SMPL v1.0.0 pickle: chumpy arrays, sparse regressor."""
    data = body.to_smpl_dict()
    data.pop("shape_names", None)
    for key in ("v_template", "shapedirs", "J", "weights"):
        data[key] = ch.Ch(data[key])
    data["J_regressor"] = sp.csc_matrix(data["J_regressor"])
    data["bs_style"] = "lbs"
    return data


@pytest.mark.parametrize("protocol", [0, 2])
def test_loads_fake_chumpy_pickle(fake_chumpy, body64, tmp_path, protocol):
    path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    with open(path, "wb") as fh:
        pickle.dump(_official_like(body64, fake_chumpy), fh, protocol=protocol)
    del sys.modules["chumpy"], sys.modules["chumpy.ch"]  # loading must not need chumpy
    data = load_smpl_pickle(path)
    assert type(data["shapedirs"]) is np.ndarray and data["shapedirs"].shape == (6890, 3, 10)
    assert sp.issparse(data["J_regressor"])
    assert np.array_equal(data["v_template"], body64.v_template.numpy())
    model = BodyModel.from_smpl(tmp_path, gender="neutral", dtype=torch.float64)
    pose = torch.randn(2, 24, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(model(pose).vertices, body64(pose).vertices, atol=1e-12)


def test_chumpy_object_without_value_is_reported(fake_chumpy, body64, tmp_path):
    data = _official_like(body64, fake_chumpy)
    data["shapedirs"] = fake_chumpy.Select(fake_chumpy.Ch([1.0]))
    path = tmp_path / "m.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    with pytest.raises(ValueError, match="key 'shapedirs' holds a chumpy.ch.Select"):
        load_smpl_pickle(path)


class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_refuses_code_execution_without_side_effect(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"v_template": np.zeros((3, 3)), "x": _Evil(f"touch {marker}")}, fh,
                    protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing global '(posix|os|nt)\.system'"):
        load_smpl_pickle(path)
    assert not marker.exists()


def test_refuses_other_builtins(tmp_path):
    path = tmp_path / "eval.pkl"
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="refusing global 'builtins.eval'"):
        load_smpl_pickle(path)


def test_refuses_non_dict(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="expected a pickled dict"):
        load_smpl_pickle(path)


def test_save_smpl_loads_in_smplx(body64, tmp_path):
    save_smpl(body64, tmp_path / "smpl" / "SMPL_NEUTRAL.pkl")
    ref = smplx.create(str(tmp_path), model_type="smpl", gender="neutral", dtype=torch.float64)
    pose = torch.randn(2, 24, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = ref(global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(2, -1))
    # smplx casts every model array through float32 (its to_np default), hence ~1e-7 m, not 1e-15
    assert (out.vertices - body64(pose).vertices).abs().max() < 1e-6
    # and the written file goes through the restricted unpickler
    again = BodyModel.from_smpl(tmp_path, dtype=torch.float64)
    assert torch.equal(again.v_template, body64.v_template)


def test_clean_rewrites_chumpy_files(fake_chumpy, body64, tmp_path):
    src = tmp_path / "official.pkl"
    with open(src, "wb") as fh:
        pickle.dump(_official_like(body64, fake_chumpy), fh, protocol=2)
    dst = clean_smpl_pickle(src, tmp_path / "clean" / "SMPL_NEUTRAL.pkl")
    with open(dst, "rb") as fh:
        plain = pickle.load(fh)  # a plain unpickler: no chumpy class is referenced any more
    assert all(not type(v).__module__.startswith("chumpy") for v in plain.values())


def test_write_requires_smpl_keys(tmp_path):
    with pytest.raises(ValueError, match="without keys"):
        write_smpl_pickle({"v_template": np.zeros((3, 3))}, tmp_path / "x.pkl")


def test_missing_file_names_the_expected_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        BodyModel.from_smpl(tmp_path, gender="female")
    text = str(err.value)
    for needle in ("SMPL_FEMALE.pkl", "basicModel_f_lbs_10_207_0_v1.0.0.pkl", "KINEDIFF_SMPL_DIR",
                   "smpl.is.tue.mpg.de", str(tmp_path)):
        assert needle in text
    monkeypatch.delenv("KINEDIFF_SMPL_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="KINEDIFF_SMPL_DIR is not set"):
        find_smpl_file(None)
    with pytest.raises(FileNotFoundError, match="SMPL model file not found"):
        load_smpl_pickle(tmp_path / "nope.pkl")


def test_file_lookup_env_subfolder_and_case(body64, tmp_path, monkeypatch):
    target = tmp_path / "smpl" / "basicmodel_m_lbs_10_207_0_v1.1.0.pkl"
    save_smpl(body64, target)
    monkeypatch.setenv("KINEDIFF_SMPL_DIR", str(tmp_path))
    assert find_smpl_file(None, "male") == target
    assert BodyModel.from_smpl(gender="male").name == "smpl-male"


def test_wrong_gender_string():
    with pytest.raises(ValueError, match="gender must be 'female', 'male' or 'neutral', got"):
        BodyModel.from_smpl("/nonexistent", gender="man")
