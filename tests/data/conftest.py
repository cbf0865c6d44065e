"""Fixtures of the data tests: small data sets written in the released file formats
(:mod:`kinediff.testing`), once per session; a test that damages one works on a copy."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from kinediff.data import PW3D, convert_3dpw
from kinediff.testing import write_3dpw_raw, write_h36m

SEQ = "courtyard_fixture_00.pkl"


def fresh_copy(root: Path, dst: Path) -> Path:
    """A copy of the fixture folder ``root`` at ``dst`` (replacing what is there), for a test that
    damages it."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(root, dst)
    return dst


@pytest.fixture(scope="session")
def pw3d(tmp_path_factory, body32):
    """(root, what the writer drew): 3DPW raw (one person, three frames), its COCO-style JSON
    (``3DPW_test.json``) and a SPIN-style npz of it (``3dpw_test.npz``)."""
    root = tmp_path_factory.mktemp("3dpw")
    info = write_3dpw_raw(root, body32, frames=3)
    convert_3dpw(root, root, "test", body=body32)
    records = PW3D(root, "test", body=body32, image_size=32, mesh_factors=(4, 4, 4)).records
    boxes = [r.box for r in records]
    np.savez(root / "3dpw_test.npz", imgname=np.array([str(r.image.relative_to(root)) for r in records]),
             center=np.array([[b[0] + b[2] / 2, b[1] + b[3] / 2] for b in boxes]),
             scale=np.array([max(b[2], b[3]) * 1.2 / 200 for b in boxes]),
             pose=np.stack([r.pose for r in records]), shape=np.stack([r.betas for r in records]),
             gender=np.array(["f"] * 3))
    return root, info


@pytest.fixture(scope="session")
def pw3d_root(pw3d):
    """The folder of :func:`pw3d`."""
    return pw3d[0]


@pytest.fixture(scope="session")
def raw_data(pw3d_root):
    """The content of the 3DPW fixture's sequence file."""
    return pickle.loads((pw3d_root / "sequenceFiles" / "test" / SEQ).read_bytes(), encoding="latin1")


@pytest.fixture(scope="session")
def coco_data(pw3d_root):
    """The content of the 3DPW fixture's COCO-style file."""
    return json.loads((pw3d_root / "3DPW_test.json").read_text())


@pytest.fixture(scope="session")
def image_path(pw3d_root):
    """One image of the 3DPW fixture (160 x 120)."""
    return pw3d_root / "imageFiles" / "courtyard_fixture_00" / "image_00000.jpg"


@pytest.fixture(scope="session")
def h36m(tmp_path_factory, body32):
    """(root, what the writer drew): Human3.6M subject 9 in the Pose2Mesh layout."""
    root = tmp_path_factory.mktemp("h36m")
    return root, write_h36m(root, body32)


@pytest.fixture(scope="session")
def h36m_root(h36m):
    """The folder of :func:`h36m`."""
    return h36m[0]
