"""``PostureHMR``: the paper's pipeline (Fig. 2) composed from kinediff's components.

image crop --HRNetMeshHead--> 2D mesh M_0^2d --(condition)--> M2PDecoder, run as the reverse process
of a forward schedule (FK, VL or noise) from M_T --> coarse mesh M_0 --MeshUpsampler--> 6890 vertices.

Training is two-stage, as the paper: :meth:`PostureHMR.loss_2d` trains the 2D stage (backbone,
heatmaps, coefficients C; point L1 + 2D-mesh L1 + trimap render loss), then :meth:`loss_3d` trains
the 3D stage (decoder and up-sampler) with the 2D stage frozen. With ``condition="image_feature"``
(Table 3's "Baseline" rows) there is no 2D mesh: a global image feature vector (pooled backbone
features, ``decoder.cond_dim`` long) is concatenated to every vertex and the backbone trains with the
3D stage. Table 3 is a set of configs (:func:`table3_configs`), each a change of config fields.

Frames and units: the 3D meshes live in the body frame with the camera's orientation (the
SMPL output without translation, metres); 2D meshes and points are crop pixels.

Four things here are each kinediff's choice (the paper is silent). The decoder reads the 2D mesh
centred on its mean and scaled to unit RMS radius (where the person stands in the crop and how
large it looks say nothing about the root-relative posture); a collapsed 2D mesh (RMS radius under
:data:`DEGENERATE_RADIUS_PX`) reads as zeros, heading 0. The image-feature condition is the
fused stride-4 HRNet features, average-pooled and projected by a linear layer to
``decoder.cond_dim`` (the paper's "vector with the length of 2048"); the vertex, joint and surface
terms of a posture path compare the up-sampled M_k + Delta with M_(k-1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kinediff.body import BodyModel
from kinediff.core.camera import project_points
from kinediff.core.checks import check_finite, check_images, compile_options
from kinediff.core.config import WEIGHTS_NAME, Configurable
from kinediff.core.conventions import H36M_JOINTS, LIMB_JOINTS, keypoint_regressor
from kinediff.core.pretrained import Pretrained
from kinediff.decoders import GraphormerRegressor, M2PDecoder, MeshUpsampler
from kinediff.forward import (
    ForwardProcess,
    GaussianNoiseSchedule,
    PostureSchedule,
    TrainingBodies,
    default_template_orientation,
    reverse_process,
    template_mesh,
)
from kinediff.forward.heading import estimate_heading, torso_weights
from kinediff.heads import fit_coefficients
from kinediff.losses import loss_3d, masked_mean
from kinediff.mesh import MeshHierarchy
from kinediff.posturehmr.config import PostureHMRConfig
from kinediff.posturehmr.frames import PersonPrediction, predict_frames
from kinediff.posturehmr.pretrained import (
    load_pretrained_folder,
    save_pretrained_folder,
    upsampler_start,
)
from kinediff.training.config import TrainConfig

__all__ = ["DEGENERATE_RADIUS_PX", "PostureHMR"]

#: A 2D mesh whose RMS radius about its mean is below this many pixels (collapsed to a point, as
#: an untrained 2D stage's) carries no posture: the decoder's condition is then all zeros, where
#: scaling its rounding noise to unit radius would make up a posture (and a heading) from nothing.
DEGENERATE_RADIUS_PX = 1e-3


class PostureHMR(Configurable, Pretrained, nn.Module):
    """The PostureHMR model.

    Args:
        config: a :class:`PostureHMRConfig` (``PostureHMRConfig()`` for the full-size model,
            ``PostureHMRConfig.tiny()`` for CPU), or its dict.
        body: the :class:`~kinediff.body.BodyModel` whose meshes are learnt (its dtype is the
            model's: float32, or float64 after ``.double()`` on both). An object passed in, never
            part of the config.
        compile: run :meth:`predict`'s network part (2D stage, the T reverse steps with the
            condition encoded once, up-sampling) through ``torch.compile`` as one graph. Off by
            default: the first call of each batch size then compiles (the GPU check records how
            long: docs/benchmarks.md); worth it for serving and evaluation on a GPU. A dict is passed to ``torch.compile`` as its options (e.g.
            ``{"mode": "max-autotune"}``). Training compiles through ``Trainer(compile=True)``.
            How, not what: not part of the config.

    Configurable (:mod:`kinediff.core.config`): ``model.config`` is the config it was built from
    (read-only); ``PostureHMR.from_config(config, body=body)`` builds it again. It implements the
    training contract :class:`~kinediff.training.TrainableModel`.

    Batches are sample dicts (:mod:`kinediff.data.sample`): ``image`` (B, 3, S, S), ``mask``,
    ``pose`` (B, 24, 3), ``betas`` (B, 10), ``K``, ``transl``, ``mesh2d`` (B, N, 2), ``has_smpl``.
    """

    config_class = PostureHMRConfig
    config_objects = ("body",)
    config_runtime = ("compile",)
    #: Rebuilt from the body, never saved: the body model and the mesh hierarchy.
    derived_state = ("body", "hierarchy")

    def __init__(self, config: PostureHMRConfig, body: BodyModel,
                 compile: bool | dict[str, Any] = False) -> None:
        super().__init__()
        self.compiled = compile_options(compile)
        self._compiled_infer: Any = None
        c = self.config
        self.body = body
        self.hierarchy = MeshHierarchy.from_body(body, c.mesh_factors)
        self.num_coarse = self.hierarchy.sizes[-1]
        adjacency = self.hierarchy.adjacency(-1)
        self.schedule: ForwardProcess = c.schedule.build(body=body)
        h = c.head
        if h.num_vertices != self.num_coarse:  # before any weight is allocated
            raise ValueError(f"head.num_vertices ({h.num_vertices}) must be the hierarchy's coarse "
                             f"vertex count, {self.num_coarse} for mesh_factors "
                             f"{list(c.mesh_factors)} on this {body.num_vertices}-vertex body")
        if h.num_points - 17 > body.num_vertices:
            raise ValueError(f"head.num_points = {h.num_points} asks for {h.num_points - 17} "
                             f"markers but the body has {body.num_vertices} vertices")
        if h.marker_vertices is not None and max(h.marker_vertices) >= body.num_vertices:
            raise ValueError(f"head.marker_vertices names vertex {max(h.marker_vertices)}; this "
                             f"body has {body.num_vertices} vertices")
        self.head = h.build()
        self.feature = (nn.Linear(self.head.feature_channels, c.decoder.cond_dim)
                        if c.condition == "image_feature" else None)
        template = self.hierarchy.downsample(self.template(1))[0]
        self.decoder: M2PDecoder | GraphormerRegressor = c.decoder.build(adjacency=adjacency,
                                                                         template=template)
        self.upsampler = MeshUpsampler(self.hierarchy)
        self.render_loss = c.render.build() if c.render is not None else None
        limbs = torch.zeros(h.num_points, dtype=torch.bool)  # the points keypoints2d supervise
        limbs[[H36M_JOINTS.index(n) for n in LIMB_JOINTS]] = True
        self.register_buffer("limb_points", limbs, persistent=False)
        self.register_buffer("keypoint_weights", keypoint_regressor(
            body, h.num_points - 17, h.marker_vertices), persistent=False)
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

    def check_dtypes(self) -> None:
        """Raise ``ValueError`` unless the networks' weights have the body's dtype (a float64 body
        with float32 networks would fail deep inside a convolution): call ``.double()`` to run in
        float64, or build the model with a float32 body."""
        weights = next(self.head.parameters()).dtype
        if weights != self.dtype:
            raise ValueError(f"the model's body is {self.dtype} but its networks are {weights}: "
                             f"call model.double() to run in float64, or build the model with a "
                             f"float32 body (BodyModel.synthetic(dtype=torch.float32))")

    def _exact(self):
        """Autocast off (the model's dtype) for what is not the network under mixed precision:
        labels, forward paths and the loss's comparisons. In bfloat16 a vertex 1 m from the origin
        is rounded by up to 4 mm, as large as the per-step targets' errors that matter."""
        return torch.autocast(self.body.v_template.device.type, enabled=False)

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
        sample's step t (B,) (no gradient), with encoded ``condition`` (B, N, dim)
        (:func:`~kinediff.forward.reverse_process` with ``stop=t``).

        Returns (B, T + 1, N, 3) with index s holding the sample's own M_s for s in [t, T] (index
        T is ``start``; below t the entries are not defined). Every sample takes the T - 1 steps
        (those past its t leave it unchanged), so the loop's length never depends on t's values."""
        with torch.no_grad():
            return reverse_process(lambda mesh, step: self.decoder(mesh, step=step,
                                                                   condition=condition),
                                   self.schedule, start, stop=t, return_trajectory=True)

    @staticmethod
    def _normalise(mesh2d: torch.Tensor) -> torch.Tensor:
        """The decoder's view of a 2D mesh: centred on its mean, scaled to unit RMS radius (where
        the person stands in the crop and how large it looks say nothing about its root-relative
        3D posture, and crops of real data differ in both). A mesh of RMS radius under
        :data:`DEGENERATE_RADIUS_PX` pixels gives zeros."""
        centred = mesh2d - mesh2d.mean(1, keepdim=True)
        radius = centred.square().sum(-1).mean(1).sqrt()[:, None, None]
        return torch.where(radius > DEGENERATE_RADIUS_PX, centred / radius.clamp_min(1e-6),
                           torch.zeros_like(centred))

    def ground_truth(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """GT from a batch: ``vertices`` (B, V, 3) and ``joints`` (B, 24, 3), the model's body's
        mesh of the batch's SMPL parameters (body frame; the 3D stage's targets, whose forward
        path starts at this body's template); ``points`` (B, K, 2) and ``mesh2d`` (B, N, 2) in
        crop pixels, the image-aligned labels: the data set's ``mesh2d``, and the keypoints of the
        data set's own GT mesh (``batch["vertices"]``: the sample's gendered model for gendered
        GT) where the batch has one, else of the model's body's. In the model's dtype under
        autocast too."""
        with torch.no_grad(), self._exact():
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
        if "has_mesh2d" in batch:  # the samples with a 2D mesh label only
            keep = batch["has_mesh2d"].bool()
            if not bool(keep.any()):
                raise ValueError("init_coefficients needs samples with a 2D mesh (has_mesh2d): "
                                 "this batch has none")
            p, m = p[keep], m[keep]
        centre = p.mean(1, keepdim=True)
        coeff = fit_coefficients(p - centre, m - centre, ridge)
        # rows re-normalised to sum to 1: translation equivariance (C 1 = 1)
        coeff = coeff + (1.0 - coeff.sum(1, keepdim=True)) / coeff.shape[1]
        with torch.no_grad():
            self.head.coefficients.copy_(coeff.to(self.head.coefficients))

    def loss_2d(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The 2D stage's loss terms and ``total``: ``point_weight`` * point L1 + ``mesh2d_weight``
        * 2D-mesh L1 (both on coordinates / crop size, means over the labelled points and
        coordinates) + ``render_weight`` * the trimap render loss (eq. 6, :func:`~kinediff.losses.
        TrimapRenderLoss`, ``config.render``: the predicted and the GT 2D mesh rendered alike; with
        ``render_target="mask"`` the data set's mask for the samples whose ``has_mask`` is set).

        Partial labels (:mod:`kinediff.data.sample`): the K points' targets are the GT mesh's
        keypoints for samples with SMPL; for the others, the 12 limb joints among the first 17
        (:data:`~kinediff.core.conventions.LIMB_JOINTS`, the joints every set defines alike) take the
        sample's visible ``keypoints2d``, and the other points are not supervised. The 2D-mesh and
        render terms count the samples with a 2D mesh (``has_mesh2d``; a mask with
        ``render_target="mask"``). A term no sample of the batch has a label for is 0."""
        c = self.config
        gt = self.ground_truth(batch)
        out = self.head(batch["image"].to(self.dtype))
        s = float(c.image_size)
        b, k = gt["points"].shape[:2]
        dev = gt["points"].device
        has_smpl = batch.get("has_smpl")
        has_smpl = (torch.ones(b, dtype=torch.bool, device=dev) if has_smpl is None
                     else has_smpl.to(dev).bool())
        has_mesh2d = batch.get("has_mesh2d")
        has_mesh2d = has_smpl if has_mesh2d is None else has_mesh2d.to(dev).bool()
        target = gt["points"]
        weight = has_smpl[:, None].to(self.dtype).expand(b, k)
        if "keypoints2d" in batch:  # the limb joints of the samples without SMPL
            kp = batch["keypoints2d"].to(device=dev, dtype=self.dtype)
            use = self.limb_points[None, :k].to(dev) & ~has_smpl[:, None]
            target = torch.where(use[..., None], F.pad(kp[..., :2], (0, 0, 0, k - 17)), target)
            weight = torch.where(use, F.pad(kp[..., 2], (0, k - 17)), weight)
        err = (out["points"] / s - target / s).abs().sum(-1)  # (B, K)
        err = torch.where(weight > 0, err, torch.zeros_like(err))  # unlabelled points: any value
        terms = {"points": (err * weight).sum() / (2 * weight.sum()).clamp_min(1.0),
                 "mesh2d": masked_mean((out["mesh2d"] / s - gt["mesh2d"] / s).abs().mean((1, 2)),
                                       has_mesh2d)}
        total = c.point_weight * terms["points"] + c.mesh2d_weight * terms["mesh2d"]
        if self.render_loss is not None:
            masks: dict[str, Any] = {}
            rendered = has_mesh2d
            if c.render_target == "mask" and batch.get("mask") is not None:
                has = batch.get("has_mask")
                use_mask = (torch.ones(b, dtype=torch.bool, device=dev) if has is None
                            else has.to(dev).bool())
                masks = {"gt_mask": batch["mask"], "use_mask": use_mask}
                rendered = rendered | use_mask
            terms["trimap"] = masked_mean(self.render_loss(
                out["mesh2d"], gt["mesh2d"], self.hierarchy.faces(-1), c.image_size, **masks),
                rendered)
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
        with self._exact():
            example = self.schedule.training_example(
                TrainingBodies(batch["pose"].to(self.dtype), batch["betas"].to(self.dtype),
                               gt["vertices"], None if heading is None else heading.to(self.dtype)),
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
        own = torch.randperm(b * k, generator=generator)[:count].to(dev, non_blocking=True)
        sample = torch.div(own, k, rounding_mode="floor")
        t_own = example.steps[own]
        if k == 1:
            # one entry per sample: the chosen entries are ``count`` distinct samples, a batch of
            # fixed size, and only they are rolled out (half the work at rollout_share = 0.5)
            with self._exact():
                start = self.hierarchy.downsample(self.template(
                    count, None if heading is None else heading[sample])).to(example.inputs)
            path = self._rollout(start, t_own, encoded.detach()[sample])
            return example.with_inputs(own, path[torch.arange(count, device=dev), t_own])
        # every sample is rolled out (those without a chosen entry stay at M_T): a fixed batch,
        # where picking the chosen samples out would give a shape that depends on the draw
        lowest = torch.full((b,), self.schedule.num_steps, dtype=t_own.dtype, device=dev
                            ).scatter_reduce(0, sample, t_own, "amin")
        with self._exact():
            start = self.hierarchy.downsample(self.template(b, heading)).to(example.inputs)
        path = self._rollout(start, lowest, encoded.detach())
        return example.with_inputs(own, path[sample, t_own])

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
        with self._exact():  # the comparisons in the model's dtype (autocast: the network only)
            output, pred_v = output.to(self.dtype), pred_v.to(self.dtype)
            return loss_3d(output, target, pred_v, gt_v, torch.einsum("jv,bvc->bjc", reg, pred_v),
                           torch.einsum("jv,bvc->bjc", reg, gt_v), self.hierarchy.faces(level),
                           mask=mask, weights=self.config.loss_weights, posture_steps=loss_steps,
                           edge=edge)

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
        self.check_dtypes()
        if stage == "2d":
            return self.loss_2d(batch)
        if stage == "3d":
            return self.loss_3d(batch, epoch=epoch)
        raise ValueError(f"stage must be '2d' or '3d', got {stage!r}")

    def loss_epoch(self, epoch: int | None) -> int | None:
        """``epoch`` reduced to what :meth:`loss` reads of it: None where the 3D stage's delayed
        terms are on (``epoch >= edge_loss_start``, or None), else 0. Two values, so a compiled
        loss is specialised twice at most instead of once per epoch."""
        return None if epoch is None or epoch >= self.config.edge_loss_start else 0

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
            images: (B, 3, S, S) float crops in [0, 1] (a uint8 image is refused: divide it by
                255 first; NaN or values outside [0, 1] are refused as value checks,
                :func:`kinediff.value_checks`).
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
        check_images(images, self.config.image_size)
        self.check_dtypes()
        if mesh2d is not None:
            check_finite(mesh2d, "mesh2d")
        images = images.to(self.dtype)
        noise = None
        if isinstance(self.schedule, GaussianNoiseSchedule):  # x_T ~ N(0, I) on the coarse mesh
            noise = self.schedule.initial(images.shape[0], self.num_coarse, generator=generator
                                          ).to(images)
        if self.compiled is not None:
            if self._compiled_infer is None:
                self._compiled_infer = torch.compile(self._infer, **self.compiled)
            return self._compiled_infer(images, mesh2d, noise, return_trajectory)
        return self._infer(images, mesh2d, noise, return_trajectory)

    def __getstate__(self) -> dict[str, Any]:
        # the compiled predict is bound to this instance: a copy (deepcopy, pickle) compiles its own
        state = dict(super().__getstate__())
        state["_compiled_infer"] = None
        return state

    def _infer(self, images: torch.Tensor, mesh2d: torch.Tensor | None, noise: torch.Tensor | None,
               return_trajectory: bool) -> dict[str, Any]:
        """:meth:`predict`'s network part on checked inputs (what ``compile=True`` compiles):
        ``noise`` is the noise schedule's x_T (None for the posture schedules)."""
        cond, head = self.condition(images, mesh2d)
        b = images.shape[0]
        out: dict[str, Any] = {"mesh2d": head.get("mesh2d", mesh2d)}
        if isinstance(self.decoder, GraphormerRegressor):
            coarse = self.decoder(cond)
            traj_c = coarse[:, None]
        else:
            if noise is None:
                start = self.hierarchy.downsample(self.template(b, self.heading(cond))).to(cond)
            else:
                start = noise.to(cond)
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

    def predict_frames(self, images, boxes, K=None, fit_smpl: bool = False,
                       batch_size: int = 32) -> list[PersonPrediction]:
        """Every boxed person of whole images, in the images' camera frames: see
        :func:`kinediff.posturehmr.frames.predict_frames` (``images`` (3, H, W) each, ``boxes`` a
        list of (x, y, w, h) per image, ``K`` per image or None)."""
        return predict_frames(self, images, boxes, K, fit_smpl=fit_smpl, batch_size=batch_size)

    # -- sharing ------------------------------------------------------------------------------

    def saved_config(self) -> PostureHMRConfig:
        """The config :meth:`save_pretrained` writes: :meth:`PostureHMRConfig.as_trained`."""
        return self.config.as_trained()

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write this model into ``directory`` as ``config.json``, ``model.safetensors`` and
        ``body.json`` (the fingerprint of its body: name, counts and a template hash, never SMPL
        data): a folder that can be published without the licensed SMPL files. See
        :mod:`kinediff.posturehmr.pretrained`."""
        return save_pretrained_folder(directory, self.saved_config(), self.learnt_state_dict(),
                                      upsampler_start(self.hierarchy),
                                      self.body.fingerprint())

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, body: BodyModel,
                        device: str | torch.device | None = None) -> PostureHMR:
        """The model :meth:`save_pretrained` wrote, built on ``body`` (refused, naming the
        expected body, when its fingerprint differs), in eval mode, on ``device``."""
        config, state = load_pretrained_folder(directory, body)
        model = cls(config.as_trained(), body)  # a folder edited to name an HRNet file: not read
        for key, value in upsampler_start(model.hierarchy).items():
            if key in state:
                state[key] = state[key] + value.to(state[key])
        model.load_learnt_state_dict(state, str(Path(directory) / WEIGHTS_NAME))
        if device is not None:
            model = model.to(device)
        return model.eval()

    def extra_repr(self) -> str:
        c = self.config
        return (f"schedule={c.schedule.class_name}, condition={c.condition}, "
                f"decoder={c.decoder.class_name}, coarse_vertices={self.num_coarse}, "
                f"T={c.schedule.num_steps}")
