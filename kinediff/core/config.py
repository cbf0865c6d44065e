"""One config mechanism for every kinediff component: the constructor is the config.

A configurable component (:class:`Configurable`) records the arguments its constructor was called
with as a frozen :class:`Config`, read back as ``component.config`` and rebuilt by
``Class.from_config(config, **objects)``, in the manner of diffusers' ``register_to_config``:

- The config class is made from the constructor's signature (``FKSchedule.Config``): one field
  per argument, with its default and its annotation. Arguments named in ``config_objects`` (a
  body model, a mesh graph: objects passed in, never serialised) and in ``config_runtime`` (how
  to compute, not what: a skinning backend) are not fields.
- Each field is checked whenever a config is made, with or without the component: an argument
  annotated ``Annotated[int, Int(1, 2048)]`` is normalised and checked by that rule
  (:mod:`kinediff.core.checks`), a config annotation (``FKSchedule.Config | GaussianNoiseSchedule.
  Config``) nests that config, and the component's :meth:`Configurable.check_config` sees the
  whole config for rules across fields. A wrong value is refused before anything is allocated.
- A composition whose options nest other components' configs (:class:`~kinediff.PostureHMR`)
  takes its config whole: its ``config_class`` is a hand-written :class:`Config` and its
  constructor's ``config`` argument is that config.

Configs are frozen dataclasses: change one with ``config.replace(num_steps=5)``. They round-trip
through dicts (:meth:`Config.to_dict` names the class under ``"class"``; unknown fields are
refused) and JSON files (:meth:`Config.save` / :meth:`Config.load`), which carry
``format_version`` (:data:`FORMAT_VERSION`) and ``kinediff_version``: a file without a
``format_version`` or from a newer format is refused with a message that says what to do.
Components with weights save and load whole folders (``save_pretrained`` / ``from_pretrained``:
``config.json`` and ``model.safetensors``).

One helper marks what will go: :func:`deprecate`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import os
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from typing_extensions import Self

from kinediff.core.checks import Rule, check_int
from kinediff.core.io import write_atomic
from kinediff.core.version import __version__

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "ComponentConfig",
    "Config",
    "Configurable",
    "check_format",
    "deprecate",
    "find_config_class",
]

#: The format of saved configs; a file of a newer format is refused (written by a newer kinediff).
FORMAT_VERSION = 1
#: The file a config is saved as inside a folder.
CONFIG_NAME = "config.json"
#: The weights file of a pretrained folder (safetensors).
WEIGHTS_NAME = "model.safetensors"
#: The keys a saved config carries besides its fields.
_STAMP = ("format_version", "kinediff_version")


def _plain(value: Any) -> Any:
    """A field value as JSON data: configs as dicts, tuples as lists."""
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _config_classes(annotation: Any) -> tuple[type[Config], ...]:
    """The config classes an annotation admits (``A.Config | B.Config | None``), else ()."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is typing.Union else (annotation,)
    return tuple(a for a in args if isinstance(a, type) and issubclass(a, Config))


def _rules(annotation: Any) -> tuple[Rule, ...]:
    """The check rules of an ``Annotated[type, rule, ...]`` annotation."""
    if typing.get_origin(annotation) is typing.Annotated:
        return tuple(m for m in annotation.__metadata__ if isinstance(m, Rule))
    return ()


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every config: a frozen dataclass of JSON-friendly fields, checked when made.

    Subclasses are frozen dataclasses (``@dataclass(frozen=True, kw_only=True)``) whose fields
    are annotated with their rules (``Annotated[int, Int(1, 4096)]``) or with nested config
    classes. The class attribute ``class_name`` is the name written under ``"class"``.
    """

    class_name: ClassVar[str] = "Config"
    #: The class this config builds (:class:`Configurable` sets it), or None.
    component: ClassVar[type | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "class_name" not in cls.__dict__:
            cls.class_name = cls.__name__

    # -- checks -----------------------------------------------------------------------------

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        hints = cls.__dict__.get("_hints_cache")
        if hints is None:
            hints = typing.get_type_hints(cls, include_extras=True)
            cls._hints_cache = hints  # type: ignore[attr-defined]
        return hints

    def __post_init__(self) -> None:
        hints = self._hints()
        for f in dataclasses.fields(self):
            annotation = hints.get(f.name)
            value = getattr(self, f.name)
            new = self._field_value(f.name, value, annotation)
            if new is not value:
                object.__setattr__(self, f.name, new)
        self.check()

    @classmethod
    def _field_value(cls, name: str, value: Any, annotation: Any) -> Any:
        """``value`` of field ``name`` normalised and checked by its annotation."""
        nested = _config_classes(annotation)
        if nested and not (value is None and type(None) in typing.get_args(annotation)):
            return _nested(value, nested, name)
        for rule in _rules(annotation):
            value = rule(value, name)
        return value

    def check(self) -> None:
        """Rules across fields (the field rules have run): raise ``ValueError``. Overridden by
        configs with such rules; component configs call the component's ``check_config``."""

    # -- dicts and JSON ---------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """``{"class": class_name, field: value, ...}`` as JSON data (nested configs as dicts)."""
        return {"class": self.class_name,
                **{name: _plain(getattr(self, name)) for name in self.field_names()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The config of :meth:`to_dict` output; missing fields take their defaults, an unknown
        field or another class's ``"class"`` is refused (``ValueError``)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a {cls.class_name} config must be read from a dict of its fields, "
                             f"got {type(data).__name__}")
        data = dict(data)
        named = data.pop("class", cls.class_name)
        if named != cls.class_name:
            raise ValueError(f"this is a config of {named!r}, not of {cls.class_name!r}")
        cls._check_names(data)
        try:
            return cls(**data)
        except TypeError as err:  # a field that is required and missing
            raise ValueError(f"bad {cls.class_name} config: {err}") from err

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` of whole fields (checked as a new config)."""
        self._check_names(changes)
        return dataclasses.replace(self, **changes)

    def update(self, changes: Mapping[str, Any]) -> Self:
        """A copy with ``changes`` by field name or by dotted path into nested configs
        (``{"schedule.num_steps": 5, "train": {"batch_size": 8}}``), checked as a new config.

        A dict given for a nested config changes only the fields it names; one whose ``"class"``
        names another config builds that config from the fields it names and the current one's
        fields of the same names (``{"class": "VertexLinearSchedule"}`` in place of an FK schedule
        keeps its ``num_steps`` and ``alpha``), its other fields at their defaults. A config given
        replaces the nested one whole.

        Example:
            >>> from kinediff import PostureHMRConfig
            >>> config = PostureHMRConfig.tiny().update({"schedule.num_steps": 5, "train": {"epochs": 2}})
            >>> config.schedule.num_steps, config.train.epochs, config.train.batch_size
            (5, 2, 32)
            >>> config.update({"schedule": {"class": "VertexLinearSchedule"}}).schedule
            VertexLinearSchedule.Config(num_steps=5, alpha='linear', template_orientation=None, root_path='heading')
        """
        whole: dict[str, Any] = {}
        paths: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            head, dot, rest = str(key).partition(".")
            if dot:
                paths.setdefault(head, {})[rest] = value
            else:
                whole[head] = value
        self._check_names({**whole, **paths})
        hints = self._hints()
        for head in set(whole) | set(paths):
            value = whole.get(head, getattr(self, head))
            current = getattr(self, head)
            if isinstance(value, Mapping) and isinstance(current, Config) and \
                    value.get("class", current.class_name) == current.class_name:
                with _within(head):
                    value = current.update({k: v for k, v in value.items() if k != "class"})
            elif isinstance(value, Mapping):
                if isinstance(current, Config) and "class" in value:  # another class: the
                    # options of the same name carry over (the same name, the same meaning)
                    kinds = {k.class_name: k for k in _config_classes(hints.get(head))}
                    shared = set(current.field_names()) & set(
                        kinds[value["class"]].field_names() if value["class"] in kinds else ())
                    value = {**{k: getattr(current, k) for k in shared}, **value}
                value = self._field_value(head, value, hints.get(head))
            if head in paths:
                if not isinstance(value, Config):
                    raise ValueError(f"{self.class_name}.{head} is not a nested config, so "
                                     f"{head}.{next(iter(paths[head]))} names nothing")
                with _within(head):
                    value = value.update(paths[head])
            whole[head] = value
        return dataclasses.replace(self, **whole)

    @classmethod
    def _check_names(cls, changes: Mapping[str, Any]) -> None:
        """Refuse names that are not fields of this config (``ValueError`` listing the known)."""
        unknown = sorted(set(changes) - set(cls.field_names()), key=str)
        if unknown:
            raise ValueError(f"unknown {cls.class_name} fields {unknown}; known: "
                             f"{', '.join(sorted(cls.field_names()))}")

    def to_json(self) -> str:
        """The config as a saved file holds it: :meth:`to_dict` stamped with ``format_version``
        and ``kinediff_version``."""
        stamped = {"format_version": FORMAT_VERSION, "kinediff_version": __version__,
                   **self.to_dict()}
        return json.dumps(stamped, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "the config") -> Self:
        """The config of :meth:`to_json` text; ``source`` names it in errors."""
        return cls.from_saved(_parse_json(text, source), source)

    @classmethod
    def from_saved(cls, data: Any, source: str = "the config") -> Self:
        """The config of a saved file's parsed JSON: its stamp is checked (``ValueError`` for
        none, or a newer format), then its fields; errors name ``source``."""
        if not isinstance(data, dict):
            raise ValueError(f"{source} is not a {cls.class_name} config (a JSON object of "
                             f"fields), got a JSON {type(data).__name__}")
        check_format(data, source)
        try:
            return cls.from_dict({k: v for k, v in data.items() if k not in _STAMP})
        except (ValueError, TypeError) as err:
            err.args = (f"{source}: {err}",) + err.args[1:]
            raise

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON (:meth:`to_json`) to ``path``, a ``.json`` file or a folder
        (then ``<path>/config.json``; the folder is created), atomically; returns the file."""
        target = Path(path)
        if target.suffix != ".json":
            target = target / CONFIG_NAME
        text = self.to_json() + "\n"
        return write_atomic(target, lambda tmp: tmp.write_text(text))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Self:
        """The config :meth:`save` wrote to ``path`` (a file, or a folder with ``config.json``)."""
        target, data = _read_saved(path, cls.class_name)
        return cls.from_saved(data, str(target))


def _read_saved(path: str | os.PathLike, what: str) -> tuple[Path, Any]:
    """The file of a saved config (``path``, or ``path/config.json`` for a folder) and its parsed
    JSON; ``FileNotFoundError`` or ``ValueError`` naming the file."""
    target = Path(path)
    if target.is_dir():
        target = target / CONFIG_NAME
    if not target.is_file():
        raise FileNotFoundError(f"no {what} config at {target} (expected a {CONFIG_NAME} written "
                                f"by save)")
    try:
        text = target.read_text()
    except UnicodeDecodeError as err:
        raise ValueError(f"{target} is not a JSON config: {err}") from err
    return target, _parse_json(text, str(target))


def _parse_json(text: str, source: str) -> Any:
    """``text`` parsed as JSON; ``ValueError`` naming ``source`` otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{source} is not a JSON config: {err}") from err


def check_format(data: Mapping[str, Any], source: str) -> None:
    """Refuse saved data without ``format_version`` or of a newer format than
    :data:`FORMAT_VERSION` (``ValueError`` saying what to do)."""
    version = data.get("format_version")
    written = data.get("kinediff_version")
    if version is None:
        raise ValueError(f"{source} has no format_version: kinediff writes one into every config it "
                         f"saves (Config.save, `kinediff config`); write the config again with "
                         f"this kinediff (e.g. `kinediff config --preset tiny > config.json`) and "
                         f"set the fields you need")
    check_int(version, f"{source}: format_version")
    if version > FORMAT_VERSION:
        raise ValueError(f"{source} has format_version {version} (written by kinediff {written}); "
                         f"this kinediff ({__version__}) reads format {FORMAT_VERSION}: upgrade "
                         f"kinediff (pip install --upgrade kinediff)")


@contextlib.contextmanager
def _within(name: str) -> Iterator[None]:
    """Errors of a nested config say where it is: "head.num_points must be ..." (a message that
    starts with a field's name) or "head: ..."."""
    try:
        yield
    except (ValueError, TypeError) as err:
        text = str(err)
        first = text.split(" ", 1)[0]
        joined = f"{name}.{text}" if first.isidentifier() and " must " in text[:80] else \
            f"{name}: {text}"
        err.args = (joined,) + err.args[1:]
        raise


def _nested(value: Any, classes: tuple[type[Config], ...], name: str) -> Config:
    """A nested field's value as one of ``classes``: an instance, or a dict naming one of them
    under ``"class"`` (the class may be left out where only one is admitted)."""
    if isinstance(value, classes):
        return value
    names = [c.class_name for c in classes]
    if isinstance(value, Mapping):
        named = value.get("class")
        for kind in classes:
            if kind.class_name == named or (named is None and len(classes) == 1):
                with _within(name):
                    return kind.from_dict(value)
        raise ValueError(f"{name} must name its class under 'class', one of {names}, got "
                         f"{named!r}")
    raise ValueError(f"{name} must be a config of {' or '.join(names)} (or a dict of its fields), "
                     f"got {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class ComponentConfig(Config):
    """Base of the config classes :class:`Configurable` makes from a constructor's signature.

    Class attribute ``component``: the class it configures (also its ``class_name``).
    """

    def check(self) -> None:
        self.component.check_config(self)

    def arguments(self) -> dict[str, Any]:
        """The constructor's keyword arguments this config holds."""
        return {name: getattr(self, name) for name in self.field_names()}

    def build(self, **objects: Any) -> Any:
        """The component of this config, given the objects it may need (e.g. ``body=``,
        ``adjacency=``): those its class does not take are left out, so that a composition can
        offer the same objects to whichever class a config names."""
        return self.component.from_config(self, **_taken(self.component, objects))


class Configurable:
    """Mixin of every configurable component: ``.config``, ``from_config``, saved configs.

    Attributes:
        config_objects: constructor arguments that are objects passed in (a body model, a mesh
            graph), never part of the config.
        config_runtime: constructor arguments that say how to compute, not what (a backend): not
            part of the config; ``from_config`` passes them on.
        config_class: for a composition only, the hand-written :class:`Config` its constructor
            takes whole as ``config``; otherwise ``Config`` is made from the signature.
        Config: the component's config class.

    Example:
        >>> from kinediff.body import BodyModel
        >>> from kinediff.forward import FKSchedule, ForwardProcess
        >>> body = BodyModel.synthetic()
        >>> schedule = FKSchedule(body, num_steps=5, alpha="cosine")
        >>> schedule.config
        FKSchedule.Config(num_steps=5, alpha='cosine', blend='paper', template_orientation=None, root_path='geodesic')
        >>> again = ForwardProcess.from_config(schedule.config.to_dict(), body=body)
        >>> type(again).__name__, again.config == schedule.config
        ('FKSchedule', True)
        >>> FKSchedule.Config(num_steps=0)
        Traceback (most recent call last):
        ...
        ValueError: num_steps must be an integer in [1, 1000], got 0
    """

    config_objects: ClassVar[tuple[str, ...]] = ()
    config_runtime: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[Config]]
    #: whether the constructor takes the config whole (a composition: ``config_class``)
    _config_whole: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._config_whole = any("config_class" in vars(kind) for kind in cls.__mro__)
        whole = cls.__dict__.get("config_class")
        if whole is not None:
            cls.Config = whole
            whole.component = cls  # the config names the class it builds
        elif "__init__" in cls.__dict__ or "Config" not in cls.__dict__:
            cls.Config = _config_class(cls)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @classmethod
    def check_config(cls, config: Config) -> None:
        """Rules across the config's fields (each field has been checked by its rule): raise
        ``ValueError``. Runs whenever a config of this class is made."""

    @property
    def config(self) -> Config:
        """The frozen config this component was built from (read-only)."""
        return self.__dict__["_config"]

    @classmethod
    def from_config(cls, config: Config | Mapping[str, Any], **objects: Any) -> Self:
        """The component of ``config``: a config of this class or of a subclass (its ``"class"``
        says which), or its dict, built on the ``objects`` it takes (e.g. ``body=``) and any
        runtime options (e.g. ``backend=``). Called on a base class (``ForwardProcess``), objects
        that the class the config names does not take are left out (a noise schedule takes no
        body); called on the class itself, every keyword must be one of its arguments."""
        if isinstance(config, Mapping):
            config = find_config_class(cls, config).from_dict(config)
        kind = getattr(type(config), "component", None)
        if not isinstance(config, Config) or not isinstance(kind, type) or not issubclass(kind, cls):
            raise TypeError(f"{cls.__name__}.from_config needs a config of {cls.__name__} (or a "
                            f"subclass), got {type(config).__qualname__}")
        if kind is not cls:  # built through a base class: offered objects it does not take
            objects = _taken(kind, objects)
        if kind._config_whole:
            return kind(config, **objects)  # type: ignore[call-arg]
        return kind(**config.arguments(), **objects)  # type: ignore[attr-defined]

    @classmethod
    def load_config(cls, path: str | os.PathLike) -> Config:
        """The config saved at ``path`` (a ``.json`` file, or a folder with ``config.json``) of
        this class or a subclass (the file's ``"class"`` says which)."""
        target, data = _read_saved(path, cls.__name__)
        kind = find_config_class(cls, data, str(target)) if isinstance(data, dict) else cls.Config
        return kind.from_saved(data, str(target))

    def save_config(self, path: str | os.PathLike) -> Path:
        """Write ``self.config`` to ``path`` (:meth:`Config.save`)."""
        return self.config.save(path)


def _taken(kind: type, objects: Mapping[str, Any]) -> dict[str, Any]:
    """The ``objects`` (and runtime options) the configurable ``kind``'s constructor takes."""
    return {k: v for k, v in objects.items() if k in kind.config_objects or k in kind.config_runtime}


def find_config_class(cls: type, data: Mapping[str, Any], source: str = "the config"
                      ) -> type[Config]:
    """The config class of the configurable ``cls`` or of its subclass that ``data["class"]``
    names (``cls``'s own without a ``"class"``); ``ValueError`` naming ``source`` otherwise."""
    named = data.get("class", cls.__name__)
    stack = [cls]
    while stack:
        kind = stack.pop()
        if kind.Config.class_name == named:
            return kind.Config
        stack.extend(kind.__subclasses__())
    raise ValueError(f"{source} is a config of {named!r}, not of {cls.__name__} or a subclass")


def _config_class(cls: type) -> type[ComponentConfig]:
    """The frozen config dataclass of ``cls``'s constructor signature."""
    init = cls.__init__
    init = getattr(init, "__wrapped__", init)
    signature = inspect.signature(init)
    hints = typing.get_type_hints(init, include_extras=True)
    skip = set(cls.config_objects) | set(cls.config_runtime)
    specs = []
    for param in list(signature.parameters.values())[1:]:
        if param.name in skip:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{cls.__name__}.__init__ takes *{param.name}: a configurable "
                            f"component names each of its arguments")
        annotation = hints.get(param.name, Any)
        if param.default is param.empty:
            specs.append((param.name, annotation))
        elif isinstance(param.default, (list, dict, set)):
            default = param.default
            specs.append((param.name, annotation,
                          dataclasses.field(default_factory=lambda d=default: type(d)(d))))
        else:
            specs.append((param.name, annotation, dataclasses.field(default=param.default)))
    config = dataclasses.make_dataclass(f"{cls.__name__}Config", specs, bases=(ComponentConfig,),
                                        frozen=True, kw_only=True,
                                        namespace={"component": cls, "class_name": cls.__name__})
    config.__module__ = cls.__module__
    config.__qualname__ = f"{cls.__qualname__}.Config"
    config.__doc__ = (f"The config of :class:`{cls.__module__}.{cls.__qualname__}`: its "
                      f"constructor's arguments (see there), frozen.")
    config._hints_cache = {**hints, **{s[0]: s[1] for s in specs}}  # type: ignore[attr-defined]
    return config


def _recording(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` that first records its arguments as the instance's config (the most derived
    class's constructor records; those it calls through ``super()`` do not)."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Configurable, *args: Any, **kwargs: Any) -> None:
        if "_config" not in self.__dict__:
            cls = type(self)
            if cls._config_whole:
                bound = signature.bind(self, *args, **kwargs)
                config = bound.arguments.get("config")
                if isinstance(config, Mapping):
                    config = cls.Config.from_dict(config)
                if not isinstance(config, cls.Config):
                    raise TypeError(f"{cls.__name__} needs a {cls.Config.__name__}, got "
                                    f"{type(config).__name__}")
                bound.arguments["config"] = config
                args, kwargs = bound.args[1:], bound.kwargs
            else:
                bound = signature.bind(self, *args, **kwargs)
                bound.apply_defaults()
                fields = set(cls.Config.field_names())
                config = cls.Config(**{k: v for k, v in bound.arguments.items() if k in fields})
            self.__dict__["_config"] = config
        init(self, *args, **kwargs)

    return __init__


def deprecate(what: str, removed_in: str, instead: str, stacklevel: int = 2) -> None:
    """Warn that ``what`` goes in kinediff ``removed_in`` (use ``instead``); raise
    ``RuntimeError`` once this kinediff is that version or later, so that a forgotten shim fails
    its tests instead of outliving its promise."""
    if _version_tuple(__version__) >= _version_tuple(removed_in):
        raise RuntimeError(f"{what} was to be removed in kinediff {removed_in}; this is "
                           f"{__version__}: remove it")
    warnings.warn(f"{what} is deprecated and goes in kinediff {removed_in}: {instead}",
                  DeprecationWarning, stacklevel=stacklevel + 1)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
