"""``PostureHMRConfig``: what a PostureHMR model is, as one versionable config.

The top level holds the composition (which forward process, decoder and condition; the crop size;
the mesh hierarchy; the losses and the 3D stage's training inputs). Each component's own options
are nested configs, written once: ``head`` (:class:`~kinediff.heads.HeadConfig`, the 2D stage),
``schedule_config`` (:class:`~kinediff.forward.ScheduleConfig`, the forward process),
``decoder_config`` (:class:`~kinediff.decoders.DecoderConfig`, the decoder's sizes) and ``train``
(:class:`~kinediff.training.TrainConfig`, the optimisation, read by the Trainer only).

Before kinediff 0.2 every one of those options was a field of the config itself. For one release
the old names still work (given to the constructor, ``dataclasses.replace`` or ``tiny``, read or
set as attributes) with a ``DeprecationWarning``; saved configs with them load without one.
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
import warnings
from dataclasses import KW_ONLY, MISSING, dataclass, field, fields, replace
from typing import Any

import numpy as np

from kinediff.core.config import ConfigMixin
from kinediff.decoders.config import DecoderConfig
from kinediff.forward.alphas import ALPHAS
from kinediff.forward.config import MAX_STEPS, NOISE_BETAS, ScheduleConfig
from kinediff.forward.template import ROOT_PATHS
from kinediff.heads.config import HeadConfig
from kinediff.losses import Loss3DWeights
from kinediff.render.soft import SILHOUETTE_BACKENDS
from kinediff.training.config import TRAIN_FIELDS, TrainConfig

__all__ = ["MOVED_FIELDS", "NESTED_CONFIGS", "NOISE_BETAS", "PAPER_PATH", "REVERSE_PROCESS_OPTIONS",
           "SCHEDULE_OPTIONS", "TABLE3_ROWS", "PostureHMRConfig", "table3_configs"]

#: The options only some forward processes read, as paths in the config, and which processes.
SCHEDULE_OPTIONS: dict[str, tuple[str, ...]] = {
    "schedule_config.blend": ("fk",), "schedule_config.noise_train_steps": ("noise",),
    "schedule_config.noise_prediction": ("noise",), "root_path": ("fk", "vl"),
    "rollout_share": ("fk", "vl")}
#: The options only the reverse process reads (not the one-step regressor).
REVERSE_PROCESS_OPTIONS = ("root_path", "rollout_share")

#: The nested configs: field name -> config class.
NESTED_CONFIGS: dict[str, type[ConfigMixin]] = {
    "head": HeadConfig, "schedule_config": ScheduleConfig, "decoder_config": DecoderConfig,
    "train": TrainConfig}
#: kinediff 0.1's flat field names that now live in a nested config: name -> that config's field
#: (a fixed list: a field added to a nested config later is not an old name).
MOVED_FIELDS: dict[str, str] = {
    **dict.fromkeys(("backbone", "pretrained", "heatmap_size", "num_points"), "head"),
    **dict.fromkeys(("num_steps", "alpha", "blend", "noise_train_steps", "noise_prediction"),
                    "schedule_config"),
    **dict.fromkeys(("dim", "ffn_dim", "num_layers", "num_heads", "dropout"), "decoder_config"),
    **dict.fromkeys(TRAIN_FIELDS, "train")}
_WHAT = {"head": "the 2D stage's options", "schedule_config": "the forward process's options",
         "decoder_config": "the decoder's sizes", "train": "the training fields"}

#: The largest crop side in pixels (16 times the paper's 256): the 2D stage's activations grow with
#: its square (an HRNet-W48 at 4096 pixels already needs tens of GB per image).
MAX_IMAGE_SIZE = 4096
#: The widest image-feature condition (4 times the paper's 2048).
MAX_FEATURE_DIM = 8192
#: Each mesh decimation factor lies in [2, 64], and there are 1 to 4 of them (the paper: (4, 4)).
MESH_FACTOR_RANGE = (2, 64)
MAX_MESH_LEVELS = 4
#: The fewest vertices the coarsest level of an SMPL-sized body (6890 vertices, ceil(V / factor)
#: per level) may keep: a closed mesh needs at least 4.
MIN_COARSE_VERTICES = 4
_SMPL_VERTICES = 6890

#: The fields of a complete kinediff-0.1 config, as its ``to_dict`` wrote them (flat).
_V01_FIELDS = frozenset({
    "image_size", "backbone", "pretrained", "heatmap_size", "num_points", "mesh_factors",
    "schedule", "num_steps", "alpha", "blend", "noise_train_steps", "noise_prediction", "decoder",
    "condition", "feature_dim", "dim", "ffn_dim", "num_layers", "num_heads", "dropout",
    "render_loss", "render_weight", "trimap_width", "render_sigma", "render_backend",
    "point_weight", "mesh2d_weight", "loss_weights", "loss_level", "steps_per_sample",
    "train_condition", "condition_noise_px", *TRAIN_FIELDS})


@dataclass
class PostureHMRConfig(ConfigMixin):
    """Every choice of a PostureHMR model and its training; defaults are the paper's.

    Composition: ``image_size`` (crop side, 256), ``mesh_factors`` ((4, 4): 431 coarse vertices;
    (4, 4, 4): about 108), ``schedule`` ("fk" | "vl" | "noise"), ``decoder`` ("m2p", or
    "regressor" for the one-step GraphormerRegressor baseline), ``condition`` ("2d_mesh" |
    "image_feature"), ``feature_dim`` (2048, the paper's global image vector; image-feature
    condition only), ``root_path`` (FK / VL: "geodesic", the paper's turn to one template
    orientation; "heading", the template first turned to the heading estimated from the 2D mesh,
    continuous for people seen from behind; "auto", the default: "heading" with the 2D-mesh
    condition, else "geodesic"), ``rollout_share`` (FK / VL: the share of each batch's training
    steps that start from the decoder's own reverse process instead of the path's exact M_t,
    against exposure bias; 0.5 by default, 0 is the paper's training; :data:`PAPER_PATH` sets both
    to the paper's).

    Nested configs (each a frozen :class:`~kinediff.core.config.ConfigMixin`; give one as a config or
    a dict of its fields): ``head`` (:class:`~kinediff.heads.HeadConfig`: backbone, pretrained
    weights, heatmap size, K points), ``schedule_config``
    (:class:`~kinediff.forward.ScheduleConfig`: T, alpha, FK's blend, the noise process's
    options), ``decoder_config`` (:class:`~kinediff.decoders.DecoderConfig`: widths, layers,
    heads, dropout) and ``train`` (:class:`~kinediff.training.TrainConfig`: learning rates,
    epochs, decay, batch size, clipping; read by the Trainer only). ``alpha`` names a progress
    schedule for "fk" / "vl" and a beta schedule for "noise". An option that cannot apply to the
    chosen schedule, decoder or training condition, set to anything but its default, is refused.

    Losses (docs/posturehmr.md has each weight's source): ``render_loss`` and ``render_weight``
    (10, the paper), ``trimap_width`` (pixels), ``render_sigma`` (pixels), ``render_target``
    ("mesh": G is the GT 2D mesh rendered like the prediction, the paper's eq. 6 and its
    minimiser; "mask": the data set's mask where a sample has one), ``render_backend`` ("torch" |
    "pytorch3d" | "auto", see :func:`~kinediff.render.soft_silhouette`), ``point_weight`` and
    ``mesh2d_weight`` (L1 on coordinates / crop size, 100 each: VirtualMarker's weight of its
    point term), ``loss_weights`` (:class:`~kinediff.losses.Loss3DWeights` as a dict:
    VirtualMarker's 0.1 / 0.1 / 0.1 / 0.01 in its millimetre units, posture 1),
    ``edge_loss_start`` (the epoch from which the edge term counts, 10 as VirtualMarker),
    ``loss_level`` (the hierarchy level of the vertex / joint / surface terms: 0 = the full mesh,
    the paper; -1 = the coarse mesh, cheap, and then the up-sampler keeps its barycentric
    initialisation), ``steps_per_sample`` (posture schedules: how many distinct steps k of each
    sample's path one batch trains on; None = all T; eq. 7's sum over k is T times their mean).
    3D-stage condition: ``train_condition`` "predicted" (the frozen 2D stage's mesh, the paper) or
    "gt" (the GT 2D mesh plus Gaussian noise of ``condition_noise_px`` pixels).

    Limits, checked when the config is made (so a saved config asking for absurd sizes is refused
    before any model is allocated; each nested config checks its own): ``image_size`` an integer
    in [1, 4096] (:data:`MAX_IMAGE_SIZE`) and a multiple of ``head.heatmap_size``;
    ``mesh_factors`` 1 to 4 integers, each in [2, 64], leaving an SMPL-sized body (6890 vertices)
    at least 4 coarse vertices; ``feature_dim`` an integer in [1, 8192] (:data:`MAX_FEATURE_DIM`);
    ``render_weight``, ``point_weight``, ``mesh2d_weight`` and the ``loss_weights`` finite
    numbers >= 0; ``trimap_width`` an integer in [1, image_size]; ``render_sigma`` in
    (0, image_size]; ``condition_noise_px`` in [0, image_size]; ``render_loss`` a bool;
    ``edge_loss_start`` an integer >= 0; ``loss_level`` an integer naming a level of the
    hierarchy (in [-(L + 1), L] for L factors); ``steps_per_sample`` None or an integer in
    [1, 1000]; with the noise process, ``schedule_config.num_steps`` at most its
    ``noise_train_steps``. Integers are Python or numpy integers (a bool, a float or a string is
    refused), numbers are ints or floats (not bools, NaN refused).

    Before kinediff 0.2 the nested configs' options were fields of this config
    (:data:`MOVED_FIELDS`): passing them here (``PostureHMRConfig(num_steps=5)``, also through
    ``dataclasses.replace`` and :meth:`tiny`) or reading and setting them (``config.num_steps``)
    still works for one release, with a ``DeprecationWarning``; saved configs with them load
    without one.

    Example:
        >>> from kinediff import PostureHMRConfig
        >>> from kinediff.forward import ScheduleConfig
        >>> config = PostureHMRConfig(schedule="vl", schedule_config=ScheduleConfig(num_steps=5))
        >>> config.schedule_config.num_steps, config.decoder_config.dim, config.head.num_points
        (5, 128, 81)
        >>> PostureHMRConfig.from_dict(config.to_dict()) == config
        True
    """

    image_size: int = 256
    _: KW_ONLY  # every field after the first by name (their order changed in 0.2)
    mesh_factors: tuple[int, ...] = (4, 4)
    schedule: str = "fk"
    root_path: str = "auto"
    rollout_share: float = 0.5
    decoder: str = "m2p"
    condition: str = "2d_mesh"
    feature_dim: int = 2048
    head: HeadConfig = field(default_factory=HeadConfig)
    schedule_config: ScheduleConfig = field(default_factory=ScheduleConfig)
    decoder_config: DecoderConfig = field(default_factory=DecoderConfig)
    render_loss: bool = True
    render_weight: float = 10.0
    trimap_width: int = 8
    render_sigma: float = 1.0
    render_target: str = "mesh"
    render_backend: str = "torch"
    point_weight: float = 100.0
    mesh2d_weight: float = 100.0
    loss_weights: dict[str, float] = field(default_factory=lambda: Loss3DWeights().to_dict())
    edge_loss_start: int = 10
    loss_level: int = 0
    steps_per_sample: int | None = None
    train_condition: str = "predicted"
    condition_noise_px: float = 0.0
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        for name, kind in NESTED_CONFIGS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                value = kind.from_dict(value)
                setattr(self, name, value)
            if not isinstance(value, kind):
                raise ValueError(f"{name} must be a {kind.__name__} or a dict of its fields, got "
                                 f"{type(value).__name__}")
        self._check_values()
        alpha = self.schedule_config.alpha
        choices = {"schedule": ("fk", "vl", "noise"), "condition": ("2d_mesh", "image_feature"),
                   "decoder": ("m2p", "regressor"), "train_condition": ("predicted", "gt"),
                   "render_backend": SILHOUETTE_BACKENDS, "render_target": ("mesh", "mask"),
                   "root_path": ("auto", *ROOT_PATHS)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        alphas = NOISE_BETAS if self.schedule == "noise" else tuple(ALPHAS)
        if alpha not in alphas:
            raise ValueError(f"alpha must be one of {alphas} with schedule={self.schedule!r}, got "
                             f"{alpha!r}")
        for name, value in self.inapplicable().items():
            raise ValueError(f"{name}={value!r} has no effect with {self._context(name)}: leave it "
                             f"at its default ({_default(name)!r})")
        if self.resolved_root_path == "heading" and self.condition != "2d_mesh":
            raise ValueError("root_path='heading' estimates each sample's heading from its 2D mesh; "
                             "the image-feature condition has none: use root_path='geodesic'")

        if self.schedule == "noise" and self.schedule_config.num_steps > \
                self.schedule_config.noise_train_steps:
            raise ValueError(f"schedule_config.num_steps ({self.schedule_config.num_steps}) must not "
                             f"exceed schedule_config.noise_train_steps "
                             f"({self.schedule_config.noise_train_steps}): DDIM takes a subset of "
                             f"the noise process's steps")

    def _check_values(self) -> None:
        """Types and ranges of the top-level fields (see the class doc's limits)."""
        self.image_size = _integer(self.image_size, "image_size", 1, MAX_IMAGE_SIZE)
        if self.image_size % self.head.heatmap_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of heatmap_size "
                             f"({self.head.heatmap_size})")
        self.mesh_factors = _mesh_factors(self.mesh_factors)
        self.feature_dim = _integer(self.feature_dim, "feature_dim", 1, MAX_FEATURE_DIM)
        if not isinstance(self.render_loss, bool):
            raise ValueError(f"render_loss must be True or False, got {self.render_loss!r}")
        for name in ("render_weight", "point_weight", "mesh2d_weight"):
            setattr(self, name, _number(getattr(self, name), name, 0.0))
        size = float(self.image_size)
        self.trimap_width = _integer(self.trimap_width, "trimap_width", 1, self.image_size,
                                     "a band of pixels inside the crop")
        self.render_sigma = _number(self.render_sigma, "render_sigma", 0.0, size, low_open=True)
        self.condition_noise_px = _number(self.condition_noise_px, "condition_noise_px", 0.0, size)
        self.rollout_share = _number(self.rollout_share, "rollout_share", 0.0, 1.0, high_open=True)
        if not isinstance(self.loss_weights, dict):
            raise ValueError(f"loss_weights must be a dict of Loss3DWeights fields, got "
                             f"{type(self.loss_weights).__name__}")
        unknown = set(self.loss_weights) - set(Loss3DWeights().to_dict())
        if unknown:
            raise ValueError(f"unknown loss_weights {sorted(unknown)}")
        self.loss_weights = {k: _number(v, f"loss_weights[{k!r}]", 0.0)
                             for k, v in self.loss_weights.items()}
        self.edge_loss_start = _integer(self.edge_loss_start, "edge_loss_start", 0, None,
                                        "an epoch")
        levels = len(self.mesh_factors)
        self.loss_level = _integer(self.loss_level, "loss_level", -(levels + 1), levels,
                                   f"a level of the {levels + 1}-level mesh hierarchy")
        if self.steps_per_sample is not None:
            self.steps_per_sample = _integer(self.steps_per_sample, "steps_per_sample", 1,
                                             MAX_STEPS, "None or a number of steps")

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, also a config pickled by an older kinediff (flat fields)."""
        if any(k in state for k in MOVED_FIELDS):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                state = PostureHMRConfig.from_dict(state).__dict__
        self.__dict__.update(state)

    @property
    def resolved_root_path(self) -> str:
        """The FK / VL root path the model builds: ``root_path``, with "auto" read as "heading"
        for the 2D-mesh condition (the heading is estimated from the 2D mesh) and "geodesic" (the
        paper's) for the image-feature condition."""
        if self.root_path != "auto":
            return self.root_path
        return "heading" if self.condition == "2d_mesh" else "geodesic"

    @property
    def cond_dim(self) -> int:
        """The decoder's condition width per vertex: 2 for the 2D mesh, ``feature_dim`` for the
        image feature."""
        return 2 if self.condition == "2d_mesh" else self.feature_dim

    def inapplicable(self) -> dict[str, Any]:
        """The options (by their path, e.g. ``"schedule_config.blend"``) set to something other
        than their default that the chosen schedule, decoder or training condition never reads
        (the constructor refuses each)."""
        unused = [k for k, schedules in SCHEDULE_OPTIONS.items() if self.schedule not in schedules]
        if self.train_condition != "gt":
            unused.append("condition_noise_px")
        if self.decoder == "regressor":  # one pass: no forward process to start or roll out
            unused += [k for k in REVERSE_PROCESS_OPTIONS if k not in unused]
        return {n: _get(self, n) for n in unused if _get(self, n) != _default(n)}

    def _context(self, name: str) -> str:
        if name == "condition_noise_px":
            return f"train_condition={self.train_condition!r}"
        if name in REVERSE_PROCESS_OPTIONS and self.decoder == "regressor":
            return "decoder='regressor'"
        return f"schedule={self.schedule!r}"

    @classmethod
    def tiny(cls, **overrides: Any) -> PostureHMRConfig:
        """A CPU-sized preset: 64-pixel crops, ``hrnet_w18_small``, 33 points, the third x4
        decimation (108 coarse vertices), a 2-layer 64-wide decoder, larger learning rates, 8
        epochs (the edge term from epoch 2, a quarter of them as VirtualMarker's 10 of 40),
        gradients clipped at norm 100 (the 3D stage's median norm is about 60: only outliers).
        Not the paper's model: for demos, tests and quick ablations. Its ``train`` is
        :meth:`TrainConfig.tiny() <kinediff.training.TrainConfig.tiny>`.

        A nested config given as a dict changes only the fields it names in the preset's
        (``tiny(decoder_config={"dim": 32})`` keeps the tiny decoder's other sizes); given as a
        config it replaces the preset's."""
        presets: dict[str, ConfigMixin] = {
            "head": HeadConfig(backbone="hrnet_w18_small", heatmap_size=16, num_points=33),
            "decoder_config": DecoderConfig(dim=64, ffn_dim=128, num_layers=2, num_heads=4),
            "schedule_config": ScheduleConfig(), "train": TrainConfig.tiny()}
        base: dict[str, Any] = dict(
            image_size=64, mesh_factors=(4, 4, 4), feature_dim=64, trimap_width=3,
            render_sigma=0.5, loss_level=-1, steps_per_sample=1, edge_loss_start=2, **presets)
        moved = _pop_moved(overrides)
        for group, value in list(overrides.items()):
            if group in presets and isinstance(value, dict):  # the preset, changed
                NESTED_CONFIGS[group].check_fields(value)
                overrides[group] = replace(presets[group], **value)
        base.update(overrides)
        if moved:  # kinediff 0.1's form, for one release
            _warn_moved("PostureHMRConfig.tiny", moved, stacklevel=3)
            _apply_moved(base, moved)
        return cls(**base)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PostureHMRConfig:
        """A config from :meth:`to_dict`, or from an older kinediff's (flat fields, see
        :data:`MOVED_FIELDS`; a flat field wins over the nested one). A config saved before
        ``render_target`` existed (kinediff 0.1, e.g. in an old checkpoint) is read as that
        release built it: options its schedule ignored then (``blend`` off FK, ``noise_*`` off
        noise, ``condition_noise_px`` without the GT condition, ``alpha`` with noise, which meant
        linear betas) go back to their defaults, with a warning. A complete config saved before
        ``root_path`` existed gets the paper's forward process (:data:`PAPER_PATH`), which it was
        trained with. Unknown fields are refused."""
        cls.check_fields(data)
        # complete 0.1: every 0.1 field flat (the training ones possibly nested as ``train``, as
        # the development releases between wrote them); a nested model config means a later release
        complete_v01 = not ({"head", "schedule_config", "decoder_config"} & data.keys()) and all(
            name in data or (name in TRAIN_FIELDS and "train" in data) for name in _V01_FIELDS)
        saved_before_root_path = "root_path" not in data and complete_v01
        moved = {k: data[k] for k in MOVED_FIELDS if k in data}
        if moved:
            data = {k: v for k, v in data.items() if k not in MOVED_FIELDS}
            for group, names in _by_group(moved).items():
                nested = data.get(group, {})
                if isinstance(nested, ConfigMixin):
                    nested = nested.to_dict()
                if not isinstance(nested, dict):
                    raise ValueError(f"{group} must be a {NESTED_CONFIGS[group].__name__} or a dict "
                                     f"of its fields, got {type(nested).__name__}")
                data[group] = {**nested, **names}  # a flat field is the newer word
        if "render_target" not in data and complete_v01:
            data = _legacy_config(data)
        if saved_before_root_path and data.get("decoder", "m2p") == "m2p" and \
                data.get("schedule", "fk") in SCHEDULE_OPTIONS["root_path"]:
            # saved before the heading root path and rollout training: read as trained then
            data = {**data, **PAPER_PATH}
        return super().from_dict(data)


# -- value checks ------------------------------------------------------------------------------

def _integer(value: Any, name: str, low: int, high: int | None, what: str = "") -> int:
    """``value`` as an int in [low, high] (``high`` None: no upper limit); a Python or numpy
    integer, not a bool. ``ValueError`` naming ``name`` otherwise."""
    span = f"in [{low}, {high}]" if high is not None else f">= {low}"
    about = f" ({what})" if what else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer {span}{about}, got {value!r}")
    if not low <= int(value) <= (high if high is not None else int(value)):
        raise ValueError(f"{name} must be an integer {span}{about}, got {value}")
    return int(value)


def _number(value: Any, name: str, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False) -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high`` (open where said); an
    int or a float (numpy's too), not a bool; NaN and infinities refused."""
    span = (f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            if math.isfinite(high) else f"{'>' if low_open else '>='} {low:g}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number {span}, got {value!r}")
    number = float(value)
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if not (math.isfinite(number) and above and below):
        raise ValueError(f"{name} must be a finite number {span}, got {value!r}")
    return number


def _mesh_factors(factors: Any) -> tuple[int, ...]:
    """``factors`` as a tuple of 1 to 4 integers in [2, 64] that leave an SMPL-sized body at least
    4 coarse vertices. ``TypeError`` for a value that is not a list, a tuple or a 1-D numpy array
    (a string included), ``ValueError`` for the rest."""
    low, high = MESH_FACTOR_RANGE
    if isinstance(factors, np.ndarray) and factors.ndim == 1:
        factors = factors.tolist()
    if not isinstance(factors, (list, tuple)):
        raise TypeError(f"mesh_factors must be a list of 1 to {MAX_MESH_LEVELS} integer "
                        f"decimation factors, got {type(factors).__name__} {factors!r}")
    if not 1 <= len(factors) <= MAX_MESH_LEVELS or any(
            isinstance(f, bool) or not isinstance(f, numbers.Integral) or not low <= f <= high
            for f in factors):
        raise ValueError(f"mesh_factors must be 1 to {MAX_MESH_LEVELS} integers, each in [{low}, "
                         f"{high}], got {list(factors)}")
    out = tuple(int(f) for f in factors)
    count = _SMPL_VERTICES
    for factor in out:
        count = math.ceil(count / factor)
    if count < MIN_COARSE_VERTICES:
        raise ValueError(f"mesh_factors {list(out)} leave a 6890-vertex body {count} coarse "
                         f"vertices; at least {MIN_COARSE_VERTICES} are needed")
    return out


# -- paths into the config, and the defaults --------------------------------------------------

def _get(config: Any, path: str) -> Any:
    """The value at ``path`` ("render_weight", "schedule_config.blend") of a config or dict."""
    value = config
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


_TOP_DEFAULTS: dict[str, Any] = {f.name: (f.default if f.default_factory is MISSING  # type: ignore[misc]
                                          else f.default_factory())  # type: ignore[misc]
                                 for f in fields(PostureHMRConfig)}


def _default(path: str) -> Any:
    """The default of the option at ``path`` (what an option that does not apply must be)."""
    return _get(_TOP_DEFAULTS, path)


def _legacy_config(data: dict[str, Any]) -> dict[str, Any]:
    """A kinediff-0.1 config dict (nested by now) with the options that release ignored set to
    their defaults (see :meth:`PostureHMRConfig.from_dict`)."""
    fixed = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    schedule = fixed.get("schedule", _default("schedule"))
    ignored = [k for k, schedules in SCHEDULE_OPTIONS.items() if schedule not in schedules]
    if schedule == "noise":
        ignored.append("schedule_config.alpha")  # 0.1 always built linear betas
    if fixed.get("train_condition", _default("train_condition")) != "gt":
        ignored.append("condition_noise_px")
    reset = []
    for path in ignored:
        *groups, leaf = path.split(".")
        where = fixed.get(groups[0], {}) if groups else fixed
        if isinstance(where, dict) and leaf in where and where[leaf] != _default(path):
            where[leaf] = _default(path)
            reset.append(leaf)
    if reset:
        warnings.warn(f"a kinediff 0.1 PostureHMRConfig: {', '.join(reset)} had no effect then "
                      f"and are read as their defaults", stacklevel=3)
    return fixed


# -- kinediff 0.1's flat names, for one release -----------------------------------------------

def _by_group(moved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for name, value in moved.items():
        groups.setdefault(MOVED_FIELDS[name], {})[name] = value
    return groups


def _pop_moved(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs.pop(k) for k in list(kwargs) if k in MOVED_FIELDS}


def _apply_moved(kwargs: dict[str, Any], moved: dict[str, Any]) -> None:
    """Put flat 0.1 names into their nested configs in constructor ``kwargs`` (in place)."""
    for group, names in _by_group(moved).items():
        kind = NESTED_CONFIGS[group]
        nested = kwargs.get(group, MISSING)
        if nested is MISSING:
            nested = kind()
        elif isinstance(nested, dict):
            nested = kind.from_dict(nested)
        if not isinstance(nested, kind):
            raise ValueError(f"{group} must be a {kind.__name__} or a dict of its fields, got "
                             f"{type(nested).__name__}")
        kwargs[group] = replace(nested, **names)


def _warn_moved(call: str, moved: dict[str, Any], stacklevel: int) -> None:
    for group, names in _by_group(moved).items():
        listed = ", ".join(f"{k}=..." for k in names)
        kind = NESTED_CONFIGS[group].__name__
        if call == "PostureHMRConfig":
            warnings.warn(f"PostureHMRConfig({listed}) or replace(config, {listed}): {_WHAT[group]} "
                          f"moved to PostureHMRConfig.{group}, a {kind} (e.g. replace(config, "
                          f"{group}=replace(config.{group}, {listed}))); this form goes in the next "
                          f"release", DeprecationWarning, stacklevel=stacklevel)
        else:
            warnings.warn(f"{call}({listed}): {_WHAT[group]} moved to {group}= ({call}({group}="
                          f"{{...}}) with the fields to change); this form goes in the next "
                          f"release", DeprecationWarning, stacklevel=stacklevel)


def _caller_stacklevel() -> int:
    """The stacklevel that names the user's line from inside PostureHMRConfig.__init__'s
    wrapper, past ``dataclasses.replace`` (and ``copy.replace``) when it is the caller."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__") in ("dataclasses", "copy"):
        frame, level = frame.f_back, level + 1
    return level


def _accept_moved_fields(init):
    """PostureHMRConfig's constructor, also taking kinediff 0.1's flat names (deprecated), which
    go into their nested configs before the config is checked."""
    @functools.wraps(init)
    def __init__(self: PostureHMRConfig, *args: Any, **kwargs: Any) -> None:
        moved = _pop_moved(kwargs)
        if moved:
            _warn_moved("PostureHMRConfig", moved, stacklevel=_caller_stacklevel() + 1)
            _apply_moved(kwargs, moved)
        init(self, *args, **kwargs)

    return __init__


def _moved_attribute(name: str) -> property:
    group = MOVED_FIELDS[name]

    def read(self: PostureHMRConfig) -> Any:
        warnings.warn(f"PostureHMRConfig.{name} moved to PostureHMRConfig.{group}.{name}; the old "
                      f"name goes in the next release", DeprecationWarning, stacklevel=2)
        return getattr(getattr(self, group), name)

    def write(self: PostureHMRConfig, value: Any) -> None:
        warnings.warn(f"setting PostureHMRConfig.{name}: it moved to PostureHMRConfig.{group} (use "
                      f"config.{group} = dataclasses.replace(config.{group}, {name}=...)); the old "
                      f"name goes in the next release", DeprecationWarning, stacklevel=2)
        setattr(self, group, replace(getattr(self, group), **{name: value}))

    return property(read, write, doc=f"Deprecated since 0.2, use ``{group}.{name}``.")


for _name in MOVED_FIELDS:
    setattr(PostureHMRConfig, _name, _moved_attribute(_name))
PostureHMRConfig.__init__ = _accept_moved_fields(PostureHMRConfig.__init__)  # type: ignore[method-assign]
PostureHMRConfig.legacy_fields = tuple(MOVED_FIELDS)

#: The paper's own forward process: the geodesic root path to one template orientation, trained
#: on the path's exact meshes only (kinediff's defaults turn the template to the estimated heading
#: and train on a share of the decoder's own rollouts; see docs/posturehmr.md).
PAPER_PATH: dict[str, Any] = dict(root_path="geodesic", rollout_share=0.0)

#: Table 3's rows, in the paper's order, as config changes from a base config (the paper's
#: forward process in every FK / VL row).
TABLE3_ROWS: dict[str, dict[str, Any]] = {
    "Baseline": dict(schedule="noise", condition="image_feature", render_loss=False),
    "Baseline + VL": dict(schedule="vl", condition="image_feature", render_loss=False, **PAPER_PATH),
    "Baseline + FK": dict(schedule="fk", condition="image_feature", render_loss=False, **PAPER_PATH),
    "Baseline + FK + 2D mesh": dict(schedule="fk", condition="2d_mesh", render_loss=False,
                                    **PAPER_PATH),
    "Baseline + FK + 2D mesh + render": dict(schedule="fk", condition="2d_mesh", render_loss=True,
                                             **PAPER_PATH),
}


def table3_configs(base: PostureHMRConfig | None = None) -> dict[str, PostureHMRConfig]:
    """The five Table 3 configurations as changes of ``base`` (default: the paper's config); a
    base option that does not apply to a row's schedule (e.g. FK's ``blend`` on the noise row)
    goes back to its default there, and so does ``alpha`` where its meaning changes (a progress
    schedule for "fk" / "vl", a beta schedule for "noise")."""
    base = base or PostureHMRConfig()
    out = {}
    for name, change in TABLE3_ROWS.items():
        data = {**base.to_dict(), **change}
        resets = [k for k, schedules in SCHEDULE_OPTIONS.items() if data["schedule"] not in schedules]
        if (data["schedule"] == "noise") != (base.schedule == "noise"):
            resets.append("schedule_config.alpha")
        for path in resets:
            *groups, leaf = path.split(".")
            if groups:
                data[groups[0]] = {**data[groups[0]], leaf: _default(path)}
            else:
                data[leaf] = _default(path)
        out[name] = PostureHMRConfig.from_dict(data)
    return out
