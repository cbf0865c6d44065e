"""Pickles read from data and model files (:mod:`kinediff.body.smpl_io`): a damaged or truncated
file is named, and nothing expands past kinediff's size limit through shared references, deep
nesting or a sparse matrix."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from kinediff.body.smpl_io import PickleFileError, check_pickle_size, load_restricted_pickle, load_smpl_pickle


def test_pickle_errors_are_both_unpickling_and_value_errors(tmp_path):
    path = tmp_path / "seq.pkl"
    for blob in (b"", b"\x80\x02}q\x00(X", b"\x00garbage", pickle.dumps([1, 2])[:-1]):
        path.write_bytes(blob)
        with pytest.raises(pickle.UnpicklingError) as info:
            load_restricted_pickle(path)
        assert isinstance(info.value, ValueError) and str(path) in str(info.value)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"the SMPL pickle .*seq.pkl is empty or ends early"):
        load_smpl_pickle(path)


@given(depth=st.integers(23, 40))  # 2**23 x 72 x 8 bytes > 4 GiB
def test_a_small_pickle_that_expands_through_shared_references_is_refused(tmp_path_factory, depth):
    x = [0.0] * 72
    for _ in range(depth):
        x = [x, x]
    path = tmp_path_factory.mktemp("bomb") / "seq.pkl"
    path.write_bytes(pickle.dumps({"poses": [x]}, protocol=2))
    assert path.stat().st_size < 5000
    with pytest.raises(PickleFileError, match=r"seq.pkl: \['poses'\]\[0\].* expands to \d+ entries once its "
                                              r"shared references are expanded"):
        load_restricted_pickle(path)


@given(refs=st.integers(1, 200), size=st.integers(1, 50))
def test_the_expansion_limit_counts_every_reference(refs, size):
    data = {"a": [np.zeros(size)] * refs}  # one array referenced refs times
    listed = 1 + refs * size  # the list and, at each reference, the array's entries
    total = 1 + 1 + listed  # the dict, its key, the list
    check_pickle_size(data, "f", limit=8 * total)  # exactly at the limit: accepted
    with pytest.raises(PickleFileError, match=rf"f: the top-level object expands to {total} entries"):
        check_pickle_size(data, "f", limit=8 * (total - 1))
    with pytest.raises(PickleFileError, match=rf"f: \['a'\] expands to {listed} entries"):
        check_pickle_size(data, "f", limit=8 * (listed - 1))


def test_self_references_deep_nesting_and_huge_sparse_matrices_are_refused(tmp_path):
    loop: list = []
    loop.append(loop)
    with pytest.raises(PickleFileError, match=r"f: \[0\] contains itself"):
        check_pickle_size(loop, "f")
    deep: list = [1.0]
    for _ in range(100):
        deep = [deep]
    with pytest.raises(PickleFileError, match="nests containers more than 64 levels deep"):
        check_pickle_size(deep, "f")
    with pytest.raises(PickleFileError, match=r"f: \['J'\]: a sparse matrix \(once dense\) of shape "
                                              r"\(1000000, 1000000\) would take 7.28 TiB"):
        check_pickle_size({"J": sp.csc_matrix((10**6, 10**6))}, "f")
    path = tmp_path / "big.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc")  # bytes claiming 1 TiB
    with pytest.raises(PickleFileError, match="big.pkl"):
        load_restricted_pickle(path)
