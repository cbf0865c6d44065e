"""``ConfigMixin``: one config mechanism for kinediff's dataclass configs, in the spirit of
diffusers' ``ConfigMixin``.

A config is a dataclass of JSON-friendly fields (numbers, strings, None, tuples, lists, dicts, and
other configs). The mixin gives it ``to_dict`` / ``from_dict`` (unknown fields refused, naming the
class and the known fields), ``to_json`` / ``from_json``, and ``save_config(dir)`` /
``from_config(dir)`` through ``<dir>/<config_name>``. Nested configs (a field annotated with a
``ConfigMixin`` dataclass) are written as dicts and rebuilt on the way back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from kinediff._cache import write_atomic

__all__ = ["ConfigMixin"]

C = TypeVar("C", bound="ConfigMixin")


def _plain(value: Any) -> Any:
    """A field value as JSON data: tuples become lists, configs dicts."""
    if isinstance(value, ConfigMixin):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class ConfigMixin:
    """Mixin for dataclass configs: dict / JSON / directory round trips, unknown fields refused.

    Class attribute ``config_name``: the file ``save_config`` writes (``config.json``).

    Example:
        >>> from kinediff.decoders import M2PConfig
        >>> config = M2PConfig(dim=64, num_layers=2)
        >>> M2PConfig.from_dict(config.to_dict()) == config
        True
        >>> M2PConfig.from_dict({"width": 3})
        Traceback (most recent call last):
        ...
        ValueError: unknown M2PConfig fields ['width']; known: cond_dim, dim, dropout, ffn_dim, num_heads, num_layers, num_steps
    """

    config_name: ClassVar[str] = "config.json"
    #: Keys ``from_dict`` accepts besides the fields (names an older release wrote, which the
    #: subclass's ``from_dict`` reads into the current fields).
    legacy_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON data (tuples as lists, nested configs as dicts)."""
        return {name: _plain(getattr(self, name)) for name in self._field_names()}

    @classmethod
    def check_fields(cls, data: dict[str, Any]) -> None:
        """Refuse a dict with fields this config does not have (``ValueError``)."""
        if not isinstance(data, dict):
            raise TypeError(f"a {cls.__name__} must be read from a dict, got {type(data).__name__}")
        unknown = set(data) - set(cls._field_names()) - set(cls.legacy_fields)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; known: "
                             f"{', '.join(sorted(cls._field_names()))}")

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """The config of :meth:`to_dict` output (missing fields take their defaults)."""
        cls.check_fields(data)
        hints = typing.get_type_hints(cls)
        built = dict(data)
        for name, value in data.items():
            kind = hints.get(name)
            if isinstance(kind, type) and issubclass(kind, ConfigMixin) and isinstance(value, dict):
                built[name] = kind.from_dict(value)
        try:
            return cls(**built)
        except TypeError as err:  # a value of the wrong kind (e.g. a number for a tuple)
            raise ValueError(f"bad {cls.__name__} values: {err}") from err

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls.from_dict(json.loads(text))

    def save_config(self, directory: str | os.PathLike) -> Path:
        """Write ``<directory>/<config_name>`` (the directory is created); returns its path."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        target = path / self.config_name
        text = self.to_json() + "\n"
        write_atomic(target, lambda tmp: tmp.write_text(text))  # a full disk keeps the old file
        return target

    @classmethod
    def from_config(cls: type[C], source: str | os.PathLike | dict[str, Any]) -> C:
        """The config saved in a directory (its ``config_name``), a JSON file, or a dict."""
        if isinstance(source, dict):
            return cls.from_dict(source)
        path = Path(source)
        if path.is_dir():
            path = path / cls.config_name
        if not path.is_file():
            raise FileNotFoundError(f"no {cls.__name__} at {path} (expected a {cls.config_name} "
                                    f"written by save_config)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not a JSON config: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a {cls.__name__} (a JSON object of fields), got a "
                             f"JSON {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as err:  # a refused field: say which file holds it
            err.args = (f"{path}: {err}",) + err.args[1:]
            raise
