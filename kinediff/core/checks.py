"""kinediff's one check vocabulary: shapes, dtypes, choices and numeric ranges of arguments and
config fields, and the values of tensors, each raising one error whose message names the
argument, what was expected and what was given.

Every module that validates its inputs calls these instead of its own copy, so the same mistake
reads the same everywhere:

- tensors: :func:`check_tensor`, :func:`check_shape`, :func:`check_last_dims`,
  :func:`check_pair_shape`, :func:`check_same_shape`, :func:`check_faces`, :func:`check_images`;
  shapes are written as the message shows them: ``("B", "V", 2)`` is (B, V, 2), a string naming a
  size that may be anything and an integer a size that must match;
- values read from tensors (:func:`value_checks` switches them off): :func:`check_finite`,
  :func:`check_unit_interval`;
- scalars: :func:`check_int` and :func:`check_number` (return the value normalised: a numpy
  integer as an int), :func:`check_choice`, :func:`check_image_size`;
- config fields: the rules :class:`Int`, :class:`Number`, :class:`OneOf`, :class:`Text`,
  :class:`FilePath`, :class:`Ints` and :class:`Optional`, written into a
  constructor's annotations (``dim: Annotated[int, Int(1, 2048)] = 128``) and applied by
  :mod:`kinediff.core.config` whenever a config is made;
- files: :func:`check_file_array_size` (before allocating what a file declares);
- file records (what a data set's annotation files hold; every error names the file, the record
  and the key: ``"<where>: key 'pose' has shape (69,), expected (72,)"``): :func:`check_dir`,
  :func:`check_file`, :func:`check_key`, :func:`check_name`, :func:`check_numbers`,
  :func:`check_array`, :func:`check_finite_array`, :func:`check_pose_array`,
  :func:`check_record_int`, :func:`check_ids`, :func:`check_image_ref`, :func:`check_box`, :func:`check_intrinsics`,
  :func:`check_rotation`.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "MAX_FILE_ARRAY_BYTES",
    "FilePath",
    "ImageSize",
    "Int",
    "Ints",
    "Number",
    "OneOf",
    "Optional",
    "Rule",
    "Text",
    "check_array",
    "check_box",
    "check_choice",
    "check_dir",
    "check_faces",
    "check_file",
    "check_file_array_size",
    "check_finite",
    "check_finite_array",
    "check_ids",
    "check_image_ref",
    "check_image_size",
    "check_images",
    "check_int",
    "check_intrinsics",
    "check_key",
    "check_last_dims",
    "check_mesh2d",
    "check_name",
    "check_number",
    "check_numbers",
    "check_pair_shape",
    "check_pose_array",
    "check_record_int",
    "check_rotation",
    "check_same_shape",
    "check_shape",
    "check_tensor",
    "check_unit_interval",
    "compile_options",
    "file_array_limit",
    "shape_text",
    "short_repr",
    "value_checks",
    "value_checks_enabled",
]

Dims = Sequence[int | str]

# Scoped like torch.no_grad (a context variable: per thread and per asyncio task), never a module
# flag that one caller sets for everybody.
_VALUE_CHECKS: ContextVar[bool] = ContextVar("kinediff_value_checks", default=True)


def value_checks_enabled() -> bool:
    """Whether kinediff runs its value checks here (see :func:`value_checks`).

    False inside ``torch.compile``d code (a check would break the graph) and inside
    ``value_checks(False)``; True otherwise.
    """
    if torch.compiler.is_compiling():
        return False
    return _VALUE_CHECKS.get()


@contextlib.contextmanager
def value_checks(enabled: bool = True) -> Iterator[None]:
    """Switch kinediff's value checks on or off inside a ``with`` block.

    kinediff checks two kinds of things about its inputs. Shapes, dtypes, devices and option
    values are read from the tensors' metadata: always checked, free. Values (finiteness, index
    ranges, a step inside the schedule, a rotation matrix that is a rotation) must be read from
    the tensors' data: on a GPU each such check waits for the device to finish the work queued
    before it (a host synchronisation) and stops ``torch.compile`` from capturing one graph. Those
    are the value checks this switch controls. They are on by default (a wrong input gets a clear
    error at the call that passed it), off inside ``torch.compile`` (always), and
    :class:`~kinediff.training.Trainer` turns them off for its training steps (its data was checked
    when the records were read; ``Trainer(check_values=True)`` keeps them on).

    Scoped like ``torch.no_grad``: it holds for the current thread (or asyncio task) until the
    block ends, and blocks nest.

    Example:
        >>> import torch
        >>> from kinediff import value_checks, value_checks_enabled
        >>> with value_checks(False):
        ...     value_checks_enabled()
        False
        >>> value_checks_enabled()
        True
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False, got {enabled!r}")
    token = _VALUE_CHECKS.set(enabled)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def check_finite(x: torch.Tensor, name: str) -> None:
    """A value check (:func:`value_checks`): raise ``ValueError`` unless every entry of ``x`` is
    finite. Message: ``"{name} contains NaN or infinite values (3 NaN, 1 infinite)"``."""
    if not value_checks_enabled() or not x.is_floating_point():
        return
    if not bool(torch.isfinite(x).all()):
        nan, inf = _nonfinite_counts(x)
        raise ValueError(f"{name} contains NaN or infinite values ({nan} NaN, {inf} infinite)")


def _nonfinite_counts(x: torch.Tensor | np.ndarray) -> tuple[int, int]:
    """(NaN entries, infinite entries) of a tensor or a NumPy array: the counts that
    :func:`check_finite` and :func:`check_finite_array` report."""
    lib: Any = torch if isinstance(x, torch.Tensor) else np
    nan = int(lib.isnan(x).sum())
    return nan, int((~lib.isfinite(x)).sum()) - nan


def shape_text(dims: Sequence[Any]) -> str:
    """A shape as messages write it: ("B", "N", 3) -> "(B, N, 3)", (4,) -> "(4,)", () -> "()"."""
    inner = ", ".join(str(d) for d in dims)
    return f"({inner},)" if len(dims) == 1 else f"({inner})"


def _matches(x: torch.Tensor, dims: Dims) -> bool:
    """Whether ``x`` has ``len(dims)`` dimensions and every integer entry of ``dims`` its size."""
    return x.dim() == len(dims) and all(isinstance(d, str) or d == s for d, s in zip(dims, x.shape))


def check_tensor(x: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``.

    Message: ``"{name} must be a torch.Tensor, got {type}"``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def check_shape(x: torch.Tensor, name: str, dims: Dims) -> None:
    """Raise ``ValueError`` unless ``x`` has exactly the shape ``dims`` (strings: any size).

    Shape: ``x`` of ``len(dims)`` dimensions, e.g. dims ("B", "V", 2) for (B, V, 2) or
    ``tuple(other.shape)`` for the shape of another tensor.
    Message: ``"{name} must have shape (B, V, 2), got (4, 5)"``.
    """
    if not _matches(x, dims):
        raise ValueError(f"{name} must have shape {shape_text(dims)}, got {tuple(x.shape)}")


def check_last_dims(x: Any, name: str, shape: Sequence[int | None]) -> None:
    """Raise unless ``x`` is a tensor whose trailing dimensions are ``shape`` (``None``: any size).

    Shape: ``x`` ``(*, *shape)``, any number of leading dimensions (none included).
    Raises ``TypeError`` for a non-tensor (:func:`check_tensor`) and ``ValueError`` otherwise, with
    ``None`` written N: ``"{name} must have shape (*, N, 3, 3), got (4, 3)"``.
    """
    check_tensor(x, name)
    tail = tuple(x.shape[x.dim() - len(shape):]) if x.dim() >= len(shape) else None
    if tail is None or any(w is not None and w != t for w, t in zip(shape, tail)):
        want = "(*, " + ", ".join("N" if w is None else str(w) for w in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def check_pair_shape(a: torch.Tensor, b: torch.Tensor, dims: Dims,
                     names: tuple[str, str] = ("pred", "gt"), context: str | None = None) -> None:
    """Raise ``ValueError`` unless ``a`` has the shape ``dims`` (as :func:`check_shape`) and ``b``
    the same shape as ``a``.

    Shape: a, b both ``dims``, e.g. ("B", "N", 3) for (B, N, 3).
    Message: ``"[{context}: ]pred and gt must both have shape (B, N, 3); got (2, 5, 3) and (2, 4, 3)"``.
    """
    if not _matches(a, dims) or a.shape != b.shape:
        prefix = f"{context}: " if context else ""
        raise ValueError(f"{prefix}{names[0]} and {names[1]} must both have shape {shape_text(dims)}; "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str | tuple[str, str]) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape (any shape).

    ``names``: the two arguments' names, giving ``"pred and gt differ in shape: (1, 2) and (1, 3)"``,
    or one noun for both, giving ``"mask shapes differ: (1, 2) and (1, 3)"``.
    """
    if a.shape == b.shape:
        return
    shapes = f"{tuple(a.shape)} and {tuple(b.shape)}"
    if isinstance(names, str):
        raise ValueError(f"{names} shapes differ: {shapes}")
    raise ValueError(f"{names[0]} and {names[1]} differ in shape: {shapes}")


def check_faces(faces: torch.Tensor, n_vertices: int, vertices: str = "verts2d") -> None:
    """Raise ``ValueError`` unless ``faces`` (F, 3) index the ``n_vertices`` vertices of the tensor
    named ``vertices``.

    Shape: faces (F, 3) integers in [0, n_vertices); F may be 0. The index range is a value check
    (:func:`value_checks`); the shape and the integer dtype are always checked.
    Messages: ``"faces must be an integer tensor (int64 or int32), got torch.float32"``;
    ``"faces must have shape (F, 3), got (4,)"``;
    ``"faces index vertices in [0, 7] but verts2d has 5 vertices"``.
    """
    check_shape(faces, "faces", ("F", 3))
    if faces.dtype not in (torch.int64, torch.int32):  # what indexing takes (uint8 would be a mask)
        raise TypeError(f"faces must be an integer tensor (int64 or int32), got {faces.dtype}")
    if value_checks_enabled() and faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= n_vertices):
        raise ValueError(f"faces index vertices in [{int(faces.min())}, {int(faces.max())}] but "
                         f"{vertices} has {n_vertices} vertices")


def check_mesh2d(verts2d: torch.Tensor, faces: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``verts2d`` is (B, V, 2) and ``faces`` (F, 3) index its V vertices.

    Messages: ``"verts2d must have shape (B, V, 2), got ..."``, then :func:`check_faces`'s.
    """
    check_shape(verts2d, "verts2d", ("B", "V", 2))
    check_faces(faces, verts2d.shape[1], "verts2d")


def check_image_size(image_size: int | Sequence[int], name: str = "image_size") -> tuple[int, int]:
    """(H, W) from ``image_size``, H = W (an int) or (H, W) (two ints), both >= 1; ``name`` is
    the argument's name in the messages.

    Raises ``TypeError`` for anything else (a float, a bool, a sequence of another length or with
    non-integers) and ``ValueError`` for a size below 1. Messages:
    ``"image_size must be an int or a pair of ints (H, W), got (64.5, 64)"``;
    ``"image_size must be positive, got (0, 4)"`` (the argument as given).
    """
    if hasattr(image_size, "tolist") and not _is_integer(image_size):  # a numpy array or a tensor
        image_size = image_size.tolist()

    if _is_integer(image_size):
        h = w = image_size  # type: ignore[assignment]
    elif (isinstance(image_size, Sequence) and not isinstance(image_size, str)
          and len(image_size) == 2 and all(_is_integer(x) for x in image_size)):
        h, w = image_size
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (H, W), got {image_size!r}")
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive, got {image_size}")
    return int(h), int(w)


def _choices_text(allowed: Sequence[Any]) -> str:
    """("a", "b", "c") -> "'a', 'b' or 'c'"; one choice -> "'a'"."""
    texts = [repr(a) for a in allowed]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"


def check_choice(value: Any, name: str, allowed: Sequence[Any], shown: str | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``.

    Message: ``"{name} must be 'torch', 'pytorch3d' or 'auto', got 'cuda'"``; ``shown`` replaces the
    list of choices (e.g. ``"'sum' (over xyz) or 'mean'"``).
    """
    if value not in allowed:
        raise ValueError(f"{name} must be {shown or _choices_text(allowed)}, got {value!r}")


def check_unit_interval(x: torch.Tensor, name: str) -> None:
    """A value check (:func:`value_checks`): raise ``ValueError`` unless ``x`` holds finite values
    in [0, 1] (a mask or a silhouette; a 0/255 mask is the usual mistake).

    Message: ``"{name} must hold values in [0, 1], got values in [0, 255]"``.
    """
    if not value_checks_enabled() or not x.numel():
        return
    check_finite(x, name)
    low, high = float(x.detach().min()), float(x.detach().max())
    if low < 0 or high > 1:
        raise ValueError(f"{name} must hold values in [0, 1], got values in [{low:g}, {high:g}]")


def check_images(images: Any, size: int, name: str = "images") -> None:
    """Raise unless ``images`` is a float (B, 3, size, size) batch of crops in [0, 1].

    Always checked: the type, shape and dtype (``TypeError`` for an integer image, with the hint
    to divide by 255). Value checks (:func:`value_checks`): NaN / infinite entries and values
    outside [0, 1] (by more than 1e-3: an image in 0..255 as floats, or one already normalised
    with ImageNet's mean and std, would give a wrong mesh without any error).
    """
    check_tensor(images, name)
    if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
        raise ValueError(f"{name} must have shape (B, 3, {size}, {size}), got {tuple(images.shape)}")
    if not images.is_floating_point():
        hint = " (divide a uint8 image by 255: images.float() / 255)" if images.dtype == torch.uint8 else ""
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got {images.dtype}{hint}")
    if not value_checks_enabled() or not images.numel():
        return
    check_finite(images, name)
    low, high = float(images.detach().min()), float(images.detach().max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{low:.4g}, {high:.4g}] (an image "
                         f"in 0..255 needs dividing by 255; kinediff normalises crops itself)")


def compile_options(compile: Any) -> dict[str, Any] | None:
    """A ``compile=`` argument as ``torch.compile``'s keyword options: None for False, {} for
    True, a dict as given; ``TypeError`` for anything else."""
    if isinstance(compile, bool):
        return {} if compile else None
    if isinstance(compile, dict) and all(isinstance(k, str) for k in compile):
        return dict(compile)
    raise TypeError(f"compile must be True, False or a dict of torch.compile options, got {compile!r}")


def check_like(x: torch.Tensor, name: str, ref: torch.Tensor, owner: str = "body model") -> None:
    """Raise ``ValueError`` unless ``x`` has the dtype and device of ``ref`` (the buffers of a
    ``body``: the message says how to convert either)."""
    if x.dtype != ref.dtype:
        raise ValueError(f"{name} is {x.dtype} but the {owner}'s buffers are {ref.dtype}; "
                         f"call body.to({x.dtype}) or convert {name}")
    if x.device != ref.device:
        raise ValueError(f"{name} is on {x.device} but the {owner} is on {ref.device}; "
                         f"call body.to({str(x.device)!r}) or move {name}")


#: The largest array, in bytes, that kinediff reads from a data or model file (4 GiB). Readers
#: check an array's declared size against it *before* allocating (an ``.npz`` member's header, a
#: MATLAB variable's dimensions, a pickle's size once its shared references are expanded), so a
#: small damaged or hostile file cannot ask for gigabytes. The largest real annotation arrays are
#: hundreds of megabytes.
MAX_FILE_ARRAY_BYTES = 4 << 30


def file_array_limit() -> int:
    """:data:`MAX_FILE_ARRAY_BYTES` as it is now (readers call this rather than copying the
    constant, so one value bounds them all)."""
    return MAX_FILE_ARRAY_BYTES


def check_file_array_size(shape: Sequence[int], itemsize: int, where: str, what: str = "an array",
                          limit: int | None = None) -> None:
    """Raise ``ValueError`` before allocating an array of ``shape`` with ``itemsize`` bytes per
    entry, read from a file, if it would exceed ``limit`` bytes (default
    :data:`MAX_FILE_ARRAY_BYTES`) or its shape is not a tuple of non-negative integers.

    Message: ``"{where}: {what} of shape (100000, 1000000) would take 745 GiB, more than kinediff
    reads from a file (4 GiB); the file is damaged or not what it claims"``.
    """
    limit = file_array_limit() if limit is None else limit
    dims = tuple(shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ValueError(f"{where}: {what} has an invalid shape {dims}")
    size = int(itemsize)
    for d in dims:
        size *= d
    if size > limit:
        raise ValueError(f"{where}: {what} of shape {dims} would take {_bytes_text(size)}, more than "
                         f"kinediff reads from a file ({_bytes_text(limit)}); the file is damaged or "
                         f"not what it claims")


def short_repr(value: Any) -> str:
    """A value as error messages show it: its repr, cut to 80 characters ("..." at the end)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- file records -------------------------------------------------------------------------------
#
# The checks of what a data set's files hold. ``where`` names the file and the record ("3DPW_test.json
# annotations[3]", "seq.pkl person 0 frame 12"), ``key`` the entry; every error is a ``ValueError``
# (``FileNotFoundError`` for a missing file or folder) that starts with ``where`` and names ``key``.
# Values are NumPy arrays (float64) or Python scalars; these checks are always on (not value checks:
# a file is read once, before training).

def check_dir(path: str | os.PathLike, layout: str) -> Path:
    """``path`` as a Path (``~`` expanded) if it is a folder, else ``FileNotFoundError``:
    ``"no directory PATH; expected {layout}"`` (``layout`` says what the folder should hold)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"no directory {path}; expected {layout}")
    return path


def check_file(path: str | os.PathLike, layout: str) -> Path:
    """``path`` as a Path (``~`` expanded) if it is a file, else ``FileNotFoundError``:
    ``"no file PATH; expected {layout}"``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}; expected {layout}")
    return path


def check_key(data: Any, key: Any, where: str) -> Any:
    """``data[key]`` of a file's content (a dict key or a list index), else ``ValueError``:
    ``"<where>: missing or malformed key 'pose' (KeyError)"`` (``IndexError`` for a list too
    short, ``TypeError`` for ``data`` that cannot be indexed)."""
    try:
        return data[key]
    except (KeyError, IndexError, TypeError) as err:
        raise ValueError(f"{where}: missing or malformed key {key!r} ({type(err).__name__})") from None


def check_name(data: Any, key: str, where: str) -> str:
    """``data[key]`` as text (a file or folder name; bytes decoded as UTF-8), else ``ValueError``:
    ``"<where>: key 'file_name' must be a non-empty file or folder name, got 5"`` (a number or None
    is refused, never turned into a file name) or :func:`check_key`'s."""
    value = check_key(data, key, where)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: key {key!r} must be a non-empty file or folder name, got "
                         f"{short_repr(value)}")
    return str(value)


def check_finite_array(array: np.ndarray, where: str, key: str) -> np.ndarray:
    """``array`` unchanged if every entry is finite, else ``ValueError`` counting the bad entries
    and locating the first: ``"<where>: key 'pose' holds 1 NaN and 0 infinite value(s), the
    first at index (5,)"``. The file-record form of :func:`check_finite` (always checked)."""
    finite = np.isfinite(array)
    if not finite.all():
        nan, inf = _nonfinite_counts(np.asarray(array))
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{where}: key {key!r} holds {nan} NaN and {inf} infinite value(s), the first "
                         f"at index {first}")
    return array


def check_numbers(value: Any, where: str, key: str) -> np.ndarray:
    """``value`` (any shape) as a float64 array, else ``ValueError``: ``"<where>: key 'pose' is
    not numeric: got ['500']"``. Booleans and integers are numbers; text ("500"), None and other
    objects are refused, never converted."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: key {key!r} is not numeric: {err}") from None
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"{where}: key {key!r} is not numeric: got {short_repr(value)}")
    return raw.astype(np.float64, copy=False)


def check_array(value: Any, shape: tuple[int, ...], where: str, key: str, exact: bool = False,
                finite: bool = False) -> np.ndarray:
    """``value`` as a float64 array ending in ``shape`` (of exactly ``shape`` with ``exact``;
    finite with ``finite``), else ``ValueError``.

    Shape: value ``(..., *shape)`` -> the same, float64; e.g. shape (72,) for a pose or (3, 3) for
    intrinsics. Messages: :func:`check_numbers`'s, ``"<where>: key 'pose' has shape (69,),
    expected (..., 72)"`` (with ``exact``: ``"expected (72,)"``) and :func:`check_finite_array`'s.
    """
    array = check_numbers(value, where, key)
    if exact:
        if array.shape != tuple(shape):
            raise ValueError(f"{where}: key {key!r} has shape {array.shape}, expected {tuple(shape)}")
    elif array.shape[-len(shape):] != shape:
        raise ValueError(f"{where}: key {key!r} has shape {array.shape}, expected (..., "
                         f"{', '.join(map(str, shape))})")
    return check_finite_array(array, where, key) if finite else array


def check_pose_array(value: Any, where: str, key: str) -> np.ndarray:
    """An axis-angle SMPL pose given flat (72,) or per joint (24, 3), as a finite (72,) float64
    array; else ``ValueError``: ``"<where>: key 'pose' has shape (69,), expected (72,) or
    (24, 3)"``, :func:`check_numbers`' or :func:`check_finite_array`'s."""
    pose = check_numbers(value, where, key)
    if pose.shape not in ((72,), (24, 3)):
        raise ValueError(f"{where}: key {key!r} has shape {pose.shape}, expected (72,) or (24, 3)")
    return check_finite_array(pose.reshape(72), where, key)


def check_record_int(value: Any, where: str, key: str) -> int:
    """``value`` (an id, an index, a frame number) as an int: :func:`check_int` with
    ``integral_floats`` (4 and 4.0 are read as 4; text "4", booleans, fractions and None are
    refused). Message: ``"<where>: key 'image_id' must be an integer, got 0.5"``."""
    return check_int(value, f"{where}: key {key!r}", low=None, integral_floats=True)


def check_ids(entries: Any, where: str, what: str = "images") -> dict[int, Any]:
    """The entries of a COCO-style list (``what``: "images") by their integer ``id``, else
    ``ValueError`` naming the entry: :func:`check_key`'s or :func:`check_record_int`'s
    (``"<where> images[2]: key 'id' must be an integer, got '7'"``) or ``"<where> images[2]: key
    'id' 0 repeats an earlier entry's id"``."""
    out: dict[int, Any] = {}
    for i, entry in enumerate(entries):
        entry_where = f"{where} {what}[{i}]"
        key = check_record_int(check_key(entry, "id", entry_where), entry_where, "id")
        if key in out:
            raise ValueError(f"{entry_where}: key 'id' {key} repeats an earlier entry's id")
        out[key] = entry
    return out


def check_image_ref(annotation: Any, images: dict[int, Any], where: str) -> tuple[int, Any]:
    """An annotation's ``image_id`` and its image among ``images`` (:func:`check_ids`' output),
    else ``ValueError``: :func:`check_record_int`'s or ``"<where>: image_id 7 is not among the
    images"``."""
    image_id = check_record_int(check_key(annotation, "image_id", where), where, "image_id")
    if image_id not in images:
        raise ValueError(f"{where}: image_id {image_id} is not among the images")
    return image_id, images[image_id]


def check_box(value: Any, where: str, key: str = "bbox") -> tuple[float, float, float, float]:
    """A person box (x, y, w, h) in pixels: four finite numbers, w and h positive; else
    ``ValueError``: ``"<where>: key 'bbox' must have a positive width and height, got [...]"`` or
    :func:`check_array`'s."""
    box = check_array(value, (4,), where, key, exact=True, finite=True)
    if not (box[2] > 0 and box[3] > 0):
        raise ValueError(f"{where}: key {key!r} must have a positive width and height, got {box.tolist()}")
    return tuple(float(v) for v in box)  # type: ignore[return-value]


def check_intrinsics(value: Any, where: str, key: str = "K") -> np.ndarray:
    """Intrinsics K (3, 3) in pixels as a float64 array: finite, positive focal lengths K[0, 0] and
    K[1, 1], last row (0, 0, 1) within 1e-6; else ``ValueError``: ``"<where>: key 'K' must have
    positive focal lengths K[0, 0] and K[1, 1], got 0.0 and 500.0"``, ``"<where>: key 'K' must have
    the last row (0, 0, 1), got [0, 0, 2]"`` or :func:`check_array`'s."""
    K = check_array(value, (3, 3), where, key, exact=True, finite=True)
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise ValueError(f"{where}: key {key!r} must have positive focal lengths K[0, 0] and K[1, 1], "
                         f"got {K[0, 0]} and {K[1, 1]}")
    if np.abs(K[2] - (0.0, 0.0, 1.0)).max() > 1e-6:
        raise ValueError(f"{where}: key {key!r} must have the last row (0, 0, 1), got {K[2].tolist()}")
    return K


def check_rotation(value: Any, where: str, key: str, tol: float = 1e-2) -> np.ndarray:
    """A rotation matrix R (3, 3) as a float64 array: finite, ``max |R R^T - I| <= tol``,
    determinant positive; else ``ValueError``: ``"<where>: key 'R' is not a rotation matrix
    (|R R^T - I| = 8, det 27)"`` or :func:`check_array`'s."""
    R = check_array(value, (3, 3), where, key, exact=True, finite=True)
    err = float(np.abs(R @ R.T - np.eye(3)).max())
    if err > tol or np.linalg.det(R) < 0:
        raise ValueError(f"{where}: key {key!r} is not a rotation matrix (|R R^T - I| = {err:.3g}, "
                         f"det {np.linalg.det(R):.3g})")
    return R


def _bytes_text(n: int) -> str:
    """A byte count as messages write it: 3 GiB, 12 MiB, 512 bytes."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


# -- scalars ------------------------------------------------------------------------------------

def _is_integer(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value: Any, name: str, low: int | None = 1, high: int | None = None,
              what: str = "", integral_floats: bool = False) -> int:
    """``value`` as an int in [low, high] (None: unbounded on that side); a Python or numpy
    integer, not a bool, a float or a string. With ``integral_floats``, a finite float with an
    integral value (4.0, as JSON writers often store ids and frame numbers) is read as that
    integer; 4.5, NaN and infinities are still refused.

    Raises ``ValueError``: ``"{name} must be an integer in [1, 2048]{ (what)}, got 4096"``.
    """
    if (integral_floats and isinstance(value, (float, np.floating)) and math.isfinite(value)
            and float(value).is_integer()):
        value = int(value)
    if _is_integer(value):
        number = int(value)
        if (low is None or number >= low) and (high is None or number <= high):
            return number
        shown = str(number)
    else:
        shown = short_repr(value)
    # refused: the message is built only here
    if low is not None and high is not None:
        span = f" in [{low}, {high}]"
    elif low is not None:
        span = f" >= {low}"
    else:
        span = f" <= {high}" if high is not None else ""
    raise ValueError(f"{name} must be an integer{span}{f' ({what})' if what else ''}, got {shown}")


def check_number(value: Any, name: str, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False, what: str = "") -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high`` (open at an end where
    said); an int or a float (numpy's too), not a bool; NaN and infinities refused.

    Raises ``ValueError``: ``"{name} must be a finite number in [0, 1){ (what)}, got nan"``.
    """
    if not isinstance(value, bool) and isinstance(value, numbers.Real):
        number = float(value)
        above = number > low if low_open else number >= low
        below = number < high if high_open else number <= high
        if math.isfinite(number) and above and below:
            return number
    # refused: the message is built only here
    if math.isfinite(low) and math.isfinite(high):
        span = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif math.isfinite(low):
        span = f" {'>' if low_open else '>='} {low:g}"
    elif math.isfinite(high):
        span = f" {'<' if high_open else '<='} {high:g}"
    else:
        span = ""
    raise ValueError(f"{name} must be a finite number{span}{f' ({what})' if what else ''}, got {value!r}")


# -- config field rules -------------------------------------------------------------------------

class Rule:
    """A check of one config field: ``rule(value, name)`` returns the value normalised (a numpy
    integer as an int, a list as a tuple, a path as a string) or raises ``ValueError`` (a
    ``TypeError`` where a value of the wrong kind is the usual mistake) naming ``name``.

    Rules are written into annotations, ``Annotated[int, Int(1, 2048)]``, and applied by
    :class:`kinediff.core.config.Config` whenever a config is made.
    """

    def __call__(self, value: Any, name: str) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Int(Rule):
    """An integer in [low, high] (:func:`check_int`; None: unbounded)."""

    low: int | None = 1
    high: int | None = None
    what: str = ""

    def __call__(self, value: Any, name: str) -> int:
        return check_int(value, name, self.low, self.high, self.what)


@dataclass(frozen=True)
class Number(Rule):
    """A finite number in an interval (:func:`check_number`), stored as a float."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    what: str = ""

    def __call__(self, value: Any, name: str) -> float:
        return check_number(value, name, self.low, self.high, self.low_open, self.high_open,
                            self.what)


class OneOf(Rule):
    """One of the given values (:func:`check_choice`)."""

    def __init__(self, *options: Any) -> None:
        self.options = options

    def __call__(self, value: Any, name: str) -> Any:
        check_choice(value, name, self.options)
        return value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OneOf) and other.options == self.options

    def __hash__(self) -> int:
        return hash(self.options)

    def __repr__(self) -> str:
        return f"OneOf{self.options!r}"


@dataclass(frozen=True)
class Text(Rule):
    """A non-empty string; ``what`` says what it names (such as "a timm model name")."""

    what: str = "a non-empty string"

    def __call__(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be {self.what}, got {value!r}")
        return value


@dataclass(frozen=True)
class FilePath(Rule):
    """A file path, stored as a string (an ``os.PathLike`` is converted; configs are JSON)."""

    def __call__(self, value: Any, name: str) -> str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a file path, got {value!r}")
        return value


@dataclass(frozen=True)
class Optional(Rule):
    """None, or a value that ``rule`` accepts."""

    rule: Rule

    def __call__(self, value: Any, name: str) -> Any:
        return None if value is None else self.rule(value, name)


@dataclass(frozen=True)
class Ints(Rule):
    """A tuple of ``min_len`` to ``max_len`` integers, each accepted by ``item`` (a list or a
    1-D numpy array is read as a tuple; a string or a number is refused with ``TypeError``)."""

    item: Int = Int()
    min_len: int = 1
    max_len: int | None = None
    what: str = "integers"

    def __call__(self, value: Any, name: str) -> tuple[int, ...]:
        if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:  # a numpy array
            value = value.tolist()
        most = "" if self.max_len is None else f" to {self.max_len}"
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list of {self.min_len}{most} {self.what}, got "
                            f"{type(value).__name__} {value!r}")
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise ValueError(f"{name} must be {self.min_len}{most} {self.what}, got {list(value)}")
        return tuple(self.item(v, f"{name}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True)
class ImageSize(Rule):
    """An image size as :func:`check_image_size` takes it: an int (H = W) kept as an int, or a
    pair (H, W) kept as a tuple."""

    def __call__(self, value: Any, name: str) -> int | tuple[int, int]:
        h, w = check_image_size(value, name)
        return h if _is_integer(value) else (h, w)

