"""NumPy and MATLAB files: every failure a ``ValueError`` naming the file (and the array), and
every array's size checked against :data:`~kinediff.core.checks.MAX_FILE_ARRAY_BYTES` before it is
allocated, so a small damaged or hostile file (an ``.npz`` member whose header claims terabytes, a
compressed MATLAB variable that inflates to gigabytes) is refused instead of exhausting memory.

- :func:`read_npz`, :func:`read_npy`: NumPy archives and arrays (no pickled objects);
- :func:`read_mat`: MATLAB v5 / v7 files (``scipy.io.loadmat``, bounded by
  :func:`check_mat_v5_size`) and v7.3 files (HDF5, through h5py: ``pip install h5py``).
"""

from __future__ import annotations

import ast
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import loadmat
from scipy.io.matlab import MatReadError

from kinediff.core.checks import check_file, check_file_array_size, file_array_limit

__all__ = ["check_mat_v5_size", "read_mat", "read_npy", "read_npz"]

# -- NumPy files --------------------------------------------------------------------------------

_NPY_MAGIC = b"\x93NUMPY"


def _npy_header(fh, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy stream's header (the stream left at the data), checked before
    any allocation: object arrays (pickled data) and sizes over the limit are refused."""
    magic = fh.read(8)
    if len(magic) < 8 or magic[:6] != _NPY_MAGIC:
        raise ValueError(f"{where} is not a NumPy .npy array (no NumPy header)")
    major = magic[6]
    length_bytes = 2 if major == 1 else 4
    raw = fh.read(length_bytes)
    if len(raw) < length_bytes:
        raise ValueError(f"{where}: the NumPy header is truncated")
    length = int.from_bytes(raw, "little")
    text = fh.read(length)
    if len(text) < length or length > 1 << 20:
        raise ValueError(f"{where}: the NumPy header is truncated or damaged")
    try:
        header = ast.literal_eval(text.decode("utf-8" if major >= 3 else "latin1"))
        dtype = np.dtype(header["descr"] if not isinstance(header["descr"], list)
                         else [tuple(f) for f in header["descr"]])
        shape = tuple(header["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: damaged NumPy header ({type(err).__name__}: {err})") from None
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects (a pickled array), which kinediff does not "
                         f"load from data files")
    check_file_array_size(shape, dtype.itemsize, where)
    return shape, dtype


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> np.ndarray:
    with zf.open(info) as fh:
        _npy_header(fh, where)
    with zf.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def read_npz(path: str | os.PathLike, layout: str, keys: tuple[str, ...] | None = None
             ) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (all, or those of ``keys`` present), each member's declared
    size checked against :data:`~kinediff.core.checks.MAX_FILE_ARRAY_BYTES` before it is read.

    Raises ``FileNotFoundError`` (no file; naming ``layout``) and ``ValueError`` naming the file
    for an empty or truncated file, one that is not a zip archive (a lone ``.npy`` is named as
    such), a damaged member (bad CRC, short data), pickled object arrays, or an array over the
    size limit.
    """
    path = check_file(path, layout)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise ValueError(f"{path} is empty; expected {layout}")
    if head[:6] == _NPY_MAGIC:
        raise ValueError(f"{path} is a single NumPy array (.npy), not an .npz archive of named arrays; "
                         f"expected {layout}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npz archive (damaged or truncated: {err}); "
                         f"expected {layout}") from None
    out: dict[str, np.ndarray] = {}
    with zf:
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")
            if keys is not None and key not in keys:
                continue
            where = f"{path} key {key!r}"
            try:
                out[key] = _read_member(zf, info, where)
            except ValueError as err:
                if str(err).startswith(where):
                    raise
                raise ValueError(f"{where}: damaged data ({err})") from None
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
                raise ValueError(f"{where}: damaged data ({type(err).__name__}: {err})") from None
    return out


def read_npy(path: str | os.PathLike, layout: str) -> np.ndarray:
    """The array of a ``.npy`` file, its declared size checked before it is read
    (:data:`~kinediff.core.checks.MAX_FILE_ARRAY_BYTES`); an empty, truncated or damaged file, or
    pickled data, raises ``ValueError`` naming it."""
    path = check_file(path, layout)
    where = str(path)
    with open(path, "rb") as fh:
        if not fh.read(1):
            raise ValueError(f"{path} is empty; expected {layout}")
        fh.seek(0)
        _npy_header(fh, where)
        fh.seek(0)
        try:
            return np.lib.format.read_array(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{path}: damaged data ({err})") from None


# -- MATLAB v5 files --------------------------------------------------------------------------------

_MI_COMPRESSED = 15


def check_mat_v5_size(path: str | os.PathLike, limit: int | None = None) -> None:
    """Raise ``ValueError`` naming ``path`` if a compressed variable of a MATLAB v5 / v7 file
    inflates to more than ``limit`` bytes (default :data:`~kinediff.core.checks.MAX_FILE_ARRAY_BYTES`),
    counted while streaming (nothing is kept), before ``scipy.io.loadmat`` allocates it.

    Uncompressed variables are held in the file, so the file's size bounds them. Files of other
    versions (v4; v7.3, which is HDF5 and whose variables h5py sizes) are left to their readers.
    """
    limit = file_array_limit() if limit is None else limit
    path = Path(path)
    with open(path, "rb") as fh:
        header = fh.read(128)
        if len(header) < 128 or header[124:126] not in (b"\x00\x01", b"\x01\x00"):
            return  # not v5 / v7: the reader decides
        order = "<" if header[126:128] == b"IM" else ">"
        while True:
            tag = fh.read(8)
            if len(tag) < 8:
                return
            kind, nbytes = struct.unpack(order + "II", tag)
            if kind & 0xFFFF0000:  # the small element format: data inside the tag
                continue
            if kind != _MI_COMPRESSED:
                fh.seek(nbytes + (-nbytes % 8), os.SEEK_CUR)
                continue
            inflate = zlib.decompressobj()
            total, left = 0, nbytes
            while left > 0:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                data = chunk
                while data:
                    total += len(inflate.decompress(data, 1 << 22))
                    data = inflate.unconsumed_tail
                    if total > limit:
                        raise ValueError(f"{path}: a compressed MATLAB variable inflates to more than "
                                         f"{limit >> 20} MiB, more than kinediff reads from a file; the "
                                         f"file is damaged or not what it claims")


def read_mat(path: str | os.PathLike, names: list[str]) -> dict[str, Any]:
    """The variables ``names`` (those present) of a MATLAB file, in MATLAB's axis order.

    v5 / v7 files are read with ``scipy.io.loadmat``; v7.3 files (HDF5, e.g. MPI-INF-3DHP's
    test-set ``annot_data.mat``) with h5py, their numeric arrays transposed back to MATLAB's order (h5py
    sees them reversed). Raises ``ValueError`` naming the file when it is not a readable MATLAB
    file, and ``ImportError`` when a v7.3 file meets a Python without h5py.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        header = fh.read(128)
    if header.startswith(b"MATLAB 7.3 MAT-file"):
        try:
            import h5py  # optional (kinediff[mpii3d]): only v7.3 files need it
        except ImportError:
            raise ImportError(f"{path} is a MATLAB v7.3 (HDF5) file: reading it needs h5py "
                              f"(pip install h5py), or re-save it as v7 in MATLAB") from None
        out: dict[str, Any] = {}
        try:
            with h5py.File(path, "r") as f:
                for name in names:
                    if name not in f:
                        continue
                    node = f[name]
                    if not isinstance(node, h5py.Dataset) or node.dtype.kind not in "biuf":
                        raise ValueError(f"{path}: variable {name!r} is not a numeric array "
                                         f"(cells and structs of v7.3 files are not supported)")
                    check_file_array_size(tuple(int(d) for d in node.shape), node.dtype.itemsize,
                                          f"{path}", f"variable {name!r}")
                    out[name] = np.asarray(node[()]).T
        except OSError as err:
            raise ValueError(f"{path} is not a readable MATLAB v7.3 (HDF5) file: {err}") from None
        return out
    check_mat_v5_size(path)
    try:
        return {k: v for k, v in loadmat(str(path), variable_names=names).items() if k in names}
    except (MatReadError, ValueError, TypeError, OSError, EOFError, IndexError, KeyError,
            NotImplementedError) as err:  # scipy signals damaged files with any of these
        raise ValueError(f"{path} is not a readable MATLAB file: {err}") from None
