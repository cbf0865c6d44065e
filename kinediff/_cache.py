"""Where kinediff caches built artefacts (synthetic body, mesh hierarchies), and atomic writes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["cache_dir", "write_atomic"]


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
    a ``write`` that fails leaves neither ``path`` changed nor the temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
