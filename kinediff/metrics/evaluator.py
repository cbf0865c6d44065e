"""``Evaluator``: accumulate a protocol's errors over a data set; table in mm, JSON, CSV, plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from kinediff.core.conventions import J14_NAMES
from kinediff.core.io import write_atomic
from kinediff.metrics.errors import check_points
from kinediff.metrics.protocols import Protocol, check_protocol
from kinediff.viz import finish_figure, pyplot_backend

__all__ = ["Evaluator"]


class Evaluator:
    """Accumulates per-sample and per-joint errors (metres in, millimetres out).

    Args:
        protocol: the evaluation convention.
        regressor: (17, V) H36M joint regressor (``load_regressor``): a finite floating-point
            tensor (checked here, once).
        dataset: a label printed with every number (say "synthetic" for synthetic data).

    :meth:`update` takes floating-point meshes and computes in their common dtype, at least float32
    (float16 meshes in float32; a float32 and a float64 mesh in float64); the errors are kept as
    float64 millimetres. NaN or infinite meshes are refused while kinediff's value checks are on
    (:func:`kinediff.value_checks`, the default); with them off nothing looks for them (NaN errors,
    or an error from torch's SVD in the Procrustes).

    Example:
        >>> import torch
        >>> from kinediff.body import BodyModel
        >>> from kinediff.metrics import GRAPHORMER_3DPW, Evaluator
        >>> from kinediff.core.conventions import synthetic_h36m_regressor
        >>> body = BodyModel.synthetic()
        >>> ev = Evaluator(GRAPHORMER_3DPW, synthetic_h36m_regressor(body), "synthetic")
        >>> gt = body(torch.zeros(2, 24, 3)).vertices
        >>> ev.update(gt + 0.01, gt)  # every vertex 1 cm off along each axis
        >>> round(ev.summary()["mpve"], 1), round(ev.summary()["pa_mpjpe"], 1)
        (0.0, 0.0)
    """

    METRICS = ("mpve", "mpjpe", "pa_mpjpe")

    def __init__(self, protocol: Protocol, regressor: torch.Tensor, dataset: str) -> None:
        check_protocol(protocol)
        check_points((regressor,), ("regressor",))
        if regressor.dim() != 2 or regressor.shape[0] != 17 or regressor.shape[1] < 1:
            hint = (" (transposed? pass regressor.T)" if regressor.dim() == 2 and regressor.shape[1] == 17
                    else "")
            raise ValueError(f"regressor must have shape (17, V), V the meshes' vertex count, got "
                             f"{tuple(regressor.shape)}{hint}")
        bad = ~torch.isfinite(regressor)  # once, not per batch: not a value check
        if bool(bad.any()):
            nan = int(torch.isnan(regressor).sum())
            raise ValueError(f"regressor must hold finite weights; it has {nan} NaN and "
                             f"{int(bad.sum()) - nan} infinite entries")
        if not isinstance(dataset, str):
            raise TypeError(f"dataset must be a label (str), got {type(dataset).__name__}")
        self.protocol, self.regressor, self.dataset = protocol, regressor, dataset
        self._rows: dict[str, list[torch.Tensor]] = {k: [] for k in (*self.METRICS, "per_joint")}

    @torch.no_grad()
    def update(self, pred_vertices: torch.Tensor, gt_vertices: torch.Tensor,
               gt_joints17: torch.Tensor | None = None) -> None:
        """Add a batch of (B, V, 3) predicted and GT meshes, in metres (and, for Human3.6M, the
        measured (B, 17, 3) joints to score the joints against): checked as
        :meth:`Protocol.evaluate <kinediff.metrics.Protocol.evaluate>` checks them (float16,
        bfloat16 or mixed float32 / float64 meshes are promoted to their common dtype, at least
        float32; NaN / infinite coordinates are refused, naming ``pred_vertices`` /
        ``gt_vertices``)."""
        check_points((pred_vertices,), ("pred_vertices",))
        out = self.protocol.evaluate(pred_vertices, gt_vertices,
                                     self.regressor.to(pred_vertices.device), gt_joints17)
        for key, value in out.items():
            self._rows[key].append(value.detach().to("cpu", torch.float64) * 1000.0)

    @property
    def count(self) -> int:
        return sum(len(x) for x in self._rows["mpve"])

    def summary(self) -> dict[str, float]:
        """Means in mm (and the sample count)."""
        if not self.count:
            raise ValueError("no samples: call update() first")
        out = {k: float(torch.cat(self._rows[k]).mean()) for k in self.METRICS}
        out["samples"] = float(self.count)
        return out

    def per_joint(self) -> dict[str, float]:
        """Mean error per evaluated joint, mm."""
        if not self.count:
            raise ValueError("no samples: call update() first")
        errors = torch.cat(self._rows["per_joint"]).mean(0)
        return {name: float(e) for name, e in zip(J14_NAMES, errors)}

    def table(self) -> str:
        s = self.summary()
        head = f"{self.dataset} — {self.protocol.name} ({int(s['samples'])} samples), mm"
        return (f"{head}\n{'MPVE':>10}{'MPJPE':>10}{'PA-MPJPE':>10}\n"
                f"{s['mpve']:>10.1f}{s['mpjpe']:>10.1f}{s['pa_mpjpe']:>10.1f}")

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write ``results.json``, ``per_sample.csv`` and ``per_joint.png`` into ``directory``."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / "results.json", "csv": folder / "per_sample.csv",
                 "png": folder / "per_joint.png"}
        text = json.dumps({
            "dataset": self.dataset, "protocol": self.protocol.describe(), "units": "mm",
            "summary": self.summary(), "per_joint": self.per_joint()}, indent=2)
        write_atomic(paths["json"], lambda tmp: tmp.write_text(text))  # nothing half-written
        columns = [torch.cat(self._rows[k]) for k in self.METRICS]

        def write_csv(tmp: Path) -> None:
            with open(tmp, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["sample", *self.METRICS])
                for i, row in enumerate(zip(*columns)):
                    writer.writerow([i, *(f"{float(v):.3f}" for v in row)])

        write_atomic(paths["csv"], write_csv)

        plt = pyplot_backend(True)
        errors = torch.cat(self._rows["per_joint"])
        fig, ax = plt.subplots(figsize=(8, 3.2))
        ax.bar(range(len(J14_NAMES)), errors.mean(0).numpy(), yerr=errors.std(0).numpy(),
               color="steelblue", capsize=2)
        ax.set_xticks(range(len(J14_NAMES)), J14_NAMES, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("error after pelvis alignment (mm)")
        finish_figure(fig, f"{self.dataset} — {self.protocol.name}: per-joint error", paths["png"], dpi=110)
        plt.close(fig)
        return paths
