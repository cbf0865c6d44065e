"""Where kinediff caches built artefacts (synthetic body, mesh hierarchies, SynthBody renders),
atomic writes, and reading a cache file back with a clear error when it is damaged."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["cache_dir", "corrupt_cache_error", "read_cached", "write_atomic"]

T = TypeVar("T")


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else ``$KINEDIFF_CACHE_DIR``, else the user cache directory (platformdirs)."""
    if override is not None:
        return Path(override)
    env = os.environ.get("KINEDIFF_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

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
