"""``PostureHMR``: the paper's pipeline (Fig. 2) composed from kinediff's components.

image crop --HRNetMeshHead--> 2D mesh M_0^2d --(condition)--> M2PDecoder, run as the reverse process
of a forward schedule (FK, VL or noise) from M_T --> coarse mesh M_0 --MeshUpsampler--> 6890 vertices.

Training is two-stage, as the paper: :meth:`PostureHMR.loss_2d` trains the 2D stage (backbone,
heatmaps, coefficients C; point L1 + 2D-mesh L1 + trimap render loss), then :meth:`loss_3d` trains
the 3D stage (decoder and up-sampler) with the 2D stage frozen. With ``condition="image_feature"``
(Table 3's "Baseline" rows) there is no 2D mesh: a global image feature vector (pooled backbone
features, ``feature_dim`` long) is concatenated to every vertex and the backbone trains with the
3D stage. Table 3 is a set of configs (:func:`table3_configs`), each a change of config fields.

Frames and units: the 3D meshes live in the body frame with the camera's orientation (the
SMPL output without translation, metres); 2D meshes and points are crop pixels. The decoder reads
the 2D mesh centred on its mean and scaled to unit RMS radius.
"""

from __future__ import annotations

import functools
import os
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kinediff.body import BodyModel
from kinediff.config import ConfigMixin
from kinediff.decoders import GraphormerRegressor, M2PDecoder, MeshUpsampler
from kinediff.forward import (
    ROOT_PATHS,
    FKSchedule,
    ForwardProcess,
    GaussianNoiseSchedule,
    PostureSchedule,
    TrainingBodies,
    VertexLinearSchedule,
    default_template_orientation,
    template_mesh,
)
from kinediff.forward.alphas import ALPHAS
from kinediff.forward.heading import estimate_heading, heading_matrix, torso_weights
from kinediff.heads import HRNetMeshHead, fit_coefficients, keypoint_regressor
from kinediff.losses import Loss3DWeights, loss_3d, trimap_render_loss
from kinediff.mesh import MeshHierarchy
from kinediff.render import project_points
from kinediff.render.soft import SILHOUETTE_BACKENDS
from kinediff.training.config import TRAIN_FIELDS, TrainConfig

__all__ = ["NOISE_BETAS", "PAPER_PATH", "REVERSE_PROCESS_OPTIONS", "SCHEDULE_OPTIONS", "TABLE3_ROWS",
           "PostureHMR", "PostureHMRConfig", "table3_configs"]

#: The beta schedules ``alpha`` names when ``schedule="noise"``.
NOISE_BETAS = ("linear", "scaled_linear", "cosine")
#: The config options only some schedules read, and which.
SCHEDULE_OPTIONS: dict[str, tuple[str, ...]] = {"blend": ("fk",), "noise_train_steps": ("noise",),
                                                "noise_prediction": ("noise",),
                                                "root_path": ("fk", "vl"),
                                                "rollout_share": ("fk", "vl")}
#: The options only the reverse process reads (not the one-step regressor).
REVERSE_PROCESS_OPTIONS = ("root_path", "rollout_share")


@dataclass
class PostureHMRConfig(ConfigMixin):
    """Every choice of a PostureHMR model and its training; defaults are the paper's.

    2D stage: ``backbone`` (timm HRNet), ``pretrained`` (local weights file or None),
    ``image_size`` (crop side, 256), ``heatmap_size`` (64), ``num_points`` (K = 81: 17 joints +
    64 markers). Mesh: ``mesh_factors`` ((4, 4): 431 coarse vertices; (4, 4, 4): about 108).
    Forward process: ``schedule`` ("fk" | "vl" | "noise"), ``num_steps`` (T = 10), ``alpha`` (the
    progress schedule of "fk" and "vl": "linear", "cosine", "sigmoid"; with "noise", the DDPM beta
    schedule: "linear", "scaled_linear", "cosine"), ``blend`` ("paper" | "exact"; FK only),
    ``root_path`` (FK / VL: "geodesic", the paper's turn to one template orientation; "heading",
    the template first turned to the heading estimated from the 2D mesh, continuous for people
    seen from behind; "auto", the default: "heading" with the 2D-mesh condition, else
    "geodesic"), ``rollout_share`` (FK / VL: the share of each batch's training steps that start
    from the decoder's own reverse process instead of the path's exact M_t, against exposure
    bias; 0.5 by default, 0 is the paper's training; :data:`PAPER_PATH` sets both to the paper's),
    ``noise_train_steps`` (1000) and ``noise_prediction`` ("sample" | "epsilon"; noise only). An
    option that cannot apply to the chosen schedule, set to anything but its default, is refused.
    Decoder: ``decoder`` ("m2p", or "regressor" for the one-step GraphormerRegressor baseline),
    ``condition`` ("2d_mesh" | "image_feature"), ``feature_dim`` (2048, the paper's global vector),
    ``dim`` / ``ffn_dim`` (128 / 512), ``num_layers``, ``num_heads``, ``dropout``.
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
    Training: ``train``, a :class:`~kinediff.training.TrainConfig` (learning rates, epochs, decay,
    batch size, gradient clipping), read by the Trainer only. Before kinediff 0.2 those were
    fields of this config: passing them here (``PostureHMRConfig(batch_size=8)``) or reading them
    (``config.batch_size``) still works for one release, with a ``DeprecationWarning``; saved
    configs with them load without one.
    """

    image_size: int = 256
    backbone: str = "hrnet_w48"
    pretrained: str | None = None
    heatmap_size: int = 64
    num_points: int = 81
    mesh_factors: tuple[int, ...] = (4, 4)
    schedule: str = "fk"
    num_steps: int = 10
    alpha: str = "linear"
    blend: str = "paper"
    root_path: str = "auto"
    rollout_share: float = 0.5
    noise_train_steps: int = 1000
    noise_prediction: str = "sample"
    decoder: str = "m2p"
    condition: str = "2d_mesh"
    feature_dim: int = 2048
    dim: int = 128
    ffn_dim: int = 512
    num_layers: int = 4
    num_heads: int = 4
    dropout: float = 0.0
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
        if isinstance(self.train, dict):
            self.train = TrainConfig.from_dict(self.train)
        if not isinstance(self.train, TrainConfig):
            raise ValueError(f"train must be a TrainConfig, got {type(self.train).__name__}")
        self.mesh_factors = tuple(int(f) for f in self.mesh_factors)
        choices = {"schedule": ("fk", "vl", "noise"), "condition": ("2d_mesh", "image_feature"),
                   "decoder": ("m2p", "regressor"), "train_condition": ("predicted", "gt"),
                   "noise_prediction": ("sample", "epsilon"), "blend": ("paper", "exact"),
                   "render_backend": SILHOUETTE_BACKENDS, "render_target": ("mesh", "mask"),
                   "root_path": ("auto", *ROOT_PATHS),
                   "alpha": NOISE_BETAS if self.schedule == "noise" else tuple(ALPHAS)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                where = f" with schedule={self.schedule!r}" if name == "alpha" else ""
                raise ValueError(f"{name} must be one of {allowed}{where}, got "
                                 f"{getattr(self, name)!r}")
        for name, value in self.inapplicable().items():
            raise ValueError(f"{name}={value!r} has no effect with {self._context(name)}: leave it "
                             f"at its default ({_DEFAULTS[name]!r})")
        if self.resolved_root_path == "heading" and self.condition != "2d_mesh":
            raise ValueError("root_path='heading' estimates each sample's heading from its 2D mesh; "
                             "the image-feature condition has none: use root_path='geodesic'")
        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        if not number(self.rollout_share) or not 0.0 <= self.rollout_share < 1.0:
            raise ValueError(f"rollout_share must lie in [0, 1), got {self.rollout_share!r}")
        if not isinstance(self.edge_loss_start, int) or self.edge_loss_start < 0:
            raise ValueError(f"edge_loss_start must be a non-negative epoch, got "
                             f"{self.edge_loss_start!r}")
        if self.num_points <= 17:
            raise ValueError(f"num_points must exceed the 17 joints, got {self.num_points}")
        if self.image_size % self.heatmap_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of heatmap_size "
                             f"({self.heatmap_size})")
        unknown = set(self.loss_weights) - set(Loss3DWeights().to_dict())
        if unknown:
            raise ValueError(f"unknown loss_weights {sorted(unknown)}")

    @property
    def resolved_root_path(self) -> str:
        """The FK / VL root path the model builds: ``root_path``, with "auto" read as "heading"
        for the 2D-mesh condition (the heading is estimated from the 2D mesh) and "geodesic" (the
        paper's) for the image-feature condition."""
        if self.root_path != "auto":
            return self.root_path
        return "heading" if self.condition == "2d_mesh" else "geodesic"

    def inapplicable(self) -> dict[str, Any]:
        """The options set to something other than their default that the chosen schedule or
        training condition never reads (the constructor refuses each)."""
        unused = [k for k, schedules in SCHEDULE_OPTIONS.items() if self.schedule not in schedules]
        if self.train_condition != "gt":
            unused.append("condition_noise_px")
        if self.decoder == "regressor":  # one pass: no forward process to start or roll out
            unused += [k for k in REVERSE_PROCESS_OPTIONS if k not in unused]
        return {n: getattr(self, n) for n in unused if getattr(self, n) != _DEFAULTS[n]}

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
        :meth:`TrainConfig.tiny() <kinediff.training.TrainConfig.tiny>`."""
        base: dict[str, Any] = dict(
            image_size=64, backbone="hrnet_w18_small", heatmap_size=16, num_points=33,
            mesh_factors=(4, 4, 4), feature_dim=64, dim=64, ffn_dim=128, num_layers=2, num_heads=4,
            trimap_width=3, render_sigma=0.5, loss_level=-1, steps_per_sample=1,
            edge_loss_start=2, train=TrainConfig.tiny())
        given = {k: overrides.pop(k) for k in TRAIN_FIELDS if k in overrides}
        if isinstance(overrides.get("train"), dict):  # the tiny recipe, changed
            overrides["train"] = TrainConfig.tiny(**overrides["train"])
        base.update(overrides)
        if given:  # kinediff 0.1's form, for one release
            import warnings

            names = ", ".join(f"{k}=..." for k in given)
            warnings.warn(f"PostureHMRConfig.tiny({names}): the training fields moved to train= "
                          f"(PostureHMRConfig.tiny(train=TrainConfig.tiny({names}))); this form "
                          f"goes in the next release", DeprecationWarning, stacklevel=2)
            base["train"] = replace(base["train"], **given)
        return cls(**base)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PostureHMRConfig:
        """A config from :meth:`to_dict`. A config saved before ``render_target`` existed (kinediff
        0.1, e.g. in an old checkpoint) is read as that release built it: options its schedule
        ignored then (``blend`` off FK, ``noise_*`` off noise, ``condition_noise_px`` without the
        GT condition, ``alpha`` with noise, which meant linear betas) go back to their defaults,
        with a warning. A complete config saved before ``root_path`` existed gets the paper's
        forward process (:data:`PAPER_PATH`), which it was trained with. Unknown fields are
        refused."""
        cls.check_fields(data)
        # complete: every 0.1 model field present (the training ones flat, as 0.1 wrote them, or
        # nested as ``train``)
        complete_v01 = _V01_FIELDS - set(TRAIN_FIELDS) <= set(data) and (
            "train" in data or set(TRAIN_FIELDS) <= set(data))
        saved_before_root_path = "root_path" not in data and complete_v01
        if "render_target" not in data and complete_v01:
            data = _legacy_config(data)
        if any(k in data for k in TRAIN_FIELDS):  # saved before train: the training fields flat
            flat = {k: data[k] for k in TRAIN_FIELDS if k in data}
            nested = data.get("train", {})
            if isinstance(nested, TrainConfig):
                nested = nested.to_dict()
            if not isinstance(nested, dict):
                raise ValueError(f"train must be a TrainConfig or a dict of its fields, got "
                                 f"{type(nested).__name__}")
            data = {**{k: v for k, v in data.items() if k not in TRAIN_FIELDS},
                    "train": {**nested, **flat}}  # a flat field is the newer word
        if saved_before_root_path and data.get("decoder", "m2p") == "m2p" and \
                data.get("schedule", "fk") in SCHEDULE_OPTIONS["root_path"]:
            # saved before the heading root path and rollout training: read as trained then
            data = {**data, **PAPER_PATH}
        return super().from_dict(data)


def _legacy_config(data: dict[str, Any]) -> dict[str, Any]:
    """A kinediff-0.1 config dict with the options that release ignored set to their defaults
    (see :meth:`PostureHMRConfig.from_dict`)."""
    import warnings

    fixed = dict(data)
    schedule = fixed.get("schedule", _DEFAULTS["schedule"])
    ignored = [k for k, schedules in SCHEDULE_OPTIONS.items() if schedule not in schedules]
    if schedule == "noise":
        ignored.append("alpha")  # 0.1 always built linear betas
    if fixed.get("train_condition", _DEFAULTS["train_condition"]) != "gt":
        ignored.append("condition_noise_px")
    reset = [k for k in ignored if k in fixed and fixed[k] != _DEFAULTS[k]]
    for key in reset:
        fixed[key] = _DEFAULTS[key]
    if reset:
        warnings.warn(f"a kinediff 0.1 PostureHMRConfig: {', '.join(reset)} had no effect then "
                      f"and are read as their defaults", stacklevel=3)
    return fixed


#: The fields of a complete kinediff-0.1 config (as its ``to_dict`` wrote them); configs saved after
#: 0.1 add fields to these, and those saved before ``root_path`` existed trained the paper's path.
_V01_FIELDS = ({f.name for f in fields(PostureHMRConfig)} - {
    "render_target", "edge_loss_start", "root_path", "rollout_share", "train"}) | set(TRAIN_FIELDS)


def _caller_stacklevel() -> int:
    """The stacklevel that names the user's line from inside PostureHMRConfig.__init__'s
    wrapper, past ``dataclasses.replace`` when it is the caller."""
    import sys

    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__") == "dataclasses":
        frame, level = frame.f_back, level + 1
    return level


def _deprecated_train_field(name: str) -> property:
    def read(self: PostureHMRConfig) -> Any:
        import warnings

        warnings.warn(f"PostureHMRConfig.{name} moved to PostureHMRConfig.train.{name} (a "
                      f"TrainConfig); the old name goes in the next release", DeprecationWarning,
                      stacklevel=2)
        return getattr(self.train, name)

    def write(self: PostureHMRConfig, value: Any) -> None:
        import warnings

        warnings.warn(f"setting PostureHMRConfig.{name}: it moved to PostureHMRConfig.train (use "
                      f"config.train = dataclasses.replace(config.train, {name}=...)); the old "
                      f"name goes in the next release", DeprecationWarning, stacklevel=2)
        self.train = replace(self.train, **{name: value})

    return property(read, write, doc=f"Deprecated since 0.2, use ``train.{name}``.")


def _accept_train_fields(init):
    """PostureHMRConfig's constructor, also taking kinediff 0.1's training fields (deprecated),
    which go into ``train``."""
    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = {k: kwargs.pop(k) for k in TRAIN_FIELDS if k in kwargs}
        init(self, *args, **kwargs)
        if given:
            import warnings

            names = ", ".join(f"{k}=..." for k in given)
            warnings.warn(f"PostureHMRConfig({names}) or replace(config, {names}): the training "
                          f"fields moved to PostureHMRConfig.train, a TrainConfig (e.g. "
                          f"replace(config, train=replace(config.train, {names}))); this form goes "
                          f"in the next release", DeprecationWarning, stacklevel=_caller_stacklevel())
            self.train = replace(self.train, **given)

    return __init__


for _name in TRAIN_FIELDS:  # kinediff 0.1's reads of the training fields, for one release
    setattr(PostureHMRConfig, _name, _deprecated_train_field(_name))
PostureHMRConfig.__init__ = _accept_train_fields(PostureHMRConfig.__init__)  # type: ignore[method-assign]
PostureHMRConfig.legacy_fields = TRAIN_FIELDS

#: Each config field's default (what an option that does not apply must be left at).
_DEFAULTS: dict[str, Any] = {f.name: (f.default if f.default_factory is MISSING  # type: ignore[misc]
                                      else f.default_factory())  # type: ignore[misc]
                             for f in fields(PostureHMRConfig)}

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
        for key, schedules in SCHEDULE_OPTIONS.items():
            if data["schedule"] not in schedules:
                data[key] = _DEFAULTS[key]
        if (data["schedule"] == "noise") != (base.schedule == "noise"):
            data["alpha"] = _DEFAULTS["alpha"]
        out[name] = PostureHMRConfig.from_dict(data)
    return out


class PostureHMR(nn.Module):
    """The PostureHMR model.

    Args:
        config: a :class:`PostureHMRConfig` (``PostureHMRConfig()`` for the paper's,
            ``PostureHMRConfig.tiny()`` for CPU).
        body: the :class:`~kinediff.body.BodyModel` whose meshes are learnt (its dtype is the
            model's: float32, or float64 after ``.double()`` on both).

    Batches are sample dicts (:mod:`kinediff.data.sample`): ``image`` (B, 3, S, S), ``mask``,
    ``pose`` (B, 24, 3), ``betas`` (B, 10), ``K``, ``transl``, ``mesh2d`` (B, N, 2), ``has_smpl``.
    """

    def __init__(self, config: PostureHMRConfig, body: BodyModel) -> None:
        super().__init__()
        self.config = c = config
        self.body = body
        self.hierarchy = MeshHierarchy.from_body(body, c.mesh_factors)
        self.num_coarse = self.hierarchy.sizes[-1]
        adjacency = self.hierarchy.adjacency(-1)
        self.schedule: ForwardProcess
        if c.schedule == "noise":
            self.schedule = GaussianNoiseSchedule(c.noise_train_steps, c.alpha, c.num_steps,
                                                       c.noise_prediction)
        elif c.schedule == "vl":
            self.schedule = VertexLinearSchedule(body, c.num_steps, c.alpha,
                                                 root_path=c.resolved_root_path)
        else:
            self.schedule = FKSchedule(body, c.num_steps, c.alpha, c.blend,
                                       root_path=c.resolved_root_path)
        cond_dim = 2 if c.condition == "2d_mesh" else c.feature_dim
        self.head = HRNetMeshHead(c.backbone, c.num_points, self.num_coarse, c.heatmap_size,
                                  pretrained=c.pretrained)
        self.feature = (nn.Linear(self.head.feature_channels, c.feature_dim)
                        if c.condition == "image_feature" else None)
        template = self.hierarchy.downsample(self.template(1))[0]
        if c.decoder == "regressor":
            self.decoder: M2PDecoder | GraphormerRegressor = GraphormerRegressor(adjacency, template, c.dim, c.ffn_dim,
                                                    c.num_layers, c.num_heads, cond_dim, c.dropout)
        else:
            self.decoder = M2PDecoder(adjacency, c.dim, c.ffn_dim, c.num_layers, c.num_heads,
                                      c.num_steps, cond_dim, c.dropout)
        self.upsampler = MeshUpsampler(self.hierarchy)
        self.register_buffer("keypoint_weights", keypoint_regressor(body, c.num_points - 17),
                             persistent=False)
        self.loss_weights = Loss3DWeights(**c.loss_weights)
        self.loss_level = self.hierarchy.level_index(c.loss_level)
        # the joint term's points, as VirtualMarker's: the K keypoints of the 2D stage (17
        # H36M-style joints and the markers) regressed from the mesh; on a coarser level, through
        # the barycentric up-sampling
        reg = self.keypoint_weights
        for level in range(1, self.loss_level + 1):
            reg = reg @ self.hierarchy.upsampling_matrix(level).to(reg)
        self.register_buffer("loss_regressor", reg, persistent=False)
        # the heading estimate's reference: the coarse template at heading 0 and its torso
        if self.uses_heading:
            self.register_buffer("heading_template", template, persistent=False)
            self.register_buffer("heading_weights", torso_weights(
                self.hierarchy.downsample(body.weights[None].to(template))[0]), persistent=False)

    # -- helpers ------------------------------------------------------------------------------

    @property
    def dtype(self) -> torch.dtype:
        """The model's floating dtype (its body's): batches are cast to it (``model.double()``
        runs end to end in float64)."""
        return self.body.v_template.dtype

    @property
    def uses_heading(self) -> bool:
        """Whether the template end is turned to each sample's estimated heading (a posture
        schedule with ``root_path="heading"``)."""
        return isinstance(self.schedule, PostureSchedule) and self.schedule.root_path == "heading"

    def template(self, batch: int, heading: torch.Tensor | None = None) -> torch.Tensor:
        """M_T at full resolution (B, V, 3): the posture schedules' start (the template in the
        template orientation, at heading 0 when ``heading`` is None), turned by ``heading`` (B,)
        about the camera's vertical axis when given (``root_path="heading"`` only); for the noise
        process and the regressor, the template in the paper's orientation."""
        if heading is not None:
            if not self.uses_heading:
                raise ValueError("heading is only read with a posture schedule whose root_path is "
                                 "'heading'")
            return self.schedule.initial(batch, heading)  # type: ignore[call-arg]
        orientation = (self.schedule.template_orientation
                       if isinstance(self.schedule, PostureSchedule)
                       else default_template_orientation().to(self.body.v_template))
        return template_mesh(self.body, orientation).expand(batch, -1, -1).clone()

    def heading(self, condition: torch.Tensor) -> torch.Tensor | None:
        """Each sample's heading (B,) radians, estimated from the decoder's 2D-mesh condition
        (:func:`~kinediff.forward.heading.estimate_heading` on the torso), with
        ``root_path="heading"``; None with the paper's geodesic root path."""
        if not self.uses_heading:
            return None
        return estimate_heading(condition, self.heading_template, self.heading_weights)

    def _rollout(self, start: torch.Tensor, t: torch.Tensor, condition: torch.Tensor
                 ) -> torch.Tensor:
        """The decoder's own meshes: its reverse process run from ``start`` (B, N, 3) down to each
        sample's step t (B,) (no gradient), with encoded ``condition`` (B, N, dim).

        Returns (B, T + 1, N, 3) with index s holding the sample's own M_s for s in [t, T] (index
        T is ``start``; below t the entries are not defined)."""
        mesh = start
        meshes = [start]
        with torch.no_grad():
            for step in range(self.schedule.num_steps, int(t.min()), -1):
                steps = torch.full_like(t, step)
                moved = mesh + self.decoder(mesh, step=steps, condition=condition)
                mesh = torch.where((t < step)[:, None, None], moved, mesh)
                meshes.append(mesh)
        meshes += [mesh] * (self.schedule.num_steps + 1 - len(meshes))
        return torch.stack(meshes[::-1], dim=1)

    @staticmethod
    def _normalise(mesh2d: torch.Tensor) -> torch.Tensor:
        """The decoder's view of a 2D mesh: centred on its mean, scaled to unit RMS radius (where
        the person stands in the crop and how large it looks say nothing about its root-relative
        3D posture, and crops of real data differ in both)."""
        centred = mesh2d - mesh2d.mean(1, keepdim=True)
        return centred / centred.square().sum(-1).mean(1).sqrt().clamp_min(1e-6)[:, None, None]

    def ground_truth(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """GT from a batch: ``vertices`` (B, V, 3) and ``joints`` (B, 24, 3), the model's body's
        mesh of the batch's SMPL parameters (body frame; the 3D stage's targets, whose forward
        path starts at this body's template); ``points`` (B, K, 2) and ``mesh2d`` (B, N, 2) in
        crop pixels, the image-aligned labels: the data set's ``mesh2d``, and the keypoints of the
        data set's own GT mesh (``batch["vertices"]``: the sample's gendered model for gendered
        GT) where the batch has one, else of the model's body's."""
        with torch.no_grad():
            pose, betas = batch["pose"].to(self.dtype), batch["betas"].to(self.dtype)
            out = self.body(pose, betas)
            verts = out.vertices
            joints = torch.einsum("jv,bvc->bjc", self.body.J_regressor, verts)
            labelled = batch["vertices"].to(self.dtype) if "vertices" in batch else verts
            kp3d = torch.einsum("kv,bvc->bkc", self.keypoint_weights, labelled)
            points = project_points(kp3d, batch["K"].to(self.dtype), batch["transl"].to(self.dtype))
            mesh2d = batch["mesh2d"].to(self.dtype) if "mesh2d" in batch else project_points(
                self.hierarchy.downsample(labelled), batch["K"].to(self.dtype), batch["transl"].to(self.dtype))
        return {"vertices": verts, "joints": joints, "points": points, "mesh2d": mesh2d}

    def condition(self, images: torch.Tensor, mesh2d: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The decoder's per-vertex condition (B, N, cond_dim) and the 2D head's outputs.

        ``mesh2d`` (B, N, 2) in crop pixels replaces the predicted 2D mesh when given (2d_mesh
        condition only)."""
        if self.config.condition == "image_feature":
            head = self.head(images)
            feat = self.feature(head["features"].mean((-2, -1)))  # type: ignore[misc]
            return feat[:, None].expand(-1, self.num_coarse, -1), head
        head = {} if mesh2d is not None else self.head(images)
        m2d = mesh2d if mesh2d is not None else head["mesh2d"]
        return self._normalise(m2d), head

    # -- training -----------------------------------------------------------------------------

    def init_coefficients(self, batch: dict[str, Any], ridge: float = 1e-3) -> None:
        """Set the head's C by least squares from a batch's GT points and 2D meshes (centred on
        their mean so C does not depend on where the person stands in the crop). The batch may be
        on any device: it is moved to the model's."""
        device = self.body.v_template.device
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        gt = self.ground_truth(batch)
        p, m = gt["points"], gt["mesh2d"]
        centre = p.mean(1, keepdim=True)
        coeff = fit_coefficients(p - centre, m - centre, ridge)
        # rows re-normalised to sum to 1: translation equivariance (C 1 = 1)
        coeff = coeff + (1.0 - coeff.sum(1, keepdim=True)) / coeff.shape[1]
        with torch.no_grad():
            self.head.coefficients.copy_(coeff.to(self.head.coefficients))

    def loss_2d(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The 2D stage's loss terms and ``total``: ``point_weight`` * point L1 + ``mesh2d_weight``
        * 2D-mesh L1 (both on coordinates / crop size, means over points and coordinates) +
        ``render_weight`` * the trimap render loss (eq. 6, :func:`~kinediff.losses.
        trimap_render_loss`: the predicted and the GT 2D mesh rendered alike; with
        ``render_target="mask"`` the data set's mask for the samples whose ``has_mask`` is set)."""
        c = self.config
        gt = self.ground_truth(batch)
        out = self.head(batch["image"].to(self.dtype))
        s = float(c.image_size)
        terms = {"points": F.l1_loss(out["points"] / s, gt["points"] / s),
                 "mesh2d": F.l1_loss(out["mesh2d"] / s, gt["mesh2d"] / s)}
        total = c.point_weight * terms["points"] + c.mesh2d_weight * terms["mesh2d"]
        if c.render_loss:
            masks: dict[str, Any] = {}
            if c.render_target == "mask" and batch.get("mask") is not None:
                has = batch.get("has_mask")
                use = (torch.ones(out["mesh2d"].shape[0], dtype=torch.bool,
                                  device=out["mesh2d"].device) if has is None else has.bool())
                masks = {"gt_mask": batch["mask"], "use_mask": use}
            terms["trimap"] = trimap_render_loss(
                out["mesh2d"], gt["mesh2d"], self.hierarchy.faces(-1), c.image_size,
                c.trimap_width, c.render_sigma, backend=c.render_backend, **masks).mean()
            total = total + c.render_weight * terms["trimap"]
        terms["total"] = total
        return terms

    def loss_3d(self, batch: dict[str, Any], generator: torch.Generator | None = None,
                epoch: int | None = None) -> dict[str, torch.Tensor]:
        """The 3D stage's terms and ``total`` (``loss_3d`` of :mod:`kinediff.losses`, with
        VirtualMarker's units: see docs/posturehmr.md).

        Posture schedules: ``steps_per_sample`` distinct steps t of each sample's path; the decoder
        predicts M_{t-1} - M_t from M_t, and the posture term is eq. 7 — the squared residual
        summed over the coarse mesh, T times its mean over the drawn steps (the sum over k); the
        vertex / joint / surface terms compare the up-sampled M_t + Delta with M_{t-1}. Noise:
        DDPM training at t ~ U{0..N-1}, the terms on the predicted x0. Regressor: one pass, the
        posture term on the coarse mesh. ``epoch`` (0-based): the edge term counts from
        ``edge_loss_start`` on (None: always)."""
        c = self.config
        images = batch["image"].to(self.dtype)
        gt = self.ground_truth(batch)
        cond = self._training_condition(images, gt, generator)
        edge = epoch is None or epoch >= c.edge_loss_start
        if isinstance(self.decoder, GraphormerRegressor):  # one pass: no forward process
            coarse = self.hierarchy.downsample(gt["vertices"])
            pred = self.decoder(cond)
            return self._terms(pred, coarse, pred, gt["vertices"], coarse, batch.get("has_smpl"),
                               1, edge)
        heading = self.heading(cond)
        example = self.schedule.training_example(
            TrainingBodies(batch["pose"].to(self.dtype), batch["betas"].to(self.dtype),
                           gt["vertices"], heading),
            generator=generator, steps_per_sample=c.steps_per_sample,
            project=self.hierarchy.downsample)
        encoded = self.decoder.encode_condition(cond)
        # rollout training: the posture paths only (noise has no path to roll out along, and the
        # config's rollout_share is not read there)
        count = (round(c.rollout_share * example.inputs.shape[0])
                 if isinstance(self.schedule, PostureSchedule) else 0)
        if count:
            example = self._with_rollouts(example, encoded, heading, count, generator)
        output = self.decoder(example.inputs, step=example.steps,
                              condition=encoded.repeat_interleave(example.repeats, 0))
        pred = self.schedule.predict_original(output, example.inputs, example.steps)
        mask = batch.get("has_smpl")
        if mask is not None:
            mask = mask.repeat_interleave(example.repeats, 0)
        return self._terms(output, example.target, pred, example.labels_full, example.labels, mask,
                           example.loss_steps, edge)

    def _training_condition(self, images: torch.Tensor, gt: dict[str, torch.Tensor],
                            generator: torch.Generator | None) -> torch.Tensor:
        """The 3D stage's condition (B, N, cond_dim): the GT 2D mesh plus noise
        (``train_condition="gt"``), the frozen 2D stage's prediction, or the image feature."""
        c = self.config
        if c.condition != "2d_mesh":
            return self.condition(images)[0]
        if c.train_condition == "gt":
            m2d = gt["mesh2d"] + c.condition_noise_px * torch.randn(
                gt["mesh2d"].shape, generator=generator, device=images.device)
        else:
            with torch.no_grad():
                m2d = self.head(images)["mesh2d"]
        return self.condition(images, mesh2d=m2d)[0]

    def _with_rollouts(self, example, encoded: torch.Tensor, heading: torch.Tensor | None,
                       count: int, generator: torch.Generator | None):
        """The example with ``count`` random entries' inputs replaced by the decoder's own M_t
        (what inference feeds it), each then learning the step back to the path's M_{t-1}; each
        sample with a chosen entry is rolled out once, down to its lowest chosen step."""
        k = example.repeats
        b = encoded.shape[0]
        dev = example.inputs.device
        own = torch.randperm(b * k, generator=generator)[:count].to(dev)
        samples, inverse = torch.unique(own // k, return_inverse=True)
        t_own = example.steps[own]
        lowest = torch.full((b,), self.schedule.num_steps, dtype=t_own.dtype, device=dev
                            ).scatter_reduce(0, own // k, t_own, "amin")[samples]
        start = self.hierarchy.downsample(self.template(b, heading)).to(example.inputs)[samples]
        path = self._rollout(start, lowest, encoded[samples].detach())
        return example.with_inputs(own, path[inverse, t_own])

    def _terms(self, output: torch.Tensor, target: torch.Tensor, pred: torch.Tensor,
               labels_full: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None,
               loss_steps: int, edge: bool) -> dict[str, torch.Tensor]:
        """``loss_3d``'s terms: the posture term on the decoder's ``output`` against ``target``, the
        vertex / joint / surface terms on the predicted coarse mesh ``pred`` against the labels at
        the loss level (``labels`` coarse, ``labels_full`` full resolution)."""
        level = self.loss_level
        if level == self.hierarchy.level_index(-1):
            pred_v, gt_v = pred, labels
        else:
            pred_v = self.hierarchy.downsample(self.upsampler(pred), level)
            gt_v = self.hierarchy.downsample(labels_full, level)
        reg = self.loss_regressor
        return loss_3d(output, target, pred_v, gt_v, torch.einsum("jv,bvc->bjc", reg, pred_v),
                       torch.einsum("jv,bvc->bjc", reg, gt_v), self.hierarchy.faces(level),
                       mask=mask, weights=self.loss_weights, posture_steps=loss_steps, edge=edge)

    def parameter_groups(self, stage: str, train: TrainConfig | None = None
                         ) -> list[dict[str, Any]]:
        """Optimiser groups with the learning rates of ``train`` (default: ``config.train``) for
        ``stage`` "2d" or "3d".

        "2d": backbone (``lr_backbone``) and heatmap / coefficient layers (``lr_2d``).
        "3d": decoder and up-sampler (``lr_3d``); with the image-feature condition also the
        backbone (``lr_backbone``) and the rest of the head and the feature projection (``lr_2d``).
        """
        c = self.config
        lr = train if train is not None else c.train
        backbone = list(self.head.backbone.parameters())
        head_rest = [p for n, p in self.head.named_parameters() if not n.startswith("backbone.")]
        three_d = list(self.decoder.parameters()) + list(self.upsampler.parameters())
        if stage == "2d":
            if c.condition == "image_feature":
                raise ValueError("the image-feature condition has no 2D stage: train stage '3d'")
            return [{"params": backbone, "lr": lr.lr_backbone, "name": "backbone"},
                    {"params": head_rest, "lr": lr.lr_2d, "name": "2d_mesh"}]
        if stage == "3d":
            groups = [{"params": three_d, "lr": lr.lr_3d, "name": "3d_posture"}]
            if c.condition == "image_feature":
                groups += [{"params": backbone, "lr": lr.lr_backbone, "name": "backbone"},
                           {"params": head_rest + list(self.feature.parameters()),  # type: ignore[union-attr]
                            "lr": lr.lr_2d, "name": "image_feature"}]
            return groups
        raise ValueError(f"stage must be '2d' or '3d', got {stage!r}")

    def stages(self) -> tuple[str, ...]:
        """The training stages this config needs, in order."""
        return ("3d",) if self.config.condition == "image_feature" else ("2d", "3d")

    def loss(self, batch: dict[str, Any], stage: str, epoch: int | None = None
             ) -> dict[str, torch.Tensor]:
        """``loss_2d`` or ``loss_3d`` by stage name; ``epoch`` (0-based, counted over the model's
        whole training) switches on the 3D stage's delayed terms."""
        if stage == "2d":
            return self.loss_2d(batch)
        if stage == "3d":
            return self.loss_3d(batch, epoch=epoch)
        raise ValueError(f"stage must be '2d' or '3d', got {stage!r}")

    def train_mode(self, stage: str) -> PostureHMR:
        """Train mode for ``stage``; in stage "3d" with the 2D-mesh condition the 2D stage stays
        in eval mode (frozen: batch-norm statistics included)."""
        self.train()
        if stage == "3d" and self.config.condition == "2d_mesh":
            self.head.eval()
        return self

    # -- inference ----------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, images: torch.Tensor, return_trajectory: bool = False,
                mesh2d: torch.Tensor | None = None, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        """Meshes from crops.

        Args:
            images: (B, 3, S, S) crops in [0, 1].
            return_trajectory: also return every intermediate mesh.
            mesh2d: (B, N, 2) a 2D mesh in crop pixels to condition on instead of the head's.
            generator: for the noise schedule's starting sample.

        Returns:
            dict with ``vertices`` (B, 6890, 3) and ``joints`` (B, 24, 3) in the body frame (metres),
            ``mesh2d`` (B, N, 2) (None for the image-feature condition), and with
            ``return_trajectory`` ``trajectory`` (B, T + 1, 6890, 3) and ``trajectory_coarse``
            (B, T + 1, N, 3), index t = M_t (index T is the start: the template, or noise).

        Example:
            >>> import torch
            >>> from kinediff import PostureHMR, PostureHMRConfig
            >>> from kinediff.body import BodyModel
            >>> model = PostureHMR(PostureHMRConfig.tiny(), BodyModel.synthetic()).eval()
            >>> out = model.predict(torch.rand(2, 3, 64, 64), return_trajectory=True)
            >>> out["vertices"].shape, out["mesh2d"].shape, out["trajectory"].shape
            (torch.Size([2, 6890, 3]), torch.Size([2, 108, 2]), torch.Size([2, 11, 6890, 3]))
        """
        if images.dim() != 4 or images.shape[1:] != (3, self.config.image_size, self.config.image_size):
            raise ValueError(f"images must have shape (B, 3, {self.config.image_size}, "
                             f"{self.config.image_size}), got {tuple(images.shape)}")
        images = images.to(self.dtype)
        cond, head = self.condition(images, mesh2d)
        b = images.shape[0]
        out: dict[str, Any] = {"mesh2d": head.get("mesh2d", mesh2d)}
        if isinstance(self.decoder, GraphormerRegressor):
            coarse = self.decoder(cond)
            traj_c = coarse[:, None]
        else:
            if isinstance(self.schedule, PostureSchedule):
                start = self.hierarchy.downsample(self.template(b, self.heading(cond))).to(cond)
            else:  # noise: x_T ~ N(0, I) on the coarse mesh
                start = self.schedule.initial(b, self.num_coarse, generator=generator).to(cond)
            traj_c = self.decoder.reverse(start, cond, self.schedule, return_trajectory=True)
            coarse = traj_c[:, 0]
        out["vertices"] = self.upsampler(coarse)
        out["joints"] = torch.einsum("jv,bvc->bjc", self.body.J_regressor, out["vertices"])
        if return_trajectory:
            n = traj_c.shape[1]
            full = self.upsampler(traj_c.flatten(0, 1))
            out["trajectory"] = full.view(b, n, *full.shape[1:])
            out["trajectory_coarse"] = traj_c
        return out

    # -- sharing ------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write this model into ``directory`` as ``config.json``, ``model.safetensors`` and
        ``body.json`` (the fingerprint of its body: name, counts and a template hash, never SMPL
        data): a folder that can be published without the licensed SMPL files. See
        :mod:`kinediff.pretrained`."""
        from kinediff.pretrained import save_pretrained

        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, body: BodyModel,
                        device: str | torch.device | None = None) -> PostureHMR:
        """The model :meth:`save_pretrained` wrote, built on ``body`` (refused, naming the
        expected body, when its fingerprint differs), in eval mode, on ``device``."""
        from kinediff.pretrained import load_pretrained

        return load_pretrained(directory, body, device)

    def extra_repr(self) -> str:
        c = self.config
        return (f"schedule={c.schedule}, condition={c.condition}, decoder={c.decoder}, "
                f"coarse_vertices={self.num_coarse}, T={c.num_steps}")
