"""Chumpy-free, code-free loading and writing of SMPL model pickles.

The official SMPL pickles hold ``chumpy`` objects, and chumpy breaks on numpy >= 1.24 and Python
>= 3.11; a plain ``pickle.load`` also executes whatever globals a file names. kinediff reads them
with a *restricted unpickler*: only numpy's array reconstruction, scipy.sparse matrices and
chumpy's classes are allowed. The chumpy classes are mapped to an inert stand-in that only keeps
its pickled state, and each stand-in is then turned into its numpy array (a chumpy ``Ch`` stores
its value as ``x``). Any other global (``os.system``, ``builtins.eval``, ...) raises
``pickle.UnpicklingError`` naming it, before anything is called.

Every failure to read a pickle raises :class:`PickleFileError` (both a ``pickle.UnpicklingError``
and a ``ValueError``) naming the file: an empty, truncated or damaged file, a forbidden global, and
a file whose content, once its shared references are expanded (as ``numpy.asarray`` would expand
a list that holds the same sub-list many times), would exceed
:data:`~kinediff.core.checks.MAX_FILE_ARRAY_BYTES` — checked on the loaded objects before any such
expansion, so a small file cannot make kinediff allocate gigabytes.

Why hand-written: ``pickle.Unpickler.find_class`` is the standard hook for this, but no library
ships an allow-list for SMPL's files.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from kinediff.core.checks import check_choice, check_file_array_size, file_array_limit

__all__ = [
    "MAX_PICKLE_DEPTH",
    "SMPL_FILE_NAMES",
    "SMPL_REQUIRED_KEYS",
    "PickleFileError",
    "check_pickle_size",
    "clean_smpl_pickle",
    "find_smpl_file",
    "load_restricted_pickle",
    "load_smpl_pickle",
    "save_smpl",
    "write_smpl_pickle",
]

#: File names kinediff looks for, per gender (case-insensitive), in the given folder and in ``smpl/``.
SMPL_FILE_NAMES: dict[str, tuple[str, ...]] = {
    "neutral": ("SMPL_NEUTRAL.pkl", "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
                "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"),
    "male": ("SMPL_MALE.pkl", "basicmodel_m_lbs_10_207_0_v1.0.0.pkl",
             "basicmodel_m_lbs_10_207_0_v1.1.0.pkl"),
    "female": ("SMPL_FEMALE.pkl", "basicModel_f_lbs_10_207_0_v1.0.0.pkl",
               "basicmodel_f_lbs_10_207_0_v1.1.0.pkl"),
}
#: Keys a SMPL pickle must hold for kinediff and smplx to use it.
SMPL_REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                      "kintree_table", "f")

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

_SMPL_HELP = (
    "SMPL is licensed and not shipped with kinediff: register and download 'SMPL for Python' "
    "(v1.0.0 or v1.1.0) at https://smpl.is.tue.mpg.de, and the neutral model from SMPLify "
    "(https://smplify.is.tue.mpg.de). Pass the folder or file to BodyModel.from_smpl(...) or set "
    "KINEDIFF_SMPL_DIR to the folder. Without SMPL, BodyModel.synthetic() gives a built-in "
    "SMPL-compatible body."
)


class _ChumpyStandIn:
    """Inert replacement for any chumpy class: keeps the pickled state, runs no chumpy code."""

    chumpy_class = "chumpy.?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _chumpy_stand_in(module: str, name: str) -> type:
    return type(name, (_ChumpyStandIn,), {"chumpy_class": f"{module}.{name}"})


_SPARSE_CLASSES = {"csc_matrix": sp.csc_matrix, "csr_matrix": sp.csr_matrix,
                   "coo_matrix": sp.coo_matrix}


class PickleFileError(pickle.UnpicklingError, ValueError):
    """A pickle file kinediff cannot or will not read (empty, truncated, damaged, naming a
    forbidden global, or too large once expanded); the message names the file. Both a
    ``pickle.UnpicklingError`` and a ``ValueError``, so either ``except`` catches it."""


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocol 0/1 pickles), limited to the allowed classes."""
    allowed = isinstance(cls, type) and (
        issubclass(cls, _ChumpyStandIn) or cls in _SPARSE_CLASSES.values() or cls is np.ndarray
    )
    if not allowed or base not in (object, np.ndarray):
        raise PickleFileError(f"refusing to reconstruct {cls!r} from a SMPL pickle")
    return object.__new__(cls) if base is object else np.ndarray.__new__(cls, state)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for raw bytes (latin-1 only)."""
    if encoding.lower().replace("-", "") != "latin1" or not isinstance(text, str):
        raise PickleFileError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy, scipy.sparse and chumpy globals (see module doc)."""

    label = "a SMPL pickle"

    def find_class(self, module: str, name: str) -> Any:  # pickle hook
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "_reconstruct", "scalar",
        ):
            return getattr(_multiarray, name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
            return _SPARSE_CLASSES[name]
        if module == "chumpy" or module.startswith("chumpy."):
            return _chumpy_stand_in(module, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if module in ("__builtin__", "builtins") and name in ("object", "set", "frozenset"):
            return {"object": object, "set": set, "frozenset": frozenset}[name]
        raise PickleFileError(
            f"refusing global '{module}.{name}' in {self.label}: only numpy arrays, scipy.sparse "
            f"matrices and chumpy arrays are allowed (nothing from the file is executed)"
        )


#: Deepest nesting of containers kinediff accepts in a pickle (real files nest a few levels).
MAX_PICKLE_DEPTH = 64


def _children(obj: Any) -> list[tuple[Any, Any]] | None:
    """(key, object) pairs an expansion of ``obj`` walks into (None: a leaf)."""
    if isinstance(obj, dict):
        return [*((None, k) for k in obj), *obj.items()]
    if isinstance(obj, (list, tuple)):
        return list(enumerate(obj))
    if isinstance(obj, (set, frozenset)):
        return [(None, c) for c in obj]
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        return list(enumerate(obj.reshape(-1)))
    if isinstance(obj, _ChumpyStandIn):
        return [("state", getattr(obj, "state", None)), *((None, a) for a in getattr(obj, "_args", ()))]
    return None


def _check_sparse(obj: Any, label: str) -> None:
    """Raise :class:`PickleFileError` naming ``label`` unless an unpickled scipy.sparse matrix is
    whole and consistent: a 2-D shape, and index arrays that scipy's own full check accepts. A
    damaged one (an index past its shape, a short ``indptr``) would otherwise be read out of bounds
    by scipy's compiled code when densified, which crashes the process."""
    try:
        shape = tuple(int(d) for d in obj.shape)
        if len(shape) != 2 or min(shape) < 0:
            raise ValueError(f"shape {shape} is not 2-D")
        if hasattr(obj, "check_format"):
            obj.check_format(full_check=True)
        else:  # coo / dok / lil hold no compressed index arrays to check
            obj.tocsr().check_format(full_check=True)
    except (AttributeError, ValueError, TypeError, IndexError) as err:
        raise PickleFileError(f"{label}: a damaged scipy.sparse matrix ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:160]})") from None


def _leaf_size(obj: Any, label: str) -> int:
    """Entries a leaf adds: an array's size, a sparse matrix's stored values (its dense shape
    checked against the limit, since readers densify them), 1 for a scalar or a string."""
    if isinstance(obj, np.ndarray):
        return int(obj.size)
    if sp.issparse(obj):
        _check_sparse(obj, label)
        check_file_array_size(tuple(int(d) for d in obj.shape), 8, label, "a sparse matrix (once dense)")
        return int(obj.nnz)
    if isinstance(obj, (bytes, bytearray)):
        return max(1, len(obj) // 8)
    return 1


def _path_text(trail: tuple[Any, ...]) -> str:
    """Where an object sits in the unpickled data, as an index expression: ['poses'][0]."""
    return "".join(f"[{k!r}]" for k in trail if k is not None) or "the top-level object"


def check_pickle_size(data: Any, label: str, limit: int | None = None) -> None:
    """Raise :class:`PickleFileError` naming ``label`` (and where in the data) if ``data`` (an
    unpickled object) expands to more than ``limit`` bytes (default
    :data:`~kinediff.core.checks.MAX_FILE_ARRAY_BYTES`, 8 bytes an entry) when every shared reference
    is counted as often as it is referenced -- what ``numpy.asarray`` of a list that holds one
    sub-list many times allocates -- or nests deeper than :data:`MAX_PICKLE_DEPTH`, or contains
    itself. Each object is visited once."""
    limit = file_array_limit() if limit is None else limit
    sizes: dict[int, int] = {}
    keep: list[Any] = []  # the objects whose ids are in sizes stay alive while they are used
    stack: list[tuple[Any, tuple[Any, ...], bool]] = [(data, (), False)]
    open_ids: set[int] = set()
    while stack:
        obj, trail, done = stack.pop()
        key = id(obj)
        if done:
            open_ids.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for _, c in _children(obj) or [])
            if sizes[key] * 8 > limit:
                raise PickleFileError(f"{label}: {_path_text(trail)} expands to {sizes[key]} entries once "
                                      f"its shared references are expanded, more than kinediff reads from a "
                                      f"file ({limit // 8} entries); refusing it before allocating")
            continue
        if key in sizes:
            continue
        if key in open_ids:
            raise PickleFileError(f"{label}: {_path_text(trail)} contains itself")
        children = _children(obj)
        if children is None:
            try:
                sizes[key] = _leaf_size(obj, f"{label}: {_path_text(trail)}")
            except ValueError as err:
                raise PickleFileError(str(err)) from None
            keep.append(obj)
            continue
        if len(trail) >= MAX_PICKLE_DEPTH:
            raise PickleFileError(f"{label}: {_path_text(trail)} nests containers more than "
                                  f"{MAX_PICKLE_DEPTH} levels deep")
        open_ids.add(key)
        keep.append(obj)
        stack.append((obj, trail, True))
        stack.extend((c, (*trail, k), False) for k, c in children if id(c) not in sizes)


def _unpickle(path: Path, label: str) -> Any:
    """The restricted unpickler's result for ``path``; every failure a :class:`PickleFileError`
    naming ``label``, the size checked by :func:`check_pickle_size`."""
    if path.is_dir():
        raise FileNotFoundError(f"{label} is a folder, not a file")
    with open(path, "rb") as fh:
        unpickler = _RestrictedUnpickler(fh, encoding="latin1")
        unpickler.label = label
        try:
            data = unpickler.load()
        except PickleFileError:
            raise
        except EOFError:
            raise PickleFileError(f"{label} is empty or ends early (truncated): not a complete "
                                  f"pickle") from None
        except MemoryError:
            raise PickleFileError(f"{label} is damaged: it asks for more memory than a pickle of "
                                  f"{path.stat().st_size} bytes can fill") from None
        except Exception as err:  # noqa: BLE001 - the unpickler signals damaged data with many types
            raise PickleFileError(f"{label} is not a readable pickle (damaged or truncated): "
                                  f"{type(err).__name__}: {err}") from None
    check_pickle_size(data, label)
    return data


def load_restricted_pickle(path: str | os.PathLike, label: str = "a pickle") -> Any:
    """Unpickle a data file (e.g. 3DPW's sequence files) with the same restricted unpickler as
    SMPL files: numpy arrays and plain Python values only, nothing executed; latin-1 for
    Python 2 pickles.

    Raises:
        PickleFileError: (a ``pickle.UnpicklingError`` and a ``ValueError``) a forbidden global
            (named), an empty, truncated or damaged file, or one too large once expanded
            (:func:`check_pickle_size`); the message starts with ``label`` and names the file.
    """
    path = Path(path)
    if str(path) not in label:
        label = f"{label} {path}"
    return _unpickle(path, label)


def _to_array(value: Any, key: str, path: Path) -> Any:
    """Turn chumpy stand-ins into numpy arrays; leave everything else as it is."""
    if isinstance(value, _ChumpyStandIn):
        state = value.state if isinstance(value.state, dict) else {}
        if "x" in state:
            return np.asarray(_to_array(state["x"], key, path))
        raise ValueError(
            f"{path}: key '{key}' holds a {value.chumpy_class} whose value kinediff cannot "
            f"recover without running chumpy (state keys: {sorted(state)})"
        )
    if isinstance(value, np.matrix):
        return np.asarray(value)
    return value


def load_smpl_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Load a SMPL-family pickle as a dict of numpy arrays, without chumpy and without running code.

    Args:
        path: a ``.pkl`` file (official SMPL v1.0.0 / v1.1.0, SMPLify's neutral model, a file written
            by :func:`save_smpl`, ...).

    Returns:
        The pickled dict with every chumpy array replaced by its ``numpy.ndarray``; ``J_regressor``
        stays a ``scipy.sparse`` matrix when it is one in the file.

    Raises:
        FileNotFoundError: the file does not exist.
        PickleFileError: (a ``pickle.UnpicklingError`` and a ``ValueError``, naming the file) the
            file names a global outside the allow-list (its name is in the message; nothing from
            the file has been executed), is empty, truncated or damaged, or is too large once
            expanded (:func:`check_pickle_size`).
        ValueError: the file does not hold a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SMPL model file not found: {path}. {_SMPL_HELP}")
    data = _unpickle(path, f"the SMPL pickle {path}")
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a pickled dict of SMPL arrays, got {type(data).__name__}")
    return {k: _to_array(v, k, path) for k, v in data.items()}


def write_smpl_pickle(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a dict of SMPL arrays as a chumpy-free pickle that ``smplx`` and kinediff load.

    Args:
        data: at least ``SMPL_REQUIRED_KEYS``; values numpy arrays (``J_regressor`` may be scipy sparse).
        path: output ``.pkl`` path (parent folders are created).

    Raises:
        ValueError: a required key is missing or a value is a type other than numpy/scipy/str/list.
    """
    missing = [k for k in SMPL_REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"cannot write a SMPL pickle without keys {missing}")
    clean: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, (np.ndarray, str, list, int, float)) or sp.issparse(v):
            clean[k] = sp.csc_matrix(v) if sp.issparse(v) else v
        elif hasattr(v, "detach"):
            clean[k] = v.detach().cpu().numpy()
        else:
            raise ValueError(f"key '{k}': cannot write a {type(v).__name__} into a SMPL pickle")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(clean, fh, protocol=4)
    return path


def clean_smpl_pickle(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rewrite an official (chumpy) SMPL pickle as a clean one: ``kinediff body clean IN OUT``."""
    data = load_smpl_pickle(src)
    missing = [k for k in SMPL_REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{src}: not a SMPL model pickle, missing keys {missing}")
    return write_smpl_pickle(data, dst)


def save_smpl(body, path: str | os.PathLike) -> Path:
    """Write a :class:`~kinediff.body.BodyModel` as a clean SMPL pickle (``smplx.create`` loads it).

    Args:
        body: a ``BodyModel``.
        path: output ``.pkl`` path; name it ``SMPL_NEUTRAL.pkl`` (or ``_MALE`` / ``_FEMALE``) inside a
            folder for ``smplx.create(folder, model_type="smpl")``.
    """
    return write_smpl_pickle(body.to_smpl_dict(), path)


def find_smpl_file(path_or_dir: str | os.PathLike | None, gender: str = "neutral") -> Path:
    """Resolve a SMPL model file from a file path, a folder, or ``$KINEDIFF_SMPL_DIR``.

    A folder is searched (case-insensitively) for ``SMPL_FILE_NAMES[gender]``, itself and its ``smpl/``
    sub-folder. Raises ``FileNotFoundError`` naming every place and name looked for.
    """
    check_choice(gender, "gender", sorted(SMPL_FILE_NAMES))
    if path_or_dir is None:
        env = os.environ.get("KINEDIFF_SMPL_DIR")
        if not env:
            raise FileNotFoundError(
                f"no SMPL path given and KINEDIFF_SMPL_DIR is not set; looked for "
                f"{', '.join(SMPL_FILE_NAMES[gender])}. {_SMPL_HELP}"
            )
        path_or_dir = env
    p = Path(path_or_dir).expanduser()
    if p.is_file():
        return p
    folders = [p, p / "smpl"] if p.is_dir() else []
    wanted = {n.lower(): n for n in SMPL_FILE_NAMES[gender]}
    for folder in folders:
        if not folder.is_dir():
            continue
        by_lower = {c.name.lower(): c for c in folder.iterdir() if c.is_file()}
        for lower in wanted:
            if lower in by_lower:
                return by_lower[lower]
    where = " and ".join(str(f) for f in folders) if folders else f"{p} (which does not exist)"
    raise FileNotFoundError(
        f"no {gender} SMPL model in {where}: looked for {', '.join(SMPL_FILE_NAMES[gender])}. "
        f"{_SMPL_HELP}"
    )
