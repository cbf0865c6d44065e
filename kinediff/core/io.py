"""Files: atomic writes, kinediff's cache of built artefacts (synthetic body, mesh hierarchies,
SynthBody renders) and its damaged-file errors, JSON annotation files, and the reasons
``torch.load(weights_only=True)`` gives for refusing a file, each error naming the file."""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

__all__ = ["cache_dir", "corrupt_cache_error", "describe_load_error", "first_line", "load_json", "naming_path",
           "read_cached", "write_atomic"]

T = TypeVar("T")


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else ``$KINEDIFF_CACHE_DIR``, else the user cache directory (platformdirs)."""
    if override is not None:
        return Path(override)
    env = os.environ.get("KINEDIFF_CACHE_DIR")
    if env:
        return Path(env)

    return Path(platformdirs.user_cache_dir("kinediff"))


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` then rename onto ``path``: concurrent readers never see half a file, and
    a ``write`` that fails leaves neither ``path`` changed nor the temporary file behind. An
    ``OSError`` (a full disk: "No space left on device writing PATH") names ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise naming_path(err, path)
        raise
    return path


def naming_path(err: OSError, path: Path) -> OSError:
    """``err`` if it names ``path`` or has no errno, else an ``OSError`` with its errno saying
    "<strerror> writing PATH" (a writer's error names its temporary file, or nothing), chained to
    ``err``. For ``raise naming_path(err, path)`` inside an ``except OSError as err``."""
    if err.errno is None or str(path) in str(err):
        return err
    renamed = OSError(err.errno, f"{os.strerror(err.errno)} writing {path}")
    renamed.__cause__ = err
    return renamed


def corrupt_cache_error(path: Path, what: str, problem: str) -> ValueError:
    """The error for a damaged file in kinediff's cache: it names the file, what it holds and what
    is wrong, and says that deleting it is safe (kinediff builds it again on next use)."""
    return ValueError(f"{path}: kinediff's cached {what} is damaged ({problem}); deleting the file is "
                      f"safe: kinediff builds it again on next use")


def read_cached(path: Path, read: Callable[[Path], T], what: str) -> T:
    """``read(path)`` of a file in kinediff's cache; any failure (a truncated or damaged file, one
    written by something else) raises :func:`corrupt_cache_error`'s ``ValueError``."""
    try:
        return read(path)
    except Exception as err:  # whatever the reader raised, the file is at fault
        raise corrupt_cache_error(path, what, f"{type(err).__name__}: {err}") from err


def load_json(path: Path) -> Any:
    """A JSON annotation file; a malformed one raises ``ValueError`` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped (an error message's headline)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def describe_load_error(err: BaseException) -> str:
    """A short reason for an error of ``torch.load(weights_only=True)``: a refused global named,
    a truncated or foreign file said so; never torch's advice to load the file unsafely."""
    text = str(err)
    if isinstance(err, pickle.UnpicklingError):
        name = re.search(r"GLOBAL ([\w.]+)", text)
        if name is not None:
            return (f"it refers to the Python object {name.group(1)}, which a weights-only load "
                    f"refuses (a checkpoint holds tensors and plain values only; nothing in the "
                    f"file was run)")
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|Check the documentation|$)",
                           text, re.DOTALL)
        if "Weights only load failed" in text:
            reason = first_line(detail.group(1)) if detail else "data it does not allow"
            return (f"a weights-only load refuses it ({reason}; nothing in the file was run): "
                    f"not a file torch.save wrote, or one holding more than tensors and plain "
                    f"values")
        return f"it is not a file torch.save wrote ({first_line(text)})"
    if isinstance(err, EOFError):
        return "it is empty or cut short"
    if "central directory" in text or "failed reading" in text or isinstance(err, OSError):
        return "it is cut short or damaged (not a complete zip archive)"
    if "not in a subdirectory" in text or "enforce fail" in text:
        return "it is a zip archive that torch.save did not write"
    if isinstance(err, (KeyError, IndexError, TypeError, AttributeError)) or "load key" in text:
        return "it is not a file torch.save wrote"
    return first_line(text)[:200] or type(err).__name__
