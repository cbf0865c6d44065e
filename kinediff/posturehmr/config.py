"""``PostureHMRConfig``: what a PostureHMR model is, as one versionable config.

The composition's own options (crop size, mesh hierarchy, condition, losses, the 3D stage's
training inputs) are fields; each component's options are that component's own config, nested and
typed, naming its class (:mod:`kinediff.core.config`):

- ``head``: :class:`~kinediff.heads.HRNetMeshHead`'s (``HRNetMeshHead.Config``);
- ``schedule``: the forward process, :class:`~kinediff.forward.FKSchedule`'s,
  :class:`~kinediff.forward.VertexLinearSchedule`'s or
  :class:`~kinediff.forward.GaussianNoiseSchedule`'s config (which process is which config);
- ``decoder``: :class:`~kinediff.decoders.M2PDecoder`'s or, for the one-step baseline,
  :class:`~kinediff.decoders.GraphormerRegressor`'s;
- ``render``: :class:`~kinediff.losses.TrimapRenderLoss`'s, or None for no render loss;
- ``loss_weights``: :class:`~kinediff.losses.Loss3DWeights`; ``train``:
  :class:`~kinediff.training.TrainConfig` (read by the Trainer only).

A component's options have the same names here as in its constructor: ``schedule.num_steps`` is
``FKSchedule(num_steps=...)``, ``render.width`` is ``TrimapRenderLoss(width=...)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any

from kinediff.core.checks import Int, Ints, Number, OneOf, Optional
from kinediff.core.config import Config
from kinediff.decoders import GraphormerRegressor, M2PDecoder
from kinediff.forward import MAX_STEPS, FKSchedule, GaussianNoiseSchedule, VertexLinearSchedule
from kinediff.heads import HRNetMeshHead
from kinediff.losses import Loss3DWeights, TrimapRenderLoss
from kinediff.training.config import TrainConfig

__all__ = ["CONDITIONS", "MAX_IMAGE_SIZE", "TABLE3_ROWS", "PostureHMRConfig", "table3_configs"]

#: The 3D stage's conditions: the 2D mesh (the paper's) or a global image feature (Table 3's
#: "Baseline" rows).
CONDITIONS = ("2d_mesh", "image_feature")
#: The largest crop side in pixels (16 times the paper's 256): the 2D stage's activations grow with
#: its square (an HRNet-W48 at 4096 pixels already needs tens of GB per image).
MAX_IMAGE_SIZE = 4096
#: Each mesh decimation factor lies in [2, 64], and there are 1 to 4 of them (the paper: (4, 4)).
MESH_FACTOR_RANGE = (2, 64)
MAX_MESH_LEVELS = 4
#: The fewest vertices the coarsest level of an SMPL-sized body (6890 vertices, ceil(V / factor)
#: per level) may keep: a closed mesh needs at least 4.
MIN_COARSE_VERTICES = 4
_SMPL_VERTICES = 6890

Schedule = FKSchedule.Config | VertexLinearSchedule.Config | GaussianNoiseSchedule.Config
Decoder = M2PDecoder.Config | GraphormerRegressor.Config
Weight = Annotated[float, Number(0.0)]

#: The defaults of the options that only some compositions read (refused elsewhere when set to
#: anything else).
@dataclass(frozen=True, kw_only=True)
class PostureHMRConfig(Config):
    """Every choice of a PostureHMR model and its training (a frozen
    :class:`~kinediff.core.config.Config`: change one with ``config.replace(...)`` or, for nested
    fields, ``config.update({"schedule.num_steps": 5})``).

    Three presets: ``PostureHMRConfig()`` is **kinediff's default**: the paper's model and recipe
    with two measured changes of its forward process (``schedule.root_path="heading"`` and
    ``rollout_share=0.5``; docs/posturehmr.md "Does it learn?"). :meth:`paper` is **the paper's**
    forward process and recipe (the geodesic root path, trained on the path's exact meshes).
    :meth:`tiny` is CPU-sized. Where the paper states nothing (decoder depth and heads, batch size,
    optimiser, the trimap band and softness, ...), the three share kinediff's choices, each
    labelled "kinediff's choice (the paper is silent)" where it is set and listed in
    docs/posturehmr.md "What the paper leaves open".

    The composition's own options are fields; each component's options are its own config, nested
    (``head``, ``schedule``, ``decoder``, ``render``). Docs: posturehmr.md "Configs and Table 3",
    where each loss weight's source is given.

    Attributes:
        image_size: crop side in pixels (256), a multiple of ``head.heatmap_size``, at most
            :data:`MAX_IMAGE_SIZE`.
        mesh_factors: the hierarchy's decimation factors ((4, 4): 431 coarse vertices; (4, 4, 4):
            about 108), 1 to 4 integers in [2, 64] leaving an SMPL-sized body at least 4 coarse
            vertices. ``head.num_vertices`` must be the coarse vertex count (checked when the
            model is built, where the body is known).
        head: the 2D stage, ``HRNetMeshHead.Config``.
        schedule: the forward process's config: ``FKSchedule.Config`` (default, with
            ``root_path="heading"``, kinediff's: the template turned to the heading estimated from
            the 2D mesh, continuous for people seen from behind; the paper's is "geodesic"),
            ``VertexLinearSchedule.Config`` or ``GaussianNoiseSchedule.Config``.
        decoder: ``M2PDecoder.Config`` or ``GraphormerRegressor.Config`` (the one-step baseline,
            which runs no forward process: ``schedule`` is then not used for prediction).
            ``decoder.cond_dim`` is the condition's width: 2 with the 2D-mesh condition, the image
            feature's length with the image-feature condition (the paper's global vector: 2048).
        condition: "2d_mesh" (the paper's) or "image_feature" (Table 3's "Baseline" rows: pooled
            backbone features, projected to ``decoder.cond_dim``, concatenated to every vertex).
        rollout_share: posture paths with the M2P decoder: the share of each batch's training
            steps, in [0, 1), that start from the decoder's own reverse process instead of the
            path's exact M_t, against exposure bias (0.5, kinediff's; 0 is the paper's training).
        render: the trimap render loss of eq. 6 (``TrimapRenderLoss.Config``: band ``width``,
            ``sigma``, ``backend``), or None for none.
        render_weight: its weight (10, the paper).
        render_target: "mesh" (G is the GT 2D mesh rendered like the prediction: eq. 6 and its
            minimiser) or "mask" (the data set's mask where a sample has one).
        point_weight, mesh2d_weight: L1 on coordinates / crop size (100 each: VirtualMarker's
            weight of its point term; for the 2D mesh, which VirtualMarker lacks, the same 100
            is kinediff's choice (the paper is silent)).
        loss_weights: :class:`~kinediff.losses.Loss3DWeights` (VirtualMarker's 0.1 / 0.1 / 0.1 /
            0.01 in its millimetre units, posture 1).
        edge_loss_start: the epoch from which the edge term counts (10, as VirtualMarker).
        loss_level: the hierarchy level of the vertex / joint / surface terms: 0 = the full mesh
            (the paper); -1 = the coarse mesh (cheap; the up-sampler then keeps its barycentric
            initialisation). An integer naming a level, in [-(L + 1), L] for L factors.
        steps_per_sample: posture paths: how many distinct steps k of each sample's path one
            batch trains on; None = all T (eq. 7's sum over k is T times their mean).
        train_condition: the 3D stage's condition in training: "predicted" (the frozen 2D
            stage's mesh, the paper) or "gt" (the GT 2D mesh plus Gaussian noise of
            ``condition_noise_px`` pixels, in [0, image_size]).
        condition_noise_px: see ``train_condition``.
        train: a :class:`~kinediff.training.TrainConfig` (read by the Trainer only).

    An option that cannot apply (``rollout_share`` without a posture path and the M2P decoder,
    ``condition_noise_px`` without ``train_condition="gt"``) must stay at its default; the
    heading root path needs the 2D-mesh condition. Every limit is checked when the config is made,
    so a saved config asking for absurd sizes is refused before any model is allocated.

    Example:
        >>> from kinediff import PostureHMRConfig
        >>> from kinediff.forward import VertexLinearSchedule
        >>> config = PostureHMRConfig(schedule=VertexLinearSchedule.Config(num_steps=5))
        >>> config.schedule.num_steps, config.decoder.dim, config.head.num_points
        (5, 128, 81)
        >>> PostureHMRConfig.from_dict(config.to_dict()) == config
        True
    """

    class_name = "PostureHMR"

    image_size: Annotated[int, Int(1, MAX_IMAGE_SIZE)] = 256
    mesh_factors: Annotated[tuple[int, ...], Ints(Int(*MESH_FACTOR_RANGE), 1, MAX_MESH_LEVELS,
                                                  "integer decimation factors")] = (4, 4)
    head: HRNetMeshHead.Config = field(default_factory=HRNetMeshHead.Config)
    schedule: Schedule = field(default_factory=lambda: FKSchedule.Config(root_path="heading"))
    decoder: Decoder = field(default_factory=M2PDecoder.Config)
    condition: Annotated[str, OneOf(*CONDITIONS)] = "2d_mesh"
    rollout_share: Annotated[float, Number(0.0, 1.0, high_open=True)] = 0.5
    render: TrimapRenderLoss.Config | None = field(default_factory=TrimapRenderLoss.Config)
    render_weight: Weight = 10.0
    render_target: Annotated[str, OneOf("mesh", "mask")] = "mesh"
    point_weight: Weight = 100.0
    mesh2d_weight: Weight = 100.0
    loss_weights: Loss3DWeights = field(default_factory=Loss3DWeights)
    edge_loss_start: Annotated[int, Int(0)] = 10
    loss_level: Annotated[int, Int(None)] = 0
    steps_per_sample: Annotated[int | None, Optional(Int(1, MAX_STEPS, "a number of steps"))] = None
    train_condition: Annotated[str, OneOf("predicted", "gt")] = "predicted"
    condition_noise_px: Annotated[float, Number(0.0)] = 0.0
    train: TrainConfig = field(default_factory=TrainConfig)

    def check(self) -> None:
        """The rules across fields (see the class doc)."""
        if self.image_size % self.head.heatmap_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of "
                             f"head.heatmap_size ({self.head.heatmap_size})")
        count = _SMPL_VERTICES
        for factor in self.mesh_factors:
            count = math.ceil(count / factor)
        if count < MIN_COARSE_VERTICES:
            raise ValueError(f"mesh_factors {list(self.mesh_factors)} leave a 6890-vertex body "
                             f"{count} coarse vertices; at least {MIN_COARSE_VERTICES} are needed")
        levels = len(self.mesh_factors)
        if not -(levels + 1) <= self.loss_level <= levels:
            raise ValueError(f"loss_level must name a level of the {levels + 1}-level hierarchy, "
                             f"in [{-(levels + 1)}, {levels}], got {self.loss_level}")
        if self.render is not None and (self.render.width > self.image_size
                                        or self.render.sigma > self.image_size):
            raise ValueError(f"render.width ({self.render.width}) and render.sigma "
                             f"({self.render.sigma}) must not exceed image_size ({self.image_size})")
        if self.condition_noise_px > self.image_size:
            raise ValueError(f"condition_noise_px must lie in [0, image_size = {self.image_size}], "
                             f"got {self.condition_noise_px}")
        if self.condition == "2d_mesh" and self.decoder.cond_dim != 2:
            raise ValueError(f"decoder.cond_dim must be 2 with condition='2d_mesh' (the 2D mesh's "
                             f"x and y per vertex), got {self.decoder.cond_dim} (with_condition "
                             f"sets both)")
        if getattr(self.schedule, "root_path", None) == "heading" and self.condition != "2d_mesh":
            raise ValueError("schedule.root_path='heading' estimates each sample's heading from "
                             "its 2D mesh; the image-feature condition has none: use "
                             "root_path='geodesic' (with_condition('image_feature') sets it)")
        for name, value in self.inapplicable().items():
            raise ValueError(f"{name}={value!r} has no effect here ({self._context(name)}): leave "
                             f"it at its default ({_default(name)!r})")

    @property
    def reverse_process(self) -> bool:
        """Whether the model runs a reverse process (the M2P decoder; the regressor is one pass)."""
        return isinstance(self.decoder, M2PDecoder.Config)

    @property
    def markers(self) -> str:
        """Which markers the 2D stage's points use, in words (for tables): the given vertices
        (``head.marker_vertices``, VirtualMarker's when read from its files) or kinediff's
        stand-ins."""
        count = self.head.num_points - 17
        if self.head.marker_vertices is not None:
            return f"{count} markers at head.marker_vertices"
        return f"kinediff's {count} stand-in markers (farthest-point-sampled template vertices)"

    @property
    def posture_path(self) -> bool:
        """Whether the forward process is a posture path (FK or VL), not noise."""
        return not isinstance(self.schedule, GaussianNoiseSchedule.Config)

    def inapplicable(self) -> dict[str, Any]:
        """The options set to something other than their default that this composition never
        reads (the config refuses each)."""
        unused = {}
        if not (self.posture_path and self.reverse_process):
            unused["rollout_share"] = self.rollout_share
        if self.train_condition != "gt":
            unused["condition_noise_px"] = self.condition_noise_px
        return {k: v for k, v in unused.items() if v != _default(k)}

    def _context(self, name: str) -> str:
        if name == "condition_noise_px":
            return f"train_condition={self.train_condition!r}"
        return (f"schedule {self.schedule.class_name}, decoder {self.decoder.class_name}: only a "
                f"posture path with the M2P decoder is rolled out")

    def as_trained(self) -> PostureHMRConfig:
        """This config as a trained model's: ``head.pretrained`` None (a local HRNet
        initialisation file is not part of a trained model: its weights replace it, and the file
        need not exist where the model is loaded)."""
        return self.update({"head.pretrained": None})

    @classmethod
    def paper(cls, **changes: Any) -> PostureHMRConfig:
        """The paper's model and recipe (§3, §4.2): kinediff's default config with the paper's
        own forward process (:meth:`with_paper_path`: FK with the geodesic root path to the
        template's one orientation, trained on the path's exact meshes, ``rollout_share`` 0).

        The paper's: 256-pixel crops; HRNet-W48 (COCO-pretrained: set ``head.pretrained``, see
        :class:`~kinediff.heads.HRNetMeshHead`), 64-pixel heatmaps, 81 points, 431 coarse
        vertices ((4, 4) decimation) up-sampled to 6890; T = 10 with the linear progress
        schedule and eq. 3's blend; the 2D-mesh condition from the frozen 2D stage; token and
        feed-forward widths 128 / 512; the render weight 10 and VirtualMarker's other weights;
        40 epochs a stage at learning rates 1e-3 / 5e-4 / 5e-5, halved from epoch 30. What the
        paper leaves open is kinediff's choice, as in every preset (class doc).

        ``changes`` go to :meth:`~kinediff.core.config.Config.update`, as :meth:`tiny`'s.
        """
        base = cls().with_paper_path()
        return base.update(changes) if changes else base

    def with_paper_path(self) -> PostureHMRConfig:
        """This config with the paper's own forward process: a posture path's geodesic root path
        to one template orientation, trained on the path's exact meshes only (``rollout_share``
        0); kinediff's defaults turn the template to the estimated heading and train on a share of
        the decoder's own rollouts (docs/posturehmr.md). A noise schedule or the one-step
        decoder is returned unchanged."""
        if not (self.posture_path and self.reverse_process):
            return self
        return self.update({"schedule.root_path": "geodesic", "rollout_share": 0.0})

    def with_condition(self, condition: str, cond_dim: int = 2048) -> PostureHMRConfig:
        """This config conditioned on ``condition`` with what that implies: ``decoder.cond_dim``
        2 for "2d_mesh" or ``cond_dim`` for "image_feature" (the paper's global vector: 2048),
        and a posture path's "heading" root path, which reads the 2D mesh, replaced by the
        paper's "geodesic" one with the image-feature condition."""
        changes: dict[str, Any] = {"condition": condition,
                                   "decoder.cond_dim": 2 if condition == "2d_mesh" else cond_dim}
        if condition != "2d_mesh" and getattr(self.schedule, "root_path", None) == "heading":
            changes["schedule.root_path"] = "geodesic"
        return self.update(changes)

    @classmethod
    def tiny(cls, **changes: Any) -> PostureHMRConfig:
        """A CPU-sized preset: 64-pixel crops, ``hrnet_w18_small``, 33 points, the third x4
        decimation (108 coarse vertices), a 2-layer 64-wide decoder, a 3-pixel band at sigma 0.5,
        larger learning rates, 8 epochs (the edge term from epoch 2, a quarter of them as
        VirtualMarker's 10 of 40), gradients clipped at norm 100 (the 3D stage's median norm is
        about 60: only outliers). Not the paper's model: for demos, tests and quick ablations. Its
        ``train`` is :meth:`TrainConfig.tiny() <kinediff.training.TrainConfig.tiny>`.

        ``changes`` go to :meth:`~kinediff.core.config.Config.update`: a field by name
        (``tiny(loss_level=0)``), a nested config's fields as a dict (``tiny(decoder={"dim":
        32})`` keeps the tiny decoder's other sizes) or a whole config
        (``tiny(schedule=VertexLinearSchedule.Config())``). For the image-feature condition use
        ``tiny().with_condition("image_feature", 64)``.
        """
        base = cls(image_size=64, mesh_factors=(4, 4, 4),
                   head=HRNetMeshHead.Config(backbone="hrnet_w18_small", heatmap_size=16,
                                             num_points=33, num_vertices=108),
                   decoder=M2PDecoder.Config(dim=64, ffn_dim=128, num_layers=2, num_heads=4),
                   render=TrimapRenderLoss.Config(width=3, sigma=0.5), loss_level=-1,
                   steps_per_sample=1, edge_loss_start=2, train=TrainConfig.tiny())
        return base.update(changes) if changes else base


#: Table 3's rows in the paper's order: each row's forward process, condition and render loss.
TABLE3_ROWS: dict[str, dict[str, Any]] = {
    "Baseline": dict(schedule="GaussianNoiseSchedule", condition="image_feature", render=False),
    "Baseline + VL": dict(schedule="VertexLinearSchedule", condition="image_feature", render=False),
    "Baseline + FK": dict(schedule="FKSchedule", condition="image_feature", render=False),
    "Baseline + FK + 2D mesh": dict(schedule="FKSchedule", condition="2d_mesh", render=False),
    "Baseline + FK + 2D mesh + render": dict(schedule="FKSchedule", condition="2d_mesh",
                                             render=True),
}


def _default(name: str) -> Any:
    """A :class:`PostureHMRConfig` field's default."""
    return PostureHMRConfig.__dataclass_fields__[name].default


def table3_configs(base: PostureHMRConfig | None = None, cond_dim: int = 2048
                   ) -> dict[str, PostureHMRConfig]:
    """The five Table 3 configurations (:data:`TABLE3_ROWS`) as changes of ``base`` (default:
    :meth:`PostureHMRConfig.paper`), each with the paper's own forward process
    (:meth:`~PostureHMRConfig.with_paper_path`).

    The noise Baseline: the paper's 1000 training steps and 10 DDIM steps, over DDPM's linear
    betas, predicting x0 (``prediction="sample"``). The betas and the target are kinediff's
    choice (the paper is silent): the Baseline follows HMDiff [11], whose target could not be
    found (it has no public code, and the copies of its paper at hand show only its abstract and
    introduction); x0 lets the vertex terms apply to the Baseline's output as to the other rows'.
    ``prediction="epsilon"`` is the other choice.

    Every row keeps the base's T (``schedule.num_steps``), decoder sizes, head, losses and
    training. The posture rows keep the base schedule's progress schedule ``alpha`` where the base
    is a posture path (and FK's ``blend`` where the base is FK); the noise row is the base's
    schedule where that is the noise process, else DDIM over a 1000-step linear DDPM predicting
    x0. The image-feature rows condition on a ``cond_dim``-long image
    feature (the paper's global vector: 2048), the 2D-mesh rows on the 2D mesh; the render rows
    take the base's ``render`` (or ``TrimapRenderLoss.Config()`` where the base has none).
    """
    base = base if base is not None else PostureHMRConfig.paper()
    steps = base.schedule.num_steps
    alpha = base.schedule.alpha if base.posture_path else "linear"
    blend = base.schedule.blend if isinstance(base.schedule, FKSchedule.Config) else "paper"
    render = base.render if base.render is not None else TrimapRenderLoss.Config()
    noise = (base.schedule if not base.posture_path
             else GaussianNoiseSchedule.Config(num_steps=steps, prediction="sample"))
    schedules = {
        "GaussianNoiseSchedule": noise,
        "VertexLinearSchedule": VertexLinearSchedule.Config(num_steps=steps, alpha=alpha),
        "FKSchedule": FKSchedule.Config(num_steps=steps, alpha=alpha, blend=blend)}
    out = {}
    decoder = M2PDecoder.Config(**{**base.decoder.arguments(), "cond_dim": 2})
    for name, row in TABLE3_ROWS.items():
        config = base.replace(schedule=schedules[row["schedule"]], condition="2d_mesh",
                              decoder=decoder, render=render if row["render"] else None,
                              rollout_share=_default("rollout_share"))
        out[name] = config.with_condition(row["condition"], cond_dim).with_paper_path()
    return out
