"""Malformed body models: a dict in SMPL's layout with bad faces, a bad kinematic tree, bad shape
directions or NaN, and a SMPL pickle holding a damaged sparse matrix (which scipy's compiled code
would read out of bounds when densified: a crash, before this check) are refused with errors that
name the key (and the file)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kinediff.body import BodyModel
from kinediff.body.smpl_io import PickleFileError


@pytest.fixture(scope="module")
def smpl_dict(body32):
    return body32.to_smpl_dict()


def _changed(data, key, value):
    out = dict(data)
    out[key] = value(np.asarray(out[key])) if callable(value) else value
    return out


@pytest.mark.parametrize("key, value, message", [
    ("f", lambda f: f.astype(np.int64) + 10_000, "faces \\(SMPL's 'f'\\) index vertices in \\[10000, 16889\\] but v_template has 6890"),
    ("f", lambda f: f.reshape(-1), "faces \\(SMPL's 'f'\\) must have shape \\(F, 3\\)"),
    ("f", lambda f: f.astype(np.float64) + 0.5, "faces \\(SMPL's 'f'\\) must hold integer vertex indices"),
    ("kintree_table", lambda k: k[0], "kintree_table must be a \\(2, J\\) integer array"),
    ("kintree_table", "abc", "kintree_table must be a \\(2, J\\) integer array"),
    ("kintree_table", lambda k: k * 0 + 99, "parents must list each parent before its child"),
    ("shapedirs", lambda s: s[:, :, 0], "shapedirs must have shape \\(V, 3, K\\)"),
    ("shapedirs", lambda s: s * np.nan, "shapedirs must be finite"),
    ("v_template", lambda v: np.where(np.arange(v.size).reshape(v.shape) == 5, np.inf, v),
     "v_template must be finite: 1 of 20670"),
    ("weights", "x", "weights must be an array of numbers"),
    ("J_regressor", [[1, 2], [3]], "J_regressor must be an array of numbers"),
    ("posedirs", lambda p: p[:, :, :10], "posedirs must have shape"),
])
def test_malformed_dicts_are_refused_naming_the_key(smpl_dict, key, value, message):
    with pytest.raises(ValueError, match=message):
        BodyModel.from_dict(_changed(smpl_dict, key, value))


def test_from_dict_needs_a_dict():
    with pytest.raises(TypeError, match="data must be a dict in SMPL's pickle layout, got list"):
        BodyModel.from_dict([1, 2])


def _damage_indptr(m):
    m.indptr = m.indptr[:-3]


def _damage_indices(m):
    m.indices[0] = 10**7


def _damage_shape(m):
    m._shape = (3,)


def _drop_indices(m):
    del m.indices


@pytest.mark.parametrize("damage, message", [
    (_damage_indptr, "index pointer size"),
    (_damage_indices, "indices must be < 24"),
    (_damage_shape, "shape \\(3,\\) is not 2-D"),
    (_drop_indices, "no attribute 'indices'"),
])
def test_a_damaged_sparse_matrix_in_a_pickle_is_refused(smpl_dict, tmp_path, damage, message):
    data = dict(smpl_dict)
    reg = data["J_regressor"]
    m = sp.csc_matrix(reg.copy() if sp.issparse(reg) else np.asarray(reg))
    damage(m)
    data["J_regressor"] = m
    path = tmp_path / "damaged.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    with pytest.raises(PickleFileError, match=f"{path}: \\['J_regressor'\\]: a damaged "
                                              f"scipy.sparse matrix .*{message}"):
        BodyModel.from_smpl(path)


def test_an_intact_sparse_regressor_still_loads(smpl_dict, tmp_path, body32):
    data = dict(smpl_dict)
    reg = data["J_regressor"]
    data["J_regressor"] = sp.csc_matrix(reg if sp.issparse(reg) else np.asarray(reg))
    path = tmp_path / "sparse.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    again = BodyModel.from_smpl(path)
    torch.testing.assert_close(again.J_regressor, body32.J_regressor)
