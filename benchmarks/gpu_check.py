"""The GPU check (issue 20): the CUDA tests, then PostureHMR's throughputs at the paper's config.

    python benchmarks/gpu_check.py [--json PATH] [--budget 540]      # on a CUDA machine
    python benchmarks/gpu_check.py --device cpu --quick              # a CPU dry run (seconds)

One process, within a time budget (default 540 s, for a 10-minute slot on one H100):

1. ``pytest -m cuda`` as a subprocess: every component's CUDA output against its CPU output
   (``tests/test_cuda.py``); the pass / fail counts go into the JSON.
2. At the paper's config (``PostureHMRConfig.paper()``: 256 px crops, HRNet-W48, the 431-vertex coarse
   mesh, T = 10) on the built-in synthetic body (``BodyModel.synthetic()``: SMPL's sizes, no SMPL
   files), eager and ``torch.compile``d, float32 and bfloat16 autocast:
   - inference images/s of ``model.predict`` (2D stage + T reverse steps + up-sampling) at B = 32
     and B = 128;
   - training samples/s and peak memory of one step (loss + backward + Adam) for the 2D stage
     (``loss_2d``, with the trimap render loss) and the 3D stage (``loss_3d``) at B = 32, on a
     SynthBody batch (``torch.utils.data.default_collate``, moved to the device);
   - ``FKSchedule.trajectory`` (B = 256, T = 10) against a loop of ``smplx.SMPL`` calls, one per
     step (``bench_forward.smplx_loop``), on the same device;
   - the soft silhouette + trimap loss, forward + backward, at B = 32 and 256 px on the coarse
     mesh's faces: time and peak memory.
3. The targets (judged on CUDA only), the implied epoch time of the paper's recipe on this card
   against the paper's four RTX 3090s (an estimate resting on stated assumptions), a JSON file
   and, printed last, the table.

Compiled variants wrap the timed functions in ``torch.compile`` here (``model.predict``,
``model.loss_2d`` / ``loss_3d``, ``schedule.trajectory``), each compiled once per shape and
precision; an item the remaining budget cannot cover is skipped with a note, never left half-run.
Training runs inside ``kinediff.value_checks(False)``, as a training loop would.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

PROCESS_START = time.perf_counter()  # the budget counts from here (imports included)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:  # bench_forward / _timing, when imported rather than run
    sys.path.insert(0, str(HERE))

SCHEMA = 1
DEFAULT_JSON = HERE / "results" / "gpu_check.json"

#: The targets on one H100 (issue 20): key -> (what, comparison, threshold, unit).
TARGETS: dict[str, tuple[str, str, float, str]] = {
    "inference_large": ("inference, B = 128, bf16, compiled", ">=", 1000.0, "images/s"),
    "inference_small": ("inference, B = 32, bf16, compiled", ">=", 300.0, "images/s"),
    "train_2d": ("2D-stage training (best variant)", ">=", 400.0, "samples/s"),
    "fk_ratio": ("FK trajectory vs smplx loop (best variant)", ">=", 20.0, "x"),
    "render_ms": ("render loss fwd + bwd, B = 32, 256 px", "<", 30.0, "ms"),
}

#: The paper's recipe, for the epoch estimate (§4.2: 40 epochs per stage; the 2D stage on
#: Human3.6M with MPI-INF-3DHP, UP-3D and COCO added, the 3D stage on Human3.6M). The paper gives
#: no set sizes: these are ASSUMPTIONS, the usual preprocessed counts, rounded.
EPOCHS_PER_STAGE = 40
EPOCH_SETS_2D: dict[str, int] = {
    "Human3.6M S1/S5/S6/S7/S8, every 5th frame, 4 cameras": 312_000,
    "MPI-INF-3DHP training crops": 96_000,
    "UP-3D train + val": 7_000,
    "COCO person crops with keypoints": 28_000,
}
EPOCH_3D = 312_000  # Human3.6M only

#: The paper trained on four RTX 3090s. No published RTX 3090 training throughput for HRNet-W48
#: was found, so this per-card figure is an ASSUMPTION, derived from a published anchor: HRNet's
#: authors report HRNet-W32 (256 x 192) trained 210 epochs on COCO (~150k person instances) in
#: 50-60 h on 4 P100s (deep-high-resolution-net.pytorch issue 3), i.e. ~40 samples/s per P100;
#: HRNet-W48 at 256 x 256 costs ~2.75x the FLOPs of W32 at 256 x 192 (19.5 vs 7.1 GFLOPs), and an
#: RTX 3090 is assumed ~3x a P100 on this workload: 40 x 3 / 2.75 ~ 43 samples/s per card.
RTX3090_SAMPLES_PER_S = 43.0
RTX3090_BASIS = ("ASSUMPTION, not a published RTX 3090 figure (none found): ~43 samples/s per card "
                 "for HRNet-W48 training at 256 px, from HRNet-W32 COCO training on 4 P100s "
                 "(~40 samples/s per card, published by HRNet's authors) x 3 (3090 vs P100, "
                 "assumed) / 2.75 (W48 at 256x256 vs W32 at 256x192, FLOPs); 4 cards at ideal scaling")

#: What ``--items`` may name.
ITEMS = ("fk", "render", "inference", "deviation", "train_2d", "train_3d")

#: torch.compile seconds assumed for an item's first compile before one of its kind was seen.
COMPILE_GUESS_S = {"predict": 120.0, "train_2d": 180.0, "train_3d": 150.0, "fk": 60.0}


# -- time, memory ---------------------------------------------------------------------------------

class Budget:
    """Seconds left of the run's budget, counted from the process start (imports included)."""

    def __init__(self, seconds: float, start: float) -> None:
        self.seconds, self.start = seconds, start

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one ``fn()`` with the device's queue drained: CUDA events on CUDA, the wall
    clock elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int, max_s: float,
            min_repeats: int = 1) -> dict[str, float]:
    """``fn``'s median seconds over up to ``repeats`` runs after ``warmup`` runs; the timed loop
    stops after ``max_s`` seconds once ``min_repeats`` runs are in. Returns ``median_s``,
    ``min_s``, ``iters`` and ``first_s`` (the first call: compilation included)."""
    synchronize(device)
    first = timed_call(fn, device)
    for _ in range(max(0, warmup - 1)):
        fn()
    synchronize(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < min_repeats or time.perf_counter() - start < max_s):
        times.append(timed_call(fn, device))
    return {"median_s": statistics.median(times), "min_s": min(times), "iters": len(times),
            "first_s": first}


def peak_memory_mb(fn: Callable[[], Any], device: torch.device) -> dict[str, float | None]:
    """Peak allocated device memory during one ``fn()`` (MiB) and the allocation before it; None
    off CUDA (the CPU dry run reports no memory and does not call ``fn``)."""
    if device.type != "cuda":
        return {"peak_mb": None, "before_mb": None}
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    synchronize(device)
    return {"peak_mb": torch.cuda.max_memory_allocated(device) / 2**20, "before_mb": before / 2**20}


def autocast(device: torch.device, precision: str):
    """bfloat16 autocast for ``precision == "bf16"``, nothing for "fp32"."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


# -- the run's settings and rows ------------------------------------------------------------------

@dataclass
class Settings:
    """What one run measures, at which sizes (the GPU run's or the CPU dry run's)."""

    device: torch.device
    quick: bool
    config_name: str
    batches: tuple[int, int]  # inference (small, large)
    train_batch: int
    fk_batch: int
    render_batch: int
    warmup: int
    repeats: int
    item_max_s: float
    precisions: tuple[str, ...]
    compile_backend: str  # "inductor", "eager" or "none"
    compile_mode: str | None
    compile_guess: dict[str, float] = field(default_factory=dict)
    breaks: GraphBreakSites = field(default_factory=lambda: GraphBreakSites())

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


@dataclass
class Row:
    """One measured (or skipped, or failed) item of the table."""

    key: str
    item: str
    variant: str
    batch: int | None
    value: float | None = None
    unit: str = ""
    ms: float | None = None
    peak_mb: float | None = None
    status: str = "ok"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "item": self.item, "variant": self.variant, "batch": self.batch,
                "value": self.value, "unit": self.unit, "ms": self.ms, "peak_mb": self.peak_mb,
                "status": self.status, "note": self.note, **self.extra}


def variant_name(precision: str, compiled: bool) -> str:
    return f"{precision} {'compiled' if compiled else 'eager'}"


def compile_options(s: Settings) -> dict[str, Any]:
    opts: dict[str, Any] = {"backend": s.compile_backend, "dynamic": False}
    if s.compile_mode:
        opts["mode"] = s.compile_mode
    return opts


def raise_recompile_limits() -> None:
    """Each compiled function meets several shapes and precisions: room for every variant."""
    config = torch._dynamo.config
    for name in ("cache_size_limit", "accumulated_cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), 64))


def guarded(rows: list[Row], row: Row, s: Settings, budget: Budget, need_s: float,
            run: Callable[[Row], None]) -> None:
    """Run ``run(row)`` if the budget leaves ``need_s`` seconds, else record the row as skipped;
    an exception is recorded in the row (the run goes on)."""
    rows.append(row)
    if budget.left() < need_s:
        row.status = "skipped"
        row.note = f"skipped: {max(budget.left(), 0):.0f} s of the budget left, ~{need_s:.0f} s needed"
        return
    before, logged = graph_break_counts(), len(s.breaks.sites)
    try:
        run(row)
        if row.variant.endswith("compiled"):
            row.extra.update(graph_breaks_since(before, s.breaks.sites[logged:]))
    except Exception as exc:  # noqa: BLE001 - one failed item must not end the check
        row.status = "error"
        row.note = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        row.extra["traceback"] = traceback.format_exc(limit=8)
    finally:
        if s.cuda:
            torch.cuda.empty_cache()


class GraphBreakSites:
    """Where dynamo breaks the compiled functions' graphs: the user-code locations (file:line)
    of torch's ``graph_breaks`` log, kept here instead of printed."""

    LOGGER = "torch._dynamo.symbolic_convert.__graph_breaks"

    def __init__(self) -> None:
        self.sites: list[str] = []

    def install(self) -> None:
        torch._logging.set_logs(dynamo=logging.ERROR, graph_breaks=True)
        logging.getLogger(self.LOGGER).addFilter(self._keep)

    def _keep(self, record: logging.LogRecord) -> bool:
        found = re.search(r"user code at (\S+)", record.getMessage())
        if found:
            site = found.group(1)
            self.sites.append(site[len(str(ROOT)) + 1:] if site.startswith(str(ROOT)) else site)
        return False  # recorded, not printed


def graph_break_counts() -> dict[str, int]:
    """Dynamo's graph-break counts by reason so far in this process."""
    from torch._dynamo.utils import counters

    return dict(counters["graph_break"])


def graph_breaks_since(before: dict[str, int], sites: list[str]) -> dict[str, Any]:
    """The graph breaks met since ``before`` (while compiling an item): how many, their reasons'
    first lines and, from the log, where (``sites``: the locations logged meanwhile; kinediff's
    first). Each break cuts the compiled function into pieces with Python between them."""
    now = graph_break_counts()
    new = {k: v - before.get(k, 0) for k, v in now.items() if v > before.get(k, 0)}
    where = sorted(set(sites), key=lambda x: (not x.startswith("kinediff/"), x))
    return {"graph_breaks": sum(new.values()),
            "graph_break_reasons": sorted({k.splitlines()[0][:160] for k in new}),
            "graph_break_sites": where[:20]}


def need_for(kind: str, compiled: bool, s: Settings) -> float:
    """Seconds to ask of the budget before an item: its timed loop, and a compile if any."""
    base = 3.0 * s.item_max_s
    if not compiled or s.compile_backend == "none":
        return base
    return base + s.compile_guess.get(kind, COMPILE_GUESS_S[kind] if s.cuda else 10.0)


def learn_compile_time(kind: str, first_s: float, median_s: float, s: Settings) -> None:
    """After a compiled item's first call: expect the next of its kind to take as long."""
    s.compile_guess[kind] = max(0.0, first_s - median_s) * 1.2 + 5.0


# -- the CUDA tests -------------------------------------------------------------------------------

def run_cuda_tests(s: Settings, budget: Budget, paths: list[str], skip: bool) -> dict[str, Any]:
    """``pytest -m cuda`` in a subprocess; counts from its JUnit XML."""
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", *paths]
    out: dict[str, Any] = {"command": " ".join(["pytest", "-m", "cuda", "-q", *paths]),
                           "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "total": 0,
                           "seconds": 0.0, "failures": []}
    if skip:
        return {**out, "status": "not run", "note": "not run (--skip-tests)"}
    timeout = min(180.0, max(60.0, budget.left() - 60.0))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        xml_path = Path(tmp) / "junit.xml"
        try:
            proc = subprocess.run([*command, f"--junitxml={xml_path}"], check=False, cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**out, "status": "timeout", "seconds": time.perf_counter() - start,
                    "note": f"pytest -m cuda ran past {timeout:.0f} s and was stopped"}
        out["seconds"] = time.perf_counter() - start
        out["returncode"] = proc.returncode
        out["output_tail"] = (proc.stdout + proc.stderr)[-2000:]
        if not xml_path.is_file():
            return {**out, "status": "error", "note": "pytest wrote no report (see output_tail)"}
        out.update(junit_counts(xml_path))
    if out["total"] and out["skipped"] == out["total"]:
        reason = "no CUDA" if not torch.cuda.is_available() else "all skipped"
        return {**out, "status": f"skipped: {reason}", "note": f"all {out['total']} skipped ({reason})"}
    status = "passed" if out["failed"] == 0 and out["errors"] == 0 and out["total"] else "failed"
    return {**out, "status": status, "note": f"{out['passed']} passed, {out['failed']} failed, "
                                             f"{out['errors']} errors, {out['skipped']} skipped"}


def junit_counts(path: Path) -> dict[str, Any]:
    """Totals and the failing tests' names of a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = sum(int(x.get("tests", 0)) for x in suites)
    failed = sum(int(x.get("failures", 0)) for x in suites)
    errors = sum(int(x.get("errors", 0)) for x in suites)
    skipped = sum(int(x.get("skipped", 0)) for x in suites)
    failures = [f"{case.get('classname')}::{case.get('name')}" for case in root.iter("testcase")
                if case.find("failure") is not None or case.find("error") is not None]
    return {"total": total, "failed": failed, "errors": errors, "skipped": skipped,
            "passed": total - failed - errors - skipped, "failures": failures[:30]}


# -- the model and its data -----------------------------------------------------------------------

def build(s: Settings):
    """The config, the model on the device (BatchNorm statistics warmed on the batch, eval mode;
    its ``body`` moved with it) and a training batch on the device."""
    from torch.utils.data import default_collate

    from kinediff import PostureHMR, PostureHMRConfig
    from kinediff.body import BodyModel
    from kinediff.data.synthetic import SynthBody

    config = PostureHMRConfig.tiny() if s.config_name == "tiny" else PostureHMRConfig.paper()
    body = BodyModel.synthetic()
    torch.manual_seed(0)
    model = PostureHMR(config, body)
    n = max(s.train_batch, s.render_batch)
    data = SynthBody(n, seed=0, body=body, image_size=config.image_size,
                     mesh_factors=config.mesh_factors, progress=False)
    cpu_batch = default_collate([data[i] for i in range(n)])
    model.init_coefficients(cpu_batch)
    model.to(s.device)
    if s.cuda:  # as the Trainer: the HRNet's weights in the tensor cores' layout
        model.head.to(memory_format=torch.channels_last)
    batch = {k: v.to(s.device) if isinstance(v, torch.Tensor) else v for k, v in cpu_batch.items()}
    with torch.no_grad():  # random weights: BatchNorm statistics of real crops keep eval sane
        model.train()
        for _ in range(2):
            model.head(batch["image"][: s.train_batch])
    model.eval()
    return config, model, batch


def take(batch: dict[str, Any], n: int) -> dict[str, Any]:
    """The first ``n`` samples of a batch (tensors and lists)."""
    return {k: v[:n] for k, v in batch.items()}


def images_of(batch: dict[str, Any], n: int) -> torch.Tensor:
    """``n`` crops, the batch's repeated as needed."""
    images = batch["image"]
    return images[torch.arange(n, device=images.device) % images.shape[0]].contiguous()


# -- the items ------------------------------------------------------------------------------------

def inference_rows(s: Settings, budget: Budget, model, batch, rows: list[Row], compiled: bool,
                   precisions: tuple[str, ...], compiled_fns: dict[str, Any]) -> None:
    """``model.predict`` images/s at both batch sizes (the large first), eager or compiled (one
    ``torch.compile(model.predict)`` shared by every shape and precision)."""
    for precision in precisions:
        for key, b in (("inference_large", s.batches[1]), ("inference_small", s.batches[0])):
            row = Row(key, "inference (predict)", variant_name(precision, compiled), b,
                      unit="images/s")
            if compiled and s.compile_backend == "none":
                rows.append(row)
                row.status, row.note = "skipped", "compile off (--compile-backend none)"
                continue
            if compiled and "predict" not in compiled_fns:  # the library's option
                compiled_fns["predict"] = compiled_twin(model, s).predict
            fn = compiled_fns["predict"] if compiled else model.predict
            images = images_of(batch, b)

            def run(row: Row, fn=fn, images=images, precision=precision) -> None:
                def call():
                    with torch.no_grad(), autocast(s.device, precision):
                        return fn(images)

                m = measure(call, s.device, s.warmup + compiled, s.repeats, s.item_max_s,
                            3 if s.cuda else 1)
                fill(row, m, row.batch)
                if compiled:
                    learn_compile_time("predict", m["first_s"], m["median_s"], s)

            guarded(rows, row, s, budget, need_for("predict", compiled, s), run)


def compiled_twin(model, s: Settings):
    """``PostureHMR(config, body, compile=...)`` with ``model``'s weights: what a user serving a
    model compiled writes (its ``predict`` compiles the network part as one graph)."""
    from kinediff import PostureHMR

    twin = PostureHMR(model.config, model.body, compile=compile_options(s))
    twin.load_state_dict(model.state_dict())
    twin.to(s.device)
    if s.cuda:
        twin.head.to(memory_format=torch.channels_last)
    return twin.eval()


def fill(row: Row, m: dict[str, float], per_call: int | None) -> None:
    """A row's throughput and time from a :func:`measure` result."""
    row.ms = 1e3 * m["median_s"]
    if per_call:
        row.value = per_call / m["median_s"]
    row.extra.update(iters=m["iters"], first_call_ms=1e3 * m["first_s"], min_ms=1e3 * m["min_s"])


def bf16_deviation_row(s: Settings, model, batch, rows: list[Row]) -> None:
    """How far bf16 autocast moves ``predict``'s vertices from float32 (mm; untrained weights)."""
    row = Row("bf16_deviation", "predict bf16 vs fp32 (vertices)", "eager", s.batches[0], unit="mm")
    rows.append(row)
    if "bf16" not in s.precisions:
        row.status, row.note = "skipped", "bf16 not measured"
        return
    # conditioned on the GT 2D meshes: an untrained head's 2D mesh is nearly a point, which the
    # condition's normalisation (unit RMS radius) would blow up rounding differences from
    b = min(s.batches[0], batch["image"].shape[0])
    images, mesh2d = batch["image"][:b], batch["mesh2d"][:b]
    row.batch = b
    with torch.no_grad():
        ref = model.predict(images, mesh2d=mesh2d)["vertices"]
        with autocast(s.device, "bf16"):
            low = model.predict(images, mesh2d=mesh2d)["vertices"]
    dist = (low.float() - ref.float()).norm(dim=-1) * 1000.0
    row.value = float(dist.mean())
    row.note = (f"mean {float(dist.mean()):.2f} mm, max {float(dist.amax()):.2f} mm (untrained "
                f"weights, GT 2D meshes as the condition)")
    row.extra.update(max_mm=float(dist.amax()), output_dtype=str(low.dtype))


def training_rows(s: Settings, budget: Budget, model, batch, rows: list[Row], compiled: bool,
                  stages: tuple[str, ...], precisions: tuple[str, ...],
                  compiled_fns: dict[str, Any]) -> None:
    """One training step (loss + backward + Adam) per stage and precision, eager or with the loss
    compiled (``torch.compile(model.loss_2d)`` / ``loss_3d``): samples/s and the step's peak
    memory."""
    import kinediff

    train_batch = take(batch, s.train_batch)
    for stage in stages:
        for precision in precisions:
            key = f"train_{stage}"
            row = Row(key, f"training, {stage.upper()} stage", variant_name(precision, compiled),
                      s.train_batch, unit="samples/s")
            if compiled and s.compile_backend == "none":
                rows.append(row)
                row.status, row.note = "skipped", "compile off (--compile-backend none)"
                continue
            loss_fn = getattr(model, f"loss_{stage}")
            if compiled:
                if key not in compiled_fns:
                    compiled_fns[key] = torch.compile(loss_fn, **compile_options(s))
                loss_fn = compiled_fns[key]

            def run(row: Row, stage=stage, precision=precision, loss_fn=loss_fn) -> None:
                with kinediff.value_checks(False):
                    step = training_step(model, stage, train_batch, precision, loss_fn, s.device)
                    m = measure(step, s.device, s.warmup + compiled, s.repeats, s.item_max_s,
                                3 if s.cuda else 1)
                    fill(row, m, row.batch)
                    memory = peak_memory_mb(step, s.device)
                row.peak_mb = memory["peak_mb"]
                row.extra["before_step_mb"] = memory["before_mb"]
                if compiled:
                    learn_compile_time(key, m["first_s"], m["median_s"], s)

            guarded(rows, row, s, budget, need_for(key, compiled, s), run)
            model.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()


def training_step(model, stage: str, batch: dict[str, Any], precision: str, loss_fn,
                  device: torch.device) -> Callable[[], torch.Tensor]:
    """A closure running one optimiser step of ``stage`` (Adam with the config's groups; the
    parameters other stages train are frozen, as the Trainer does)."""
    groups = model.parameter_groups(stage)
    trained = {id(p) for g in groups for p in g["params"]}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    model.zero_grad(set_to_none=True)
    optimizer = torch.optim.Adam(groups)
    model.train_mode(stage)
    kwargs = {"epoch": EPOCHS_PER_STAGE} if stage == "3d" else {}

    def step() -> torch.Tensor:
        with autocast(device, precision):
            terms = loss_fn(batch, **kwargs)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        return terms["total"]

    return step


def fk_rows(s: Settings, budget: Budget, body, rows: list[Row], compiled: bool,
            state: dict[str, Any]) -> None:
    """``FKSchedule.trajectory`` against a per-step smplx loop on the same device (no gradients,
    float32): eager, alternating with the peer, or compiled (against the eager row's peer time)."""
    from kinediff.forward import FKSchedule

    b = s.fk_batch
    g = torch.Generator().manual_seed(1)
    pose = (torch.randn(b, 24, 3, generator=g) * 0.5).to(s.device)
    betas = torch.randn(b, 10, generator=g).to(s.device)
    schedule = FKSchedule(body, num_steps=10)
    row = Row("fk_ratio", "FK trajectory vs smplx loop", variant_name("fp32", compiled), b, unit="x")
    if compiled and s.compile_backend == "none":
        rows.append(row)
        row.status, row.note = "skipped", "compile off (--compile-backend none)"
        return

    def run_eager(row: Row) -> None:
        import smplx
        from _timing import median_seconds_pair
        from bench_forward import smplx_loop

        from kinediff.body import matrix_to_axis_angle, synthetic_model_path

        ref = smplx.SMPL(model_path=str(synthetic_model_path(0))).to(s.device)
        end = matrix_to_axis_angle(schedule.template_orientation)  # the user's constant
        with torch.no_grad():
            ours, peer = median_seconds_pair(lambda: schedule.trajectory(pose, betas),
                                             lambda: smplx_loop(ref, pose, betas, end,
                                                                schedule.num_steps), s.device,
                                             repeats=s.repeats, warmup=s.warmup, budget_s=2 * s.item_max_s)
        state["peer_s"] = peer
        row.ms, row.value = 1e3 * ours, peer / ours
        row.note = f"smplx loop {1e3 * peer:.1f} ms"
        row.extra.update(peer_ms=1e3 * peer, kinediff_ms=1e3 * ours)

    def run_compiled(row: Row) -> None:
        fn = torch.compile(schedule.trajectory, **compile_options(s))
        with torch.no_grad():
            m = measure(lambda: fn(pose, betas), s.device, s.warmup + 1, s.repeats, s.item_max_s,
                        3 if s.cuda else 1)
        fill(row, m, None)
        row.extra["kinediff_ms"] = row.ms
        if "peer_s" in state:
            row.value = state["peer_s"] / m["median_s"]
            row.note = f"smplx loop {1e3 * state['peer_s']:.1f} ms (the eager row's)"
        else:
            row.note = "no smplx time (the eager row did not run)"
        learn_compile_time("fk", m["first_s"], m["median_s"], s)

    guarded(rows, row, s, budget, need_for("fk", compiled, s), run_compiled if compiled else run_eager)


def render_row(s: Settings, budget: Budget, config, model, batch, rows: list[Row]) -> None:
    """The trimap render loss (soft silhouettes of a predicted and the GT 2D mesh, the band, the
    IoUs), forward + backward, on the coarse mesh: time and peak memory."""
    from kinediff.losses import trimap_render_loss

    b = s.render_batch
    gt = batch["mesh2d"][:b].float()
    g = torch.Generator().manual_seed(2)
    noisy = (gt.cpu() + 2.0 * torch.randn(gt.shape, generator=g)).to(s.device)
    faces = model.hierarchy.faces(-1)
    row = Row("render_ms", f"render loss fwd + bwd ({config.image_size} px)", "fp32 eager", b, unit="ms")

    def step() -> None:
        pred = noisy.clone().requires_grad_(True)
        loss = trimap_render_loss(pred, gt, faces, config.image_size, config.render.width,
                                  config.render.sigma).mean()
        loss.backward()

    def run(row: Row) -> None:
        m = measure(step, s.device, s.warmup, s.repeats, s.item_max_s, 3 if s.cuda else 1)
        fill(row, m, None)
        row.value = row.ms
        row.peak_mb = peak_memory_mb(step, s.device)["peak_mb"]
        row.note = f"{faces.shape[0]} faces, sigma {config.render.sigma}, band {config.render.width} px"

    guarded(rows, row, s, budget, need_for("render", False, s), run)


# -- targets and the epoch estimate ---------------------------------------------------------------

def best(rows: list[Row], key: str, variant: str | None = None) -> Row | None:
    """The measured row of ``key`` (and ``variant``) with the best value (lowest for ms)."""
    found = [r for r in rows if r.key == key and r.status == "ok" and r.value is not None
             and (variant is None or r.variant == variant)]
    if not found:
        return None
    return (min if TARGETS.get(key, ("", "", 0, ""))[1] == "<" else max)(found, key=lambda r: r.value)


def judge(rows: list[Row], s: Settings) -> list[dict[str, Any]]:
    """Each target with the figure it is judged on and pass / fail (None: not judged)."""
    pick = {"inference_large": "bf16 compiled", "inference_small": "bf16 compiled"}
    out = []
    for key, (what, op, threshold, unit) in TARGETS.items():
        row = best(rows, key, pick.get(key))
        value = None if row is None else row.value
        if not s.cuda:
            verdict, note = None, "CPU dry run"
        elif value is None:
            verdict, note = None, "not measured (skipped or failed: see its row)"
        else:
            verdict = value >= threshold if op == ">=" else value < threshold
            note = f"{row.variant}, B = {row.batch}"
        out.append({"key": key, "target": f"{what} {op} {threshold:g} {unit}", "what": what,
                    "op": op, "threshold": threshold, "value": value, "unit": unit,
                    "pass": verdict, "note": note})
    return out


def epoch_estimate(rows: list[Row], s: Settings, epoch_2d: int, epoch_3d: int,
                   rtx3090: float) -> dict[str, Any]:
    """The paper's recipe (40 epochs per stage) at the best measured training throughputs, and the
    2D stage on four RTX 3090s at the assumed per-card rate."""
    r2d, r3d = best(rows, "train_2d"), best(rows, "train_3d")
    out: dict[str, Any] = {
        "epochs_per_stage": EPOCHS_PER_STAGE, "epoch_2d_samples": epoch_2d,
        "epoch_3d_samples": epoch_3d, "sets_2d_assumed": EPOCH_SETS_2D,
        "set_sizes_note": "ASSUMPTION: the paper gives no training-set sizes; usual preprocessed "
                          "counts, rounded (--epoch-2d / --epoch-3d change them)",
        "rtx3090_samples_per_s_per_card": rtx3090, "rtx3090_basis": RTX3090_BASIS,
        "device_label": "this device" if s.cuda else "CPU dry run (meaningless as an estimate)"}
    four = 4 * rtx3090
    out["rtx3090x4_epoch_2d_h"] = epoch_2d / four / 3600
    out["rtx3090x4_stage_2d_h"] = EPOCHS_PER_STAGE * out["rtx3090x4_epoch_2d_h"]
    if r2d is not None:
        out.update(epoch_2d_h=epoch_2d / r2d.value / 3600, variant_2d=r2d.variant,
                   samples_per_s_2d=r2d.value,
                   speedup_vs_rtx3090x4_2d=r2d.value / four)
        out["stage_2d_h"] = EPOCHS_PER_STAGE * out["epoch_2d_h"]
    if r3d is not None:
        out.update(epoch_3d_h=epoch_3d / r3d.value / 3600, variant_3d=r3d.variant,
                   samples_per_s_3d=r3d.value)
        out["stage_3d_h"] = EPOCHS_PER_STAGE * out["epoch_3d_h"]
    if r2d is not None and r3d is not None:
        out["recipe_h"] = out["stage_2d_h"] + out["stage_3d_h"]
    return out


# -- output ---------------------------------------------------------------------------------------

def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"type": device.type, "torch": torch.__version__, "cuda": torch.version.cuda,
                           "python": platform.python_version(), "machine": platform.machine(),
                           "cpus": os.cpu_count(), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(name=torch.cuda.get_device_name(device), capability=f"{props.major}.{props.minor}",
                   memory_gib=props.total_memory / 2**30, cudnn=torch.backends.cudnn.version(),
                   matmul_tf32=torch.backends.cuda.matmul.allow_tf32,
                   cudnn_tf32=torch.backends.cudnn.allow_tf32)
    else:
        env["name"] = f"CPU ({platform.processor() or platform.machine()})"
    return env


def header(env: dict[str, Any], s: Settings) -> str:
    mode = "GPU check" if s.cuda else "CPU DRY RUN (figures are not GPU figures; targets not judged)"
    return (f"kinediff {mode}: {env['name']}, torch {env['torch']}, CUDA {env['cuda'] or 'n/a'}"
            + (f", cuDNN {env['cudnn']}, {env['memory_gib']:.0f} GiB" if s.cuda else ""))


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}" if abs(x) < 1e5 else f"{x:,.0f}"


def table(report: dict[str, Any]) -> str:
    """The final table: one line per row, each target's verdict next to the figure it is judged
    on, then the targets, the epoch estimate and the tests."""
    marks = {True: "PASS", False: "FAIL", None: "not judged"}
    judged = {(t["key"], t["value"]): t for t in report["targets"] if t["value"] is not None}
    lines = [(f"{'item':<34} {'variant':<14} {'B':>4} {'value':>11} {'unit':<9} {'ms/iter':>9} "
             f"{'peak MiB':>9}  target / note")]
    rule = "-" * len(lines[0])
    lines.append(rule)
    for r in report["results"]:
        note = r["note"] if r["status"] == "ok" else f"[{r['status']}] {r['note']}"
        t = judged.pop((r["key"], r["value"]), None) if r["status"] == "ok" else None
        if t is not None:
            verdict = f"{marks[t['pass']]} ({t['op']} {t['threshold']:g} {t['unit']})"
            note = f"{verdict}; {note}" if note else verdict
        digits = 2 if r["unit"] in ("x", "mm", "ms") else 1
        lines.append(f"{r['item'][:34]:<34} {r['variant']:<14} {r['batch'] or '':>4} "
                     f"{fmt(r['value'], digits):>11} {r['unit']:<9} {fmt(r['ms'], 2):>9} "
                     f"{fmt(r['peak_mb'], 0):>9}  {note}")
    lines.append(rule)
    for t in report["targets"]:
        lines.append(f"target: {t['target']:<62} {fmt(t['value'], 2):>10}  {marks[t['pass']]} "
                     f"({t['note']})")
    e = report["epoch_estimate"]
    lines.append(f"epoch, 2D stage ({e['epoch_2d_samples']:,} samples, assumed): {e['device_label']} "
                 f"{fmt(e.get('epoch_2d_h'), 2)} h ({e.get('variant_2d', 'not measured')}); 4x RTX 3090 "
                 f"ESTIMATED {e['rtx3090x4_epoch_2d_h']:.2f} h (ASSUMED "
                 f"{e['rtx3090_samples_per_s_per_card']:g} samples/s per card)")
    lines.append(f"epoch, 3D stage ({e['epoch_3d_samples']:,} samples, assumed): {e['device_label']} "
                 f"{fmt(e.get('epoch_3d_h'), 2)} h ({e.get('variant_3d', 'not measured')}); the recipe "
                 f"({e['epochs_per_stage']} + {e['epochs_per_stage']} epochs): {fmt(e.get('recipe_h'), 1)} h")
    tests = report["tests"]
    lines.append(f"CUDA tests (pytest -m cuda): {tests['status']}: {tests['note']}")
    return "\n".join(lines)


def notes(report: dict[str, Any]) -> list[str]:
    e = report["epoch_estimate"]
    sets = "; ".join(f"{k} ~{v:,}" for k, v in e["sets_2d_assumed"].items())
    return [
        f"body: {report['config']['body']}",
        f"config: {report['config']['summary']}",
        ("training steps run with kinediff.value_checks(False) (as a training loop does); inference "
        "with the default checks"),
        (f"epoch sizes, {e['set_sizes_note']}: 2D stage {sets} (total {e['epoch_2d_samples']:,}); "
        f"3D stage Human3.6M ~{e['epoch_3d_samples']:,}"),
        f"RTX 3090 figure: {e['rtx3090_basis']}",
    ]


# -- main -----------------------------------------------------------------------------------------

def settings_from(args: argparse.Namespace) -> Settings:
    device = torch.device(args.device)
    quick = args.quick
    # the dry run compiles nothing by default (dynamo's tracing alone takes about a minute on two
    # CPU cores); --compile-backend eager traces every compiled item without generating code
    backend = args.compile_backend or ("inductor" if device.type == "cuda" and not quick else "none")
    return Settings(
        device=device, quick=quick, config_name="tiny" if quick else args.config,
        batches=(2, 4) if quick else (32, 128), train_batch=2 if quick else args.train_batch,
        fk_batch=2 if quick else 256, render_batch=2 if quick else 32,
        warmup=1 if quick else 2, repeats=1 if quick else args.repeats,
        item_max_s=0.5 if quick else args.item_seconds,
        precisions=tuple(args.precisions.split(",")), compile_backend=backend,
        compile_mode=None if args.compile_mode == "default" else args.compile_mode)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: the CPU dry run")
    p.add_argument("--json", default=str(DEFAULT_JSON), help=f"where the report goes ({DEFAULT_JSON.name})")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for the whole run (default 540; 50 with --quick)")
    p.add_argument("--config", choices=("paper", "tiny"), default="paper")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--compile-backend", choices=("inductor", "eager", "none"), default=None,
                   help="torch.compile backend (default: inductor on CUDA, none in the CPU dry run)")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode: default or max-autotune-no-cudagraphs")
    p.add_argument("--train-batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--item-seconds", type=float, default=4.0, help="timed seconds per item, at most")
    p.add_argument("--items", type=lambda x: x.split(","), default=list(ITEMS),
                   help=f"what to measure, of {','.join(ITEMS)} (default: all)")
    p.add_argument("--modes", type=lambda x: x.split(","), default=["eager", "compiled"],
                   help="eager,compiled (default: both)")
    p.add_argument("--skip-tests", action="store_true", help="do not run pytest -m cuda")
    p.add_argument("--tests", nargs="*", default=["tests"], help="paths pytest -m cuda collects")
    p.add_argument("--epoch-2d", type=int, default=sum(EPOCH_SETS_2D.values()))
    p.add_argument("--epoch-3d", type=int, default=EPOCH_3D)
    p.add_argument("--rtx3090", type=float, default=RTX3090_SAMPLES_PER_S,
                   help="assumed RTX 3090 2D-stage samples/s per card")
    args = p.parse_args(argv)
    choices = (("--items", args.items, ITEMS), ("--modes", args.modes, ("eager", "compiled")),
               ("--precisions", args.precisions.split(","), ("fp32", "bf16")))
    for name, given, allowed in choices:
        if not given or set(given) - set(allowed):
            p.error(f"{name} takes a comma-separated list of {', '.join(allowed)}; got {','.join(given)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available here: use --device cpu --quick for a dry run")
    return args


def make_report(args: argparse.Namespace, s: Settings, budget: Budget, env: dict[str, Any], config,
                model, tests: dict[str, Any], rows: list[Row], complete: bool) -> dict[str, Any]:
    """The JSON report: device, config, settings, tests, rows, targets, epoch estimate, notes."""
    report: dict[str, Any] = {
        "schema": SCHEMA, "mode": "gpu" if s.cuda else "cpu-dry-run", "complete": complete,
        "device": env,
        "config": {"name": s.config_name, "image_size": config.image_size,
                   "backbone": config.head.backbone, "coarse_vertices": model.num_coarse,
                   "num_steps": config.schedule.num_steps,
                   "summary": (f"PostureHMRConfig{'.tiny()' if s.config_name == 'tiny' else '.paper()'}: "
                               f"{config.image_size} px, {config.head.backbone}, {model.num_coarse} "
                               f"coarse vertices, T = {config.schedule.num_steps}"),
                   "body": "BodyModel.synthetic() (built-in, SMPL's sizes: 6890 vertices, 24 joints; "
                           "no SMPL files)"},
        "settings": {"batches": list(s.batches), "train_batch": s.train_batch,
                     "fk_batch": s.fk_batch, "render_batch": s.render_batch, "warmup": s.warmup,
                     "repeats": s.repeats, "item_max_s": s.item_max_s,
                     "precisions": list(s.precisions), "compile_backend": s.compile_backend,
                     "compile_mode": s.compile_mode or "default", "budget_s": budget.seconds},
        "tests": tests,
        "results": [r.to_dict() for r in rows],
    }
    report["targets"] = judge(rows, s)
    report["epoch_estimate"] = epoch_estimate(rows, s, args.epoch_2d, args.epoch_3d, args.rtx3090)
    report["notes"] = notes(report)
    report["seconds"] = budget.elapsed()
    return report


def main(argv: list[str] | None = None, start: float | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    s = settings_from(args)
    budget = Budget(args.budget or (50.0 if s.quick else 540.0), start or PROCESS_START)
    env = environment(s.device)
    print(header(env, s), flush=True)
    if s.cuda:
        torch.backends.cudnn.benchmark = True
    if s.compile_backend != "none":
        raise_recompile_limits()
        s.breaks.install()  # graph breaks go into the JSON instead of the output
    tests = run_cuda_tests(s, budget, args.tests, args.skip_tests)
    print(f"CUDA tests: {tests['status']} ({tests['note']})", flush=True)

    config, model, batch = build(s)
    body = model.body
    rows: list[Row] = []
    fns: dict[str, Any] = {}
    state: dict[str, Any] = {}
    low = tuple(p for p in ("bf16", "fp32") if p in s.precisions)  # bf16 first: the targets' variant
    stages = tuple(x for x in ("2d", "3d") if f"train_{x}" in args.items)

    def train(compiled: bool, precisions: tuple[str, ...]) -> None:
        training_rows(s, budget, model, batch, rows, compiled, stages, precisions, fns)

    def infer(compiled: bool, precisions: tuple[str, ...]) -> None:
        inference_rows(s, budget, model, batch, rows, compiled, precisions, fns)

    # (item, mode, what runs), eager first; compiled, the most wanted first: an item the budget
    # cannot cover is skipped with a note
    plan: list[tuple[str, str, Callable[[], None]]] = [
        ("fk", "eager", lambda: fk_rows(s, budget, body, rows, False, state)),
        ("render", "eager", lambda: render_row(s, budget, config, model, batch, rows)),
        ("inference", "eager", lambda: infer(False, s.precisions)),
        ("deviation", "eager", lambda: bf16_deviation_row(s, model, batch, rows)),
        ("train", "eager", lambda: train(False, s.precisions)),
        ("inference", "compiled", lambda: infer(True, low[:1])),
        ("train", "compiled", lambda: train(True, low[:1])),
        ("fk", "compiled", lambda: fk_rows(s, budget, body, rows, True, state)),
        ("inference", "compiled", lambda: infer(True, low[1:])),
        ("train", "compiled", lambda: train(True, low[1:])),
    ]
    plan = [(item, mode, run) for item, mode, run in plan if mode in args.modes
            and (item in args.items or (item == "train" and stages))]
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    for item, mode, run in plan:
        print(f"[{budget.elapsed():6.1f} s] {item}, {mode}", flush=True)
        run()
        # written after every stage: a run stopped from outside still leaves its figures
        report = make_report(args, s, budget, env, config, model, tests, rows, complete=False)
        path.write_text(json.dumps(report, indent=1, default=str))
    report = make_report(args, s, budget, env, config, model, tests, rows, complete=True)
    path.write_text(json.dumps(report, indent=1, default=str))
    print()
    for line in report["notes"]:
        print(f"note: {line}")
    print(f"JSON: {path} ({report['seconds']:.0f} s in all)")
    print()
    print(header(env, s))
    print(table(report), flush=True)
    return report


if __name__ == "__main__":
    main()
