"""A PostureHMR model as an ONNX graph: what :meth:`PostureHMR.predict` computes, for runtimes
without PyTorch (onnxruntime, TensorRT, browsers).

The graph: ``images`` (B, 3, S, S) float32 crops in [0, 1] -> the 2D stage (HRNet, heatmaps,
soft-argmax, C) -> the decoder's condition -> the template end M_T (turned to the heading
estimated from the 2D mesh with ``root_path="heading"``) -> the T reverse steps, unrolled ->
the up-sampler -> ``vertices`` (B, 6890, 3) and ``joints`` (B, 24, 3) in the body frame (metres)
and ``mesh2d`` (B, N, 2) in crop pixels (not with the image-feature condition, which has no 2D
mesh). The batch axis is dynamic unless a batch size is fixed.

What does not export: the Gaussian noise schedule (its reverse process starts from a random
sample, which an ONNX graph cannot draw reproducibly: :func:`export_onnx` refuses it), training
(the losses, the trimap render loss included), ``predict``'s ``mesh2d=`` and
``return_trajectory`` options, and float64 models.

Exporter: PyTorch's ``torch.export``-based ONNX exporter (``dynamo=True``, PyTorch's default; the
TorchScript-based one is deprecated). The decoder's graph convolution is exported as a product
with its dense adjacency matrix (a MatMul), not as the ScatterND with ``reduction="add"`` that its
``index_add_`` becomes: onnxruntime's CPU ScatterND races across threads on repeated indices (its
result then varies from run to run: docs/benchmarks.md), while a MatMul is
deterministic on every runtime.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kinediff.core.checks import check_int, value_checks
from kinediff.core.io import write_atomic
from kinediff.decoders import GraphConv, GraphormerRegressor
from kinediff.forward import PostureSchedule, reverse_process
from kinediff.posturehmr import PostureHMR

__all__ = ["DEFAULT_OPSET", "ONNX_INPUT", "InferenceGraph", "export_onnx", "onnx_outputs",
           "onnx_session", "run_onnx"]

#: The input's name: (B, 3, S, S) float32 crops in [0, 1].
ONNX_INPUT = "images"
#: The ONNX opset written by default (the torch.export-based exporter's lowest).
DEFAULT_OPSET = 18


def onnx_outputs(model: PostureHMR) -> tuple[str, ...]:
    """The exported graph's outputs for ``model``: ``("vertices", "joints", "mesh2d")``, without
    ``mesh2d`` for the image-feature condition (which has no 2D mesh)."""
    if model.config.condition == "image_feature":
        return ("vertices", "joints")
    return ("vertices", "joints", "mesh2d")


def _require(*packages: str) -> None:
    """Raise ``ImportError`` naming the ``onnx`` extra unless every package imports."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ImportError(f"ONNX export and inference need {', '.join(packages)} (missing: "
                          f"{', '.join(missing)}): pip install 'kinediff[onnx]'")


def _refusal(model: PostureHMR) -> str | None:
    """Why ``model`` cannot be exported, or None."""
    if not isinstance(model.decoder, GraphormerRegressor) and \
            not isinstance(model.schedule, PostureSchedule):
        return (f"the {model.config.schedule.class_name} cannot be exported to ONNX: its reverse "
                f"process starts from a random sample x_T ~ N(0, I), which a graph cannot draw "
                f"reproducibly; export a model with a posture schedule (FKSchedule or "
                f"VertexLinearSchedule) or the one-step GraphormerRegressor decoder")
    if model.dtype != torch.float32:
        return (f"ONNX export takes a float32 model (the graph's input is float32 images), got "
                f"{model.dtype}: export model.float()")
    return None


class _DenseGraphConv(nn.Module):
    """A :class:`~kinediff.decoders.GraphConv`'s A (X W) + b with A as a dense (N, N) matrix: one
    MatMul in ONNX instead of a scatter-add (see the module's docstring). Shares the convolution's
    weight and bias. Shape: (B, N, C_in) -> (B, N, C_out)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        n = conv.num_nodes
        dense = torch.zeros(n, n, dtype=conv.values.dtype, device=conv.values.device)
        dense.index_put_((conv.rows, conv.cols), conv.values, accumulate=True)
        self.register_buffer("adjacency", dense, persistent=False)
        self.weight, self.bias = conv.weight, conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.adjacency.to(x.dtype) @ (x @ self.weight.to(x.dtype))
        return out if self.bias is None else out + self.bias.to(x.dtype)


def _with_dense_graph_convs(decoder: nn.Module) -> nn.Module:
    """A copy of ``decoder``'s modules that shares its parameters and buffers (nothing is copied
    but the module objects), with every GraphConv replaced by a :class:`_DenseGraphConv`."""
    shared = {id(t): t for t in itertools.chain(decoder.parameters(), decoder.buffers())}
    twin = copy.deepcopy(decoder, memo=shared)
    for name, module in list(twin.named_modules()):
        if isinstance(module, GraphConv):
            parent, _, child = name.rpartition(".")
            setattr(twin.get_submodule(parent), child, _DenseGraphConv(module))
    return twin


class InferenceGraph(nn.Module):
    """:meth:`PostureHMR.predict <kinediff.PostureHMR.predict>` as a module that ``torch.export``
    (and so ONNX) can trace: the same condition, heading estimate
    (:func:`~kinediff.forward.estimate_heading`) and reverse loop
    (:func:`~kinediff.forward.reverse_process`) as ``predict``, unrolled; the template end
    precomputed from the model, and the decoder's graph convolutions as dense matrix products (a
    copy of the decoder's modules that shares its weights; the model itself is not changed).

    Args:
        model: a float32 :class:`~kinediff.PostureHMR` with a posture schedule (FK or VL) or the
            regressor decoder. It becomes a submodule (its weights are shared, not copied); put
            it in eval mode before tracing, and trace it with value checks off
            (:func:`kinediff.value_checks`), as :func:`export_onnx` does.

    Shape: images (B, 3, S, S) in [0, 1] -> (vertices (B, 6890, 3), joints (B, 24, 3)[, mesh2d
    (B, N, 2)]), the outputs of :func:`onnx_outputs` in that order.

    Raises:
        ValueError: a model that cannot be exported (the noise schedule, a float64 model).

    Example:
        >>> import torch
        >>> from kinediff import PostureHMR, PostureHMRConfig
        >>> from kinediff.body import BodyModel
        >>> from kinediff.export import InferenceGraph
        >>> model = PostureHMR(PostureHMRConfig.tiny(), BodyModel.synthetic()).eval()
        >>> vertices, joints, mesh2d = InferenceGraph(model)(torch.rand(2, 3, 64, 64))
        >>> vertices.shape, joints.shape, mesh2d.shape
        (torch.Size([2, 6890, 3]), torch.Size([2, 24, 3]), torch.Size([2, 108, 2]))
    """

    def __init__(self, model: PostureHMR) -> None:
        super().__init__()
        reason = _refusal(model)
        if reason is not None:
            raise ValueError(reason)
        self.model = model
        self.decoder = _with_dense_graph_convs(model.decoder)
        self.output_names = onnx_outputs(model)
        self.one_pass = isinstance(model.decoder, GraphormerRegressor)
        self.uses_heading = model.uses_heading
        if self.one_pass:
            return
        down = model.hierarchy.downsample
        with torch.no_grad():
            if not self.uses_heading:
                self.register_buffer("start", down(model.template(1))[0], persistent=False)
                return
            # M_T turned by psi is the heading-0 template turned about the root joint, affine in
            # (cos psi, sin psi): M_T(psi) = cos psi X + sin psi Y + Z, from psi = 0, pi / 2, pi
            ends = down(model.template(3, torch.tensor([0.0, math.pi / 2, math.pi]).to(
                model.body.v_template)))
            mid = (ends[0] + ends[2]) / 2
            self.register_buffer("start_cos", (ends[0] - ends[2]) / 2, persistent=False)
            self.register_buffer("start_sin", ends[1] - mid, persistent=False)
            self.register_buffer("start", mid, persistent=False)
            self._check_start()

    def _check_start(self) -> None:
        """The precomputed template end against the model's own on a few headings (a change to
        the template end in kinediff shows here)."""
        model = self.model
        probe = torch.tensor([-2.5, -0.4, 1.0, 3.0]).to(self.start)
        own = model.hierarchy.downsample(model.template(4, probe))
        if float((self._start(probe) - own).abs().max()) > 1e-5:
            raise RuntimeError("the template end is not an affine function of (cos psi, sin psi) "
                               "for this body; the model cannot be exported")

    def _start(self, heading: torch.Tensor) -> torch.Tensor:
        """M_T (B, N, 3) at ``heading`` (B,) radians."""
        c, s = heading.cos()[:, None, None], heading.sin()[:, None, None]
        return c * self.start_cos + s * self.start_sin + self.start

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.model
        cond, head = model.condition(images)
        if self.one_pass:
            coarse = self.decoder(cond)
        else:
            if self.uses_heading:
                start = self._start(model.heading(cond))
            else:  # (B, N, 3) from the batch of the condition, which tracing follows
                start = self.start + torch.zeros_like(cond[..., :1])
            encoded = self.decoder.encode_condition(cond)
            coarse = reverse_process(lambda mesh, step: self.decoder(mesh, step=step,
                                                                     condition=encoded),
                                     model.schedule, start)
        vertices = model.upsampler(coarse)
        joints = torch.einsum("jv,bvc->bjc", model.body.J_regressor, vertices)
        if "mesh2d" in self.output_names:
            return vertices, joints, head["mesh2d"]
        return vertices, joints


def export_onnx(model: PostureHMR, path: str | os.PathLike, batch: int | None = None,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model``'s inference graph (:class:`InferenceGraph`) as one ONNX file, atomically.

    Args:
        model: a float32 :class:`~kinediff.PostureHMR` with a posture schedule (FK or VL) or
            the regressor decoder, on any device; it is traced in eval mode and its modes are put
            back afterwards.
        path: the ``.onnx`` file to write (its folder is created); the weights are inside it.
        batch: None (default) for a graph that takes any batch size, or a fixed batch size.
        opset: the ONNX opset (18 or later).

    Inputs and outputs of the file: ``images`` (B, 3, S, S) float32 crops in [0, 1] (S =
    ``config.image_size``) -> ``vertices`` (B, 6890, 3) and ``joints`` (B, 24, 3) in the body frame
    (metres), ``mesh2d`` (B, N, 2) crop pixels (:func:`onnx_outputs`); as ``model.predict``.

    Returns:
        The path written.

    Raises:
        ValueError: the noise schedule (a random start), a float64 model, a batch or opset out of
            range.

    Example:
        >>> import tempfile, torch
        >>> from kinediff import PostureHMR, PostureHMRConfig
        >>> from kinediff.body import BodyModel
        >>> from kinediff.export import export_onnx, run_onnx
        >>> model = PostureHMR(PostureHMRConfig.tiny(), BodyModel.synthetic()).eval()
        >>> path = export_onnx(model, tempfile.mkdtemp() + "/tiny.onnx")  # doctest: +SKIP
        >>> run_onnx(path, torch.rand(3, 3, 64, 64))["vertices"].shape  # doctest: +SKIP
        (3, 6890, 3)
    """
    if batch is not None:
        check_int(batch, "batch", what="a batch size, or None for any")
    if opset < DEFAULT_OPSET:
        raise ValueError(f"opset must be {DEFAULT_OPSET} or later (torch.export-based ONNX "
                         f"exporter), got {opset}")
    graph = InferenceGraph(model)
    _require("onnx", "onnxscript")
    size = model.config.image_size
    device = model.body.v_template.device
    # torch.export treats a size-1 example axis as fixed: a dynamic batch is traced with 2
    example = torch.rand(2 if batch is None else batch, 3, size, size,
                         generator=torch.Generator().manual_seed(0)).to(device)
    dynamic = ({0: torch.export.Dim("batch", min=1)},) if batch is None else None
    modes = {m: m.training for m in model.modules()}
    graph.eval()

    def write(tmp: Path) -> None:
        with torch.no_grad(), value_checks(False):  # traced: no branch on a tensor's values
            torch.onnx.export(graph, (example,), str(tmp), input_names=[ONNX_INPUT],
                              output_names=list(graph.output_names), opset_version=opset,
                              dynamo=True, external_data=False, dynamic_shapes=dynamic,
                              verbose=False)

    try:
        return write_atomic(Path(path), write)
    finally:
        for module, mode in modes.items():
            module.training = mode


def onnx_session(path: str | os.PathLike, providers: list[str] | None = None):
    """An ``onnxruntime.InferenceSession`` for an exported file (load it once, run it on many
    batches with :func:`run_onnx`). ``providers``: onnxruntime's execution providers, e.g.
    ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` (default: the CPU's)."""
    _require("onnxruntime")
    import onnxruntime  # the onnx extra: an optional dependency

    return onnxruntime.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])


def run_onnx(source: Any, images: Any) -> dict[str, Any]:
    """Run an exported graph with onnxruntime: ``images`` (B, 3, S, S) in [0, 1] (a tensor or an
    array) -> a dict of NumPy arrays by output name (see :func:`export_onnx`).

    ``source``: the ``.onnx`` path (loaded for this call) or an :func:`onnx_session`."""
    session = onnx_session(source) if isinstance(source, (str, os.PathLike)) else source
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {ONNX_INPUT: np.asarray(images, dtype=np.float32)})
    return dict(zip(names, values))
