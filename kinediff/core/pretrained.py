"""Weights of configurable modules: one way to save and load them.

A :class:`Pretrained` module (a :class:`~kinediff.core.config.Configurable` ``nn.Module``) says
which of its tensors it learnt (:meth:`Pretrained.learnt_state_dict`: its state dict without what
is rebuilt from the objects it is built on, such as a body model's data) and writes a folder that
:meth:`Pretrained.from_pretrained` reads back:

- ``config.json``: its config (:meth:`~kinediff.core.config.Config.save`: ``format_version`` and
  the kinediff version stamped in);
- ``model.safetensors``: the learnt weights (safetensors: no pickle, nothing in the file is run),
  with the same stamp and the class name in its metadata.

The folder is written beside its place and swapped in whole, so an interrupted save never leaves
a mixed folder, and a folder holding anything a save did not write is refused, never replaced. Loading checks every tensor's name, shape and finiteness before any is copied
(:func:`load_learnt_weights`), and names the file in every error.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from typing_extensions import Self

from kinediff.core.config import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME, Configurable, check_format
from kinediff.core.io import naming_path
from kinediff.core.version import __version__

__all__ = ["Pretrained", "derived_entries", "load_learnt_weights", "read_weights", "write_folder",
           "write_weights"]


def _listed(names: list[str]) -> str:
    return f"{names[:5]}{'...' if len(names) > 5 else ''}"


def load_learnt_weights(module: torch.nn.Module, own: Mapping[str, torch.Tensor],
                        state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Copy ``state`` into ``module`` where ``own`` (the module's learnt state dict) says: a
    missing or unexpected tensor, a shape mismatch or non-finite weights raise ``ValueError``
    naming them and ``source`` before any tensor is copied."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {_listed(missing)}" if missing else "",
            f"unexpected {_listed(unexpected)}" if unexpected else "",
            "shape mismatch " + ", ".join(f"{k}: expected {tuple(own[k].shape)}, got "
                                          f"{tuple(state[k].shape)}" for k in wrong[:5])
            if wrong else "") if part)
        raise ValueError(f"{source} does not match this model ({detail}); was it saved from a "
                         f"model with the same config?")
    spoilt = sorted(k for k, v in state.items()
                    if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all())
    if spoilt:  # checked before any weight is copied
        raise ValueError(f"{source} holds NaN or infinite weights in {len(spoilt)} tensor(s) "
                         f"({', '.join(spoilt[:5])}{'...' if len(spoilt) > 5 else ''}): a diverged "
                         f"or damaged save")
    module.load_state_dict(dict(state), strict=False)


def write_folder(directory: str | os.PathLike, write: Callable[[Path], None],
                 names: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME)) -> Path:
    """Call ``write(tmp)`` to fill a temporary folder beside ``directory`` with the files
    ``names``, then swap it in whole (a failed write, a full disk included, leaves no half-written
    folder; an ``OSError`` names ``directory``). Returns ``directory``.

    An existing ``directory`` is replaced only when it holds nothing but ``names`` (an earlier
    save): a folder with anything else in it, or a file, raises ``ValueError`` before anything is
    written, so a save never deletes what it did not write."""
    path = Path(directory).resolve()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{path} is a file: save into a new folder or one a save wrote")
        other = sorted(p.name for p in path.iterdir() if p.name not in names)
        if other:
            raise ValueError(f"{path} holds files a save did not write ({_listed(other)}): save "
                             f"into a new or empty folder, or one a save wrote ({', '.join(names)})")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise naming_path(err, path) from err
        raise
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
    return path


def write_weights(path: Path, weights: Mapping[str, torch.Tensor], class_name: str) -> None:
    """``weights`` as a safetensors file (contiguous CPU copies), its metadata stamped with
    ``format_version``, ``kinediff_version`` and ``class``."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
    save_file(tensors, str(path), metadata={"format_version": str(FORMAT_VERSION),
                                            "kinediff_version": __version__, "class": class_name})


def read_weights(path: Path, class_name: str) -> dict[str, torch.Tensor]:
    """The tensors of a file :func:`write_weights` wrote for ``class_name``; ``ValueError``
    naming the file for a file safetensors cannot read, one of another class, or a missing or
    newer ``format_version``."""
    try:
        with safe_open(str(path), "pt") as handle:  # one read: metadata and tensors
            meta = dict(handle.metadata() or {})
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err
    version = meta.get("format_version")
    check_format({"format_version": int(version) if str(version).isdigit() else version,
                  "kinediff_version": meta.get("kinediff_version")}, str(path))
    if meta.get("class") != class_name:
        raise ValueError(f"{path} holds the weights of {meta.get('class')!r}, not of "
                         f"{class_name!r}")
    return state


def derived_entries(module: torch.nn.Module, prefix: str = "") -> list[str]:
    """The state-dict entries of ``module`` and its submodules that their classes declare derived,
    with their prefixes: each class's ``derived_state`` names what is rebuilt from the objects it
    is built on, never saved."""
    out = [prefix + name for name in getattr(type(module), "derived_state", ())]
    for name, child in module.named_children():
        out += derived_entries(child, f"{prefix}{name}.")
    return out


class Pretrained:
    """Mixin of configurable modules with weights: ``save_pretrained`` / ``from_pretrained``
    folders and the learnt state dict. It comes after
    :class:`~kinediff.core.config.Configurable` and before ``torch.nn.Module`` in the bases.

    Class attribute ``derived_state``: the names of state-dict entries (a tensor, or a submodule
    and everything under it) that are rebuilt from the objects the module is built on (a body
    model's template, a mesh hierarchy): left out of the learnt state dict, and so out of every
    saved file.
    """

    derived_state: tuple[str, ...] = ()

    def learnt_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors this module learnt: its state dict without the entries its classes
        declare derived (``derived_state``, its submodules' included)."""
        derived = derived_entries(self)  # type: ignore[arg-type]
        return {k: v for k, v in self.state_dict().items()  # type: ignore[attr-defined]
                if not any(k == d or k.startswith(d + ".") for d in derived)}

    def load_learnt_state_dict(self, state: Mapping[str, torch.Tensor], source: str = "weights"
                               ) -> None:
        """Load :meth:`learnt_state_dict` output, checked (:func:`load_learnt_weights`)."""
        load_learnt_weights(self, self.learnt_state_dict(), state, source)  # type: ignore[arg-type]

    def saved_config(self) -> Any:
        """The config :meth:`save_pretrained` writes: ``self.config`` less what the saved weights
        replace (a module built from a local weights file saves the path as None: the file is not
        needed, nor present, where the folder is loaded)."""
        return self.config  # type: ignore[attr-defined]

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (:meth:`saved_config`) and ``model.safetensors`` (the learnt
        weights) into ``directory``, swapped in whole (:func:`write_folder`: a folder holding
        other files is refused); returns ``directory``."""
        config = self.saved_config()

        def write(tmp: Path) -> None:
            write_weights(tmp / WEIGHTS_NAME, self.learnt_state_dict(), config.class_name)
            config.save(tmp / CONFIG_NAME)

        return write_folder(directory, write)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike,
                        device: str | torch.device | None = None, **objects: Any) -> Self:
        """The module :meth:`save_pretrained` wrote in ``directory``, built on ``objects`` (those
        its class takes, e.g. ``adjacency=``), in eval mode, on ``device``.

        Raises:
            FileNotFoundError: no such folder, or a file missing (named).
            ValueError: a file is not what it should be, or the weights do not fit the config.
        """
        path = Path(directory)
        if not path.is_dir():
            raise FileNotFoundError(f"no pretrained folder at {path}")
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path} has no {name}: expected a folder written by "
                                        f"save_pretrained ({CONFIG_NAME}, {WEIGHTS_NAME})")
        assert issubclass(cls, Configurable)
        config = cls.load_config(path)
        module = cls.from_config(config, **objects)
        module.load_learnt_state_dict(read_weights(path / WEIGHTS_NAME, config.class_name),
                                      str(path / WEIGHTS_NAME))
        if device is not None:
            module = module.to(device)  # type: ignore[attr-defined]
        return module.eval()  # type: ignore[attr-defined]
