"""Hardening probes: bad inputs and faults thrown at kinediff's public surface, each outcome classified.

    python benchmarks/hardening_probes.py [--json PATH] [--only TEXT] [--list] [--keep]

Every probe is one small function that feeds one bad input (or one fault) to a public entry point
and classifies what happened:

- ``clear``: it raised an error of a user-error type (ValueError, TypeError, an OSError such as
  FileNotFoundError, pickle.UnpicklingError, or an exception class of kinediff's own; KeyError,
  IndexError, RuntimeError, MemoryError, ... are not) whose message names what the probe expects
  (the file, the key, the argument); for data sets, also: the bad record was skipped and the
  loader's ``report()`` names it, with the rest loading; for the command line: a non-zero exit,
  the message naming the thing, no traceback.
- ``unclear``: any other exception or crash (including a timeout, a MemoryError or a kill under
  the memory guard), a message not naming the thing, a traceback on the command line, a data set
  crashing mid-iteration, weights changed before a resume error.
- ``silent``: no error and a wrong result: a non-finite output, a wrong value accepted, a bad
  record used, a bad record dropped without a report, temporary or half-written files left behind.
- ``ok``: accepted and right where the acceptance is documented (e.g. ``image_size=(H, W)``); a
  right result that the docstring does not promise is ``unclear`` ("undocumented acceptance").
- ``error``: the probe itself failed to set up (a bug of this script, not of kinediff; not counted).

Probes that may allocate without bound (memory bombs: a small pickle that expands through shared
references, an npz whose header claims 80 GB, configs of absurd sizes) run in a forked child with
``RLIMIT_AS`` = its current size + 2 GiB and a time limit, so they can never exhaust the machine;
a MemoryError, an allocator error, a kill or a timeout there is ``unclear``.

The probes do not depend on how kinediff implements its checks: they require an error of a
user-error type (any of them) whose message names the file / key / argument, or a skipped and
reported record. Fixtures are written in the real file formats by ``kinediff.testing``
into a temporary folder (removed afterwards unless ``--keep``); the run takes about 2-3 minutes on
2 CPU cores. ``--json PATH`` writes every probe's outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import errno
import io
import json
import os
import pickle
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the kinediff of this checkout, whatever is installed
CATEGORIES = ("data", "api", "training", "cli")
STATUSES = ("clear", "unclear", "silent", "ok", "error")
USER_ERRORS = (ValueError, TypeError, OSError, pickle.UnpicklingError)
GUARD_GIB = 2
NAN, INF = float("nan"), float("inf")
GOOD_SEQ, BAD_SEQ = "a_good_00", "b_bad_00"
#: data-set samples small and cheap: 32-pixel crops, the ~108-vertex coarse mesh
SMALL = {"image_size": 32, "mesh_factors": (4, 4, 4)}


# -- results and probes ----------------------------------------------------------------------------

@dataclass
class Result:
    category: str
    family: str
    name: str
    status: str
    reason: str
    seconds: float

    @property
    def key(self) -> str:
        return f"{self.category}/{self.family}/{self.name}"


@dataclass
class Probe:
    category: str
    family: str
    name: str
    fn: Callable[[Ctx], tuple[str, str]]
    guarded: bool = False
    timeout: float = 40.0
    isolated: bool = False  # run in the zygote's lane (a forked child), without the memory guard

    @property
    def key(self) -> str:
        return f"{self.category}/{self.family}/{self.name}"


class HarnessError(Exception):
    """The probe's own set-up failed (a bug of this script): status "error"."""


class ProbeTimeout(BaseException):
    """Raised by the alarm when a probe runs past its time (a BaseException: library code's
    ``except Exception`` does not swallow it)."""


PROBES: list[Probe] = []


def probe(category: str, family: str, name: str, fn: Callable[[Ctx], tuple[str, str]],
          guarded: bool = False, timeout: float = 40.0, isolated: bool = False) -> None:
    assert category in CATEGORIES
    PROBES.append(Probe(category, family, name, fn, guarded, timeout, isolated or guarded))


# -- classification --------------------------------------------------------------------------------

Names = list  # each entry: a str / Path, or a tuple of alternatives


def short(text: str, limit: int = 150) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {short(str(err))}"


def _mentions_one(text: str, name: Any) -> bool:
    low = text.lower()
    if isinstance(name, Path):
        return str(name).lower() in low or name.name.lower() in low
    name = str(name).lower()
    if len(name) <= 2:  # a short key must appear as a key: quoted, dotted or bracketed
        k = re.escape(name)
        pattern = (rf"(['\"`]{k}['\"`])|(\.{k}\b)|(\[{k}\])|(\bkey {k}\b)|(\b{k}=)"
                   rf"|((^|[\s(:,;]){k}\s+(must|is|has|should|holds|contains|lies|of)\b)")
        return re.search(pattern, low) is not None
    return name in low


def missing_names(text: str, names: Names) -> list[str]:
    """The entries of ``names`` that ``text`` does not mention (an entry: a name or a tuple of
    alternatives; a Path matches by its full path or its file name)."""
    out = []
    for entry in names:
        options = entry if isinstance(entry, tuple) else (entry,)
        if not any(_mentions_one(text, o) for o in options):
            out.append("/".join(o.name if isinstance(o, Path) else str(o) for o in options))
    return out


def user_error(err: BaseException) -> bool:
    if isinstance(err, KeyError | IndexError):
        return False
    return isinstance(err, USER_ERRORS) or type(err).__module__.startswith("kinediff")


def verdict_error(err: BaseException, names: Names) -> tuple[str, str]:
    """An exception: ``clear`` for a user-error type naming ``names``, else ``unclear``."""
    if isinstance(err, ProbeTimeout):
        raise err
    if not user_error(err):
        return "unclear", describe(err)
    text = str(err) + " " + str(getattr(err, "filename", "") or "")
    missing = missing_names(text, names)
    if missing:
        return "unclear", f"does not name {', '.join(missing)}: {describe(err)}"
    return "clear", describe(err)


def refusal(call: Callable[[], Any], names: Names,
            accept: Callable[[Any], tuple[str, str]] | None = None) -> tuple[str, str]:
    """Run ``call``: an exception is judged by :func:`verdict_error`; a return value by ``accept``
    (default: ``silent``, the bad input was accepted)."""
    try:
        value = call()
    except Exception as err:
        return verdict_error(err, names)
    if accept is None:
        return "silent", "accepted without an error"
    return accept(value)


def tensors_of(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        yield torch.as_tensor(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors_of(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from tensors_of(v)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        for v in vars(value).values():
            if isinstance(v, torch.Tensor):
                yield v


def all_finite(value: Any) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors_of(value)
               if t.is_floating_point() or t.is_complex())


def finite_accept(what: str = "accepted") -> Callable[[Any], tuple[str, str]]:
    """No error: ``silent`` either way, saying whether the output is finite."""
    def accept(value: Any) -> tuple[str, str]:
        return "silent", f"{what}; output {'finite' if all_finite(value) else 'NON-FINITE'}"
    return accept


def documented(fn: Any, *words: str) -> bool:
    doc = (getattr(fn, "__doc__", None) or "").lower()
    return any(w.lower() in doc for w in words)


# -- running ---------------------------------------------------------------------------------------

def _alarm(signum, frame):  # noqa: ARG001
    raise ProbeTimeout()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Probes' prints, progress bars and C-level messages (ffmpeg, ...) out of the report."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _run_inline(p: Probe, ctx: Ctx) -> tuple[str, str]:
    torch.manual_seed(0)
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, p.timeout)
    try:
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return p.fn(ctx)
    except ProbeTimeout:
        return "unclear", f"no answer within {p.timeout:.0f} s"
    except HarnessError as err:
        return "error", f"set-up failed: {short(str(err), 300)}"
    except Exception as err:  # a probe that let a library exception out unjudged
        return "error", f"probe raised {describe(err)}\n{traceback.format_exc(limit=-3)}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def vm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _run_guarded(p: Probe, ctx: Ctx) -> tuple[str, str]:
    """The probe in a forked child under RLIMIT_AS = its size + GUARD_GIB and a time limit.

    Called in the zygote process (:func:`zygote_main`): a fresh interpreter that imported kinediff
    but never ran a parallel torch / OpenMP region, so forking it is safe (forking a process that
    has used GNU OpenMP aborts the child)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        try:
            if p.guarded:
                limit = vm_bytes() + (GUARD_GIB << 30)
                resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
            try:
                status, reason = _run_inline(replace(p, timeout=p.timeout * 10), ctx)
            except MemoryError as err:
                status, reason = "unclear", f"MemoryError: {short(str(err))}"
            if status == "unclear" and re.search(r"memory|alloc", reason, re.I):
                reason += f" (under the {GUARD_GIB} GiB guard)"
            os.write(write, json.dumps([status, reason]).encode()[:60000])
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            pass
        finally:
            os._exit(0)
    os.close(write)
    chunks, deadline = [], time.monotonic() + p.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read)
            return "unclear", (f"no answer within {p.timeout:.0f} s under the {GUARD_GIB} GiB memory "
                               f"guard (killed): unbounded work or memory on a small input")
        ready, _, _ = select.select([read], [], [], left)
        if ready:
            data = os.read(read, 65536)
            if not data:
                break
            chunks.append(data)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if chunks:
        out = json.loads(b"".join(chunks).decode())
        return out[0], out[1]
    if os.WIFSIGNALED(status):
        return "unclear", f"killed by signal {os.WTERMSIG(status)} under the {GUARD_GIB} GiB guard"
    return "unclear", f"the guarded child died without an answer (exit status {status})"


def run_probe(p: Probe, ctx: Ctx) -> Result:
    start = time.perf_counter()
    status, reason = (_run_guarded if p.isolated else _run_inline)(p, ctx)
    return Result(p.category, p.family, p.name, status, reason, time.perf_counter() - start)


def zygote_main(work: Path, keys_file: Path) -> int:
    """``--zygote``: run the guarded probes listed in ``keys_file``, one forked child each, and
    print one JSON result per line (on the original stdout; everything else goes to /dev/null)."""
    out = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    warnings.simplefilter("ignore")
    # imports only (no tensor work: a parallel region here would make forking unsafe)
    import scipy.io  # noqa: F401
    import timm  # noqa: F401

    import kinediff.apps.predict  # noqa: F401
    import kinediff.cli  # noqa: F401
    import kinediff.data  # noqa: F401
    import kinediff.posturehmr  # noqa: F401
    import kinediff.training  # noqa: F401

    register_all()
    by_key = {p.key: p for p in PROBES}
    ctx = Ctx(work)
    for key in json.loads(keys_file.read_text()):
        result = run_probe(by_key[key], ctx)
        out.write(json.dumps(asdict(result)) + "\n")
        out.flush()
    return 0


class Zygote:
    """The guarded probes, run by a separate interpreter (``--zygote``) while this one runs the rest."""

    def __init__(self, work: Path, probes: list[Probe]) -> None:
        self.probes = probes
        keys = work / "guarded.json"
        keys.write_text(json.dumps([p.key for p in probes]))
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--zygote", str(work),
                                      str(keys)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=os.environ.copy())

    def results(self) -> list[Result]:
        budget = sum(p.timeout for p in self.probes) + 120
        try:
            stdout, _ = self.proc.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            stdout, _ = self.proc.communicate()
        done = {}
        for line in stdout.decode().splitlines():
            with contextlib.suppress(ValueError, TypeError):
                r = Result(**json.loads(line))
                done[r.key] = r
        return [done.get(p.key) or Result(p.category, p.family, p.name, "error",
                                          "the zygote process gave no result", 0.0) for p in self.probes]


# -- the context: fixtures in the real file formats, built once and on first use -------------------

class Ctx:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.cache = work / "cache"
        os.environ["KINEDIFF_CACHE_DIR"] = str(self.cache)
        self._count = 0
        self.unwritable_dirs: list[Path] = []

    def fresh(self, label: str) -> Path:
        """A new empty folder for one case."""
        self._count += 1  # a forked child counts on its own: mkdtemp keeps the names apart
        (self.work / "cases").mkdir(parents=True, exist_ok=True)
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:60]
        return Path(tempfile.mkdtemp(prefix=f"{self._count:04d}_{label}_", dir=self.work / "cases"))

    def copy_of(self, src: Path, label: str) -> Path:
        dst = self.fresh(label) / src.name
        shutil.copytree(src, dst)
        return dst

    # bodies and the tiny model ------------------------------------------------------------------

    @cached_property
    def body(self):
        from kinediff.body import BodyModel

        return BodyModel.synthetic()

    @cached_property
    def model(self):
        from kinediff import PostureHMR, PostureHMRConfig

        return PostureHMR(PostureHMRConfig.tiny(), self.body).eval()

    @cached_property
    def model_dir(self) -> Path:
        return fixture(self.work, "model", lambda tmp: self.model.save_pretrained(tmp / "model")) / "model"

    @cached_property
    def images(self) -> torch.Tensor:
        return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))

    # 3DPW: two sequences, a_good_00 and b_bad_00 (its copy: probes spoil this one) -------------

    @cached_property
    def pw3d(self) -> Path:
        return fixture(self.work, "pw3d", self._write_pw3d)

    def _write_pw3d(self, root: Path) -> None:
        from kinediff.data import convert_3dpw
        from kinediff.testing import write_3dpw_raw

        write_3dpw_raw(root, self.body, frames=3, sequence=GOOD_SEQ)
        seq_dir = root / "sequenceFiles" / "test"
        data = pickle.loads((seq_dir / f"{GOOD_SEQ}.pkl").read_bytes(), encoding="latin1")
        data["sequence"] = BAD_SEQ
        (seq_dir / f"{BAD_SEQ}.pkl").write_bytes(pickle.dumps(data, protocol=2))
        shutil.copytree(root / "imageFiles" / GOOD_SEQ, root / "imageFiles" / BAD_SEQ)
        convert_3dpw(root, root, "test", body=self.body)
        self.spin_npz_for(root)

    def spin_npz_for(self, root: Path) -> Path:
        from kinediff.data import PW3D

        records = PW3D(root, "test", body=self.body, **SMALL).records
        boxes = [r.box for r in records]
        path = root / "spin_test.npz"
        np.savez(path, imgname=np.array([str(r.image.relative_to(root)) for r in records]),
                 center=np.array([[b[0] + b[2] / 2, b[1] + b[3] / 2] for b in boxes]),
                 scale=np.array([max(b[2], b[3]) * 1.2 / 200 for b in boxes]),
                 pose=np.stack([r.pose for r in records]), shape=np.stack([r.betas for r in records]),
                 gender=np.array(["f"] * len(records)))
        return path

    @cached_property
    def pw3d_records(self) -> list:
        from kinediff.data import PW3D

        return PW3D(self.pw3d, "test", body=self.body, **SMALL).records

    @property
    def bad_pkl_name(self) -> str:
        return f"{BAD_SEQ}.pkl"

    @cached_property
    def h36m(self) -> Path:
        from kinediff.testing import write_h36m

        def write(root: Path) -> None:
            write_h36m(root, self.body)
            for path in sorted((root / "annotations").glob("Human36M_subject9_*.json")):
                text = path.read_text()
                if path.name.endswith("_data.json"):
                    text = text.replace('"subject": 9', '"subject": 11')
                path.with_name(path.name.replace("subject9", "subject11")).write_text(text)
        return fixture(self.work, "h36m", write)

    @cached_property
    def surreal(self) -> Path:
        from kinediff.testing import write_surreal_raw

        return fixture(self.work, "surreal",
                       lambda root: write_surreal_raw(root, self.body, clips=2, frames=2))

    @cached_property
    def coco(self) -> Path:
        from kinediff.testing import write_coco

        return fixture(self.work, "coco", lambda root: write_coco(root, self.body))

    @cached_property
    def up3d(self) -> Path:
        from kinediff.testing import write_up3d

        return fixture(self.work, "up3d", lambda root: write_up3d(root, self.body))

    @cached_property
    def good_image(self) -> Path:
        return self.pw3d / "imageFiles" / GOOD_SEQ / "image_00000.jpg"

    @cached_property
    def synth(self):
        from kinediff.data import SynthBody

        return SynthBody(4, seed=3, body=self.body, image_size=64, mesh_factors=(4, 4, 4), progress=False)

    def unwritable_dir(self, label: str) -> Path:
        """An existing folder nobody can write into (chmod for a user, chattr +i for root)."""
        path = self.fresh(label) / "locked"
        path.mkdir()
        if os.geteuid() != 0:
            path.chmod(0o555)
        else:
            subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        self.unwritable_dirs.append(path)
        try:
            (path / ".probe").write_text("x")
        except OSError:
            return path
        (path / ".probe").unlink()
        raise HarnessError(f"cannot make {path} unwritable here (chmod / chattr +i)")

    def release(self) -> None:
        for path in self.unwritable_dirs:
            if os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
            with contextlib.suppress(OSError):
                path.chmod(0o755)


def fixture(work: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``work/fixtures/<name>``, built by ``build(folder)`` unless it exists: built aside and
    renamed into place, so the zygote's children and this process can share it."""
    final = work / "fixtures" / name
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
    build(tmp)
    try:
        os.rename(tmp, final)
    except OSError:  # another process was first
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def prep(fn: Callable[[], Any]) -> Any:
    """Run a set-up step (fixtures are built on first use: the probe's timer stops meanwhile); its
    failure is the harness's (status "error"), not kinediff's."""
    left = signal.setitimer(signal.ITIMER_REAL, 0)[0]
    try:
        return fn()
    except (HarnessError, ProbeTimeout):
        raise
    except Exception as err:
        raise HarnessError(f"{describe(err)}\n{traceback.format_exc(limit=-4)}") from err
    finally:
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)


# -- data sets: build, iterate every item, judge ---------------------------------------------------

def report_text(ds: Any) -> str:
    parts = []
    with contextlib.suppress(Exception):
        parts.append(str(ds.report()))
    for attr in ("bad_records", "skipped"):
        value = getattr(ds, attr, None)
        if value:
            parts.append(str(value))
    return "\n".join(parts)


def dataset_verdict(build: Callable[[], Any], names: Names, is_bad: Callable[[Any], bool],
                    report_names: Names | None = None) -> tuple[str, str]:
    """Build a data set and read every item. ``clear``: an error naming ``names``, or every bad
    record (``is_bad``) left out, the report naming ``report_names`` (default ``names``) and the
    rest loading; ``silent``: a bad record used, a non-finite sample, a bad record left out without
    a report; ``unclear``: another error, a crash while reading items."""
    try:
        ds = build()
    except Exception as err:
        return verdict_error(err, names)
    records = list(getattr(ds, "records", []))
    bad = {i for i, r in enumerate(records) if is_bad(r)}
    used, nonfinite, seen = set(), set(), set()
    for i in range(len(ds)):
        try:
            sample = ds[i]
        except Exception as err:
            if isinstance(err, ProbeTimeout):
                raise
            return "unclear", f"crash reading item {i} of {len(ds)}: {describe(err)}"
        j = int(sample.get("index", i)) if isinstance(sample, dict) else i
        seen.add(j)
        if j in bad:
            used.add(j)
        if not all_finite(sample):
            nonfinite.add(j)
    if used:
        finite = "a NON-FINITE sample" if used & nonfinite else "a finite but wrong sample"
        return "silent", f"bad record used: {finite} (records {sorted(used)} of {len(records)})"
    if nonfinite:
        return "silent", f"non-finite samples from records {sorted(nonfinite)}"
    if not seen:
        return "unclear", "no item could be read"
    report = report_text(ds)
    missing = missing_names(report, report_names if report_names is not None else names)
    how = "skipped while reading" if bad else "left out when built"
    if not report.strip():
        return "silent", f"bad record {how} without a report"
    if missing:
        return "unclear", f"bad record {how}; the report does not name {', '.join(missing)}: {short(report)}"
    return "clear", f"bad record {how} and reported: {short(report)}"


def load_pkl(path: Path) -> Any:
    return pickle.loads(path.read_bytes(), encoding="latin1")


def save_pkl(path: Path, data: Any) -> None:
    path.write_bytes(pickle.dumps(data, protocol=2))


# -- data: records built directly (Record + PersonDataset) -----------------------------------------

def record_case(field_name: str, value: Any, names: Names) -> Callable[[Ctx], tuple[str, str]]:
    def run(ctx: Ctx) -> tuple[str, str]:
        from kinediff.data.base import PersonDataset

        good = prep(lambda: ctx.pw3d_records[:3])
        folder = prep(lambda: ctx.fresh("record"))
        bad_image = folder / "bad_record.jpg"
        prep(lambda: shutil.copy(good[1].image, bad_image))

        def build():
            bad = replace(good[1], image=bad_image, source="probe record 1", **{field_name: value})
            return PersonDataset([good[0], bad, good[2]], ctx.body, **SMALL)

        return dataset_verdict(build, names, lambda r: r.image == bad_image)
    return run


def _record_probes() -> None:
    base = np.zeros(72)
    cases = {
        "pose": {"nan": _nan_at(base, 5), "inf": _inf_at(base, 5), "2x72": np.zeros((2, 72)),
                 "70_values": np.zeros(70), "str": "pose"},
        "betas": {"nan": _nan_at(np.zeros(10), 3), "inf": _inf_at(np.zeros(10), 3), "5_values": np.zeros(5),
                  "str": "betas"},
        "transl": {"nan": np.array([0.0, NAN, 4.0]), "inf": np.array([0.0, 0.0, INF]),
                   "2_values": np.array([0.0, 4.0])},
        "K": {"nan": "K_nan", "inf": "K_inf", "zero_focal": "K_zero", "negative_focal": "K_neg",
              "2x3": np.eye(3)[:2], "str": "K"},
        "box": {"nan": (10.0, 10.0, NAN, 40.0), "inf": (10.0, 10.0, INF, 40.0),
                "zero_width": (10.0, 10.0, 0.0, 40.0), "negative_height": (10.0, 10.0, 30.0, -40.0),
                "3_values": (10.0, 10.0, 30.0), "str": "box"},
        "joints3d": {"nan": "J3_nan", "inf": "J3_inf"},
        "keypoints2d": {"nan": "K2_nan", "inf": "K2_inf"},
        "gender": {"unknown": "x", "none": None, "int": 3},
    }
    keys = {"pose": ("pose",), "betas": ("betas", "shape"), "transl": ("transl", "trans"),
            "K": ("K", "intrinsics", "focal"), "box": ("box", "bbox"), "joints3d": ("joints3d",),
            "keypoints2d": ("keypoints2d", "keypoints"), "gender": ("gender",)}
    for key, faults in cases.items():
        for fault, value in faults.items():
            probe("data", "record", f"{key}:{fault}", _record_value(key, value, keys[key]))


def _nan_at(a: np.ndarray, i: int) -> np.ndarray:
    a = a.copy()
    a.flat[i] = NAN
    return a


def _inf_at(a: np.ndarray, i: int) -> np.ndarray:
    a = a.copy()
    a.flat[i] = INF
    return a


def _record_value(key: str, value: Any, names: tuple) -> Callable[[Ctx], tuple[str, str]]:
    def run(ctx: Ctx) -> tuple[str, str]:
        good = prep(lambda: ctx.pw3d_records[1])
        v = value
        if isinstance(v, str) and v.startswith("K_"):
            v = np.array(good.K, dtype=np.float64)
            fault = value[2:]
            if fault == "nan":
                v[0, 2] = NAN
            elif fault == "inf":
                v[0, 0] = INF
            else:
                v[0, 0] = v[1, 1] = 0.0 if fault == "zero" else -abs(v[0, 0])
        elif isinstance(v, str) and v.startswith("J3_"):  # (17, 4): camera-frame metres, valid
            v = np.concatenate([np.full((17, 2), 0.1), np.full((17, 1), 4.0), np.ones((17, 1))], 1)
            v[3, 0] = NAN if value.endswith("nan") else INF
        elif isinstance(v, str) and v.startswith("K2_"):  # (17, 3): full-image pixels, visible
            v = np.concatenate([np.full((17, 2), 50.0), np.ones((17, 1))], 1)
            v[3, 0] = NAN if value.endswith("nan") else INF
        elif key == "pose" and isinstance(v, np.ndarray) and v.shape == (72,):
            v = np.where(np.isfinite(v), np.asarray(good.pose), v)
        return record_case(key, v, [names])(ctx)
    return run


# -- data: 3DPW raw sequence files -----------------------------------------------------------------

def pw3d_raw_case(mutate: Callable[[dict], None], names_extra: Names, per_record: bool = True,
                  raw_bytes: Callable[[bytes], bytes] | None = None,
                  report_names: Names | None = None) -> Callable[[Ctx], tuple[str, str]]:
    """The b_bad_00 sequence file spoilt by ``mutate`` (its dict) or ``raw_bytes`` (its bytes);
    bad records: its frame 1 (``per_record``) or all of its frames."""
    def run(ctx: Ctx) -> tuple[str, str]:
        from kinediff.data import PW3D

        root = prep(lambda: ctx.copy_of(ctx.pw3d, "pw3d"))
        path = root / "sequenceFiles" / "test" / ctx.bad_pkl_name
        if raw_bytes is not None:
            prep(lambda: path.write_bytes(raw_bytes(path.read_bytes())))
        else:
            data = prep(lambda: load_pkl(path))
            prep(lambda: mutate(data))
            prep(lambda: save_pkl(path, data))
        bad_image = root / "imageFiles" / BAD_SEQ / "image_00002.jpg"

        def is_bad(r) -> bool:
            return r.image == bad_image if per_record else r.image.parent.name == BAD_SEQ

        names = [Path(ctx.bad_pkl_name), *names_extra]
        return dataset_verdict(lambda: PW3D(root, "test", body=ctx.body, **SMALL), names, is_bad,
                               report_names)
    return run


def _set(path: tuple, value: Any) -> Callable[[dict], None]:
    """A mutation: data[path[0]][path[1]]... = value (a callable value gets the old one)."""
    def mutate(data: Any) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        old = target[path[-1]]
        target[path[-1]] = value(old) if callable(value) else value
    return mutate


def _delete(key: str) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        del data[key]
    return mutate


def _with(a: Any, index: tuple, value: float) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a[index] = value
    return a


def _pw3d_raw_probes() -> None:
    P = ("pose",)  # "poses" in the file; "pose" covers both
    cases: list[tuple[str, Callable, Names, bool]] = [
        ("poses:nan", _set(("poses", 0), lambda a: _with(a, (1, 5), NAN)), [P], True),
        ("poses:inf", _set(("poses", 0), lambda a: _with(a, (1, 5), INF)), [P], True),
        ("poses:2x72_per_frame", _set(("poses", 0), lambda a: np.stack([a, a], 1)), [P], False),
        ("poses:70_values", _set(("poses", 0), lambda a: np.asarray(a)[:, :70]), [P], False),
        ("poses:str", _set(("poses", 0), "poses"), [P], False),
        ("poses:fewer_frames", _set(("poses", 0), lambda a: np.asarray(a)[:2]), [P], False),
        ("betas:nan", _set(("betas", 0), lambda a: _with(a, (3,), NAN)), [("betas",)], False),
        ("betas:inf", _set(("betas", 0), lambda a: _with(a, (3,), INF)), [("betas",)], False),
        ("betas:5_values", _set(("betas", 0), lambda a: np.asarray(a)[:5]), [("betas",)], False),
        ("betas:2x300", _set(("betas", 0), lambda a: np.stack([a, a])), [("betas",)], False),
        ("betas:str", _set(("betas", 0), "betas"), [("betas",)], False),
        ("trans:nan", _set(("trans", 0), lambda a: _with(a, (1, 0), NAN)), [("trans",)], True),
        ("trans:inf", _set(("trans", 0), lambda a: _with(a, (1, 2), INF)), [("trans",)], True),
        ("trans:2_values", _set(("trans", 0), lambda a: np.asarray(a)[:, :2]), [("trans",)], False),
        ("trans:fewer_frames", _set(("trans", 0), lambda a: np.asarray(a)[:2]), [("trans",)], False),
        ("cam_intrinsics:nan", _set(("cam_intrinsics",), lambda a: _with(a, (0, 2), NAN)),
         [("cam_intrinsics",)], False),
        ("cam_intrinsics:inf", _set(("cam_intrinsics",), lambda a: _with(a, (0, 0), INF)),
         [("cam_intrinsics",)], False),
        ("cam_intrinsics:zero_focal", _set(("cam_intrinsics",), lambda a: _with(a, (0, 0), 0.0)),
         [("cam_intrinsics", "focal")], False),
        ("cam_intrinsics:negative_focal", _set(("cam_intrinsics",), lambda a: _with(a, (1, 1), -150.0)),
         [("cam_intrinsics", "focal")], False),
        ("cam_intrinsics:2x3", _set(("cam_intrinsics",), lambda a: np.asarray(a)[:2]),
         [("cam_intrinsics",)], False),
        ("cam_intrinsics:str", _set(("cam_intrinsics",), "K"), [("cam_intrinsics",)], False),
        ("cam_poses:nan", _set(("cam_poses",), lambda a: _with(a, (1, 0, 3), NAN)), [("cam_poses",)], True),
        ("cam_poses:inf", _set(("cam_poses",), lambda a: _with(a, (1, 2, 3), INF)), [("cam_poses",)], True),
        ("cam_poses:scaled_rotation", _set(("cam_poses",), lambda a: _scale_rotation(a, 1, 2.0)),
         [("cam_poses", "rotation")], True),
        ("cam_poses:zero_rotation", _set(("cam_poses",), lambda a: _scale_rotation(a, 1, 0.0)),
         [("cam_poses", "rotation")], True),
        ("cam_poses:fewer_frames", _set(("cam_poses",), lambda a: np.asarray(a)[:2]),
         [("cam_poses",)], False),
        ("poses2d:nan", _set(("poses2d", 0), lambda a: _with(a, (1, 0, 3), NAN)), [("poses2d",)], True),
        ("poses2d:inf", _set(("poses2d", 0), lambda a: _with(a, (1, 1, 3), INF)), [("poses2d",)], True),
        ("poses2d:fewer_frames", _set(("poses2d", 0), lambda a: np.asarray(a)[:2]), [("poses2d",)], False),
        ("genders:unknown", _set(("genders", 0), "x"), [("gender",)], False),
        ("genders:none", _set(("genders", 0), None), [("gender",)], False),
        ("genders:int", _set(("genders", 0), 3), [("gender",)], False),
        ("campose_valid:longer", _set(("campose_valid", 0), np.ones(5, dtype=np.int64)),
         [("campose_valid",)], False),
        ("img_frame_ids:shorter", _set(("img_frame_ids",), lambda a: np.asarray(a)[:2]),
         [("img_frame_ids",)], False),
        ("img_frame_ids:nan", _set(("img_frame_ids",), np.array([0.0, NAN, 4.0])),
         [("img_frame_ids",)], True),
        ("sequence:missing", _delete("sequence"), [("sequence",)], False),
        ("cam_poses:missing", _delete("cam_poses"), [("cam_poses",)], False),
    ]
    for name, mutate, names, per_record in cases:
        probe("data", "pw3d-raw", name, pw3d_raw_case(mutate, names, per_record))


def _scale_rotation(cams: Any, frame: int, factor: float) -> np.ndarray:
    cams = np.array(cams, dtype=np.float64)
    cams[frame, :3, :3] *= factor
    return cams


# -- data: COCO-style JSON (3DPW_<split>.json) -----------------------------------------------------

def json_case(root_of: Callable[[Ctx], Path], relpath: str, mutate: Callable[[Any], None] | None,
              build: Callable[[Ctx, Path], Any], names_extra: Names,
              is_bad_of: Callable[[Path], Callable[[Any], bool]],
              raw_text: Callable[[bytes], bytes] | None = None,
              report_names: Names | None = None) -> Callable[[Ctx], tuple[str, str]]:
    """A copy of a JSON fixture with ``relpath`` spoilt by ``mutate`` (parsed) or ``raw_text``."""
    def run(ctx: Ctx) -> tuple[str, str]:
        root = prep(lambda: ctx.copy_of(root_of(ctx), Path(relpath).stem))
        path = root / relpath
        if raw_text is not None:
            prep(lambda: path.write_bytes(raw_text(path.read_bytes())))
        else:
            data = prep(lambda: json.loads(path.read_text()))
            prep(lambda: mutate(data))
            prep(lambda: path.write_text(json.dumps(data)))
        names = [Path(Path(relpath).name), *names_extra]
        return dataset_verdict(lambda: build(ctx, root), names, is_bad_of(root), report_names)
    return run


def _pw3d_coco_annotation(data: dict) -> tuple[dict, dict]:
    """The annotation and image of b_bad_00's frame 2 in 3DPW_test.json."""
    for im in data["images"]:
        if im.get("sequence") == BAD_SEQ and im.get("file_name") == "image_00002.jpg":
            ann = next(a for a in data["annotations"] if a["image_id"] == im["id"])
            return ann, im
    raise HarnessError("3DPW_test.json has no b_bad_00 frame 2")


def _ann(path: tuple, value: Any, on_image: bool = False) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        ann, im = _pw3d_coco_annotation(data)
        _set(path, value)(im if on_image else ann)
    return mutate


def _pw3d_coco_probes() -> None:
    def build(ctx: Ctx, root: Path):
        from kinediff.data import PW3D

        return PW3D(root, "test", format="coco", body=ctx.body, **SMALL)

    def is_bad_of(root: Path):
        bad = root / "imageFiles" / BAD_SEQ / "image_00002.jpg"
        return lambda r: r.image == bad

    pose = ("smpl_param", "pose")
    shape = ("smpl_param", "shape")
    trans = ("smpl_param", "trans")
    focal = ("cam_param", "focal")
    princpt = ("cam_param", "princpt")
    cases: list[tuple[str, Callable, Names]] = [
        ("pose:nan", _ann(pose, lambda a: _with(a, (5,), NAN).tolist()), [("pose",)]),
        ("pose:inf", _ann(pose, lambda a: _with(a, (5,), INF).tolist()), [("pose",)]),
        ("pose:2x72", _ann(pose, lambda a: [a, a]), [("pose",)]),
        ("pose:70_values", _ann(pose, lambda a: a[:70]), [("pose",)]),
        ("pose:str", _ann(pose, "pose"), [("pose",)]),
        ("shape:nan", _ann(shape, lambda a: _with(a, (3,), NAN).tolist()), [("shape", "betas")]),
        ("shape:inf", _ann(shape, lambda a: _with(a, (3,), INF).tolist()), [("shape", "betas")]),
        ("shape:5_values", _ann(shape, lambda a: a[:5]), [("shape", "betas")]),
        ("shape:str", _ann(shape, "shape"), [("shape", "betas")]),
        ("trans:nan", _ann(trans, [0.0, NAN, 4.0]), [("trans",)]),
        ("trans:inf", _ann(trans, [0.0, 0.0, INF]), [("trans",)]),
        ("trans:2_values", _ann(trans, [0.0, 4.0]), [("trans",)]),
        ("gender:unknown", _ann(("smpl_param", "gender"), "x"), [("gender",)]),
        ("gender:int", _ann(("smpl_param", "gender"), 7), [("gender",)]),
        ("gender:empty", _ann(("smpl_param", "gender"), ""), [("gender",)]),
        ("focal:nan", _ann(focal, [NAN, 150.0], True), [("focal",)]),
        ("focal:inf", _ann(focal, [INF, 150.0], True), [("focal",)]),
        ("focal:zero", _ann(focal, [0.0, 0.0], True), [("focal",)]),
        ("focal:negative", _ann(focal, [-150.0, -150.0], True), [("focal",)]),
        ("focal:scalar", _ann(focal, 150.0, True), [("focal",)]),
        ("focal:3_values", _ann(focal, [150.0, 150.0, 150.0], True), [("focal",)]),
        ("focal:str", _ann(focal, "ab", True), [("focal",)]),
        ("princpt:nan", _ann(princpt, [NAN, 60.0], True), [("princpt",)]),
        ("princpt:inf", _ann(princpt, [80.0, INF], True), [("princpt",)]),
        ("princpt:scalar", _ann(princpt, 80.0, True), [("princpt",)]),
        ("bbox:nan", _ann(("bbox",), [10.0, 10.0, NAN, 60.0]), [("bbox", "box")]),
        ("bbox:inf", _ann(("bbox",), [10.0, 10.0, INF, 60.0]), [("bbox", "box")]),
        ("bbox:zero_width", _ann(("bbox",), [10.0, 10.0, 0.0, 60.0]), [("bbox", "box")]),
        ("bbox:negative_height", _ann(("bbox",), [10.0, 10.0, 40.0, -60.0]), [("bbox", "box")]),
        ("bbox:3_values", _ann(("bbox",), [10.0, 10.0, 40.0]), [("bbox", "box")]),
        ("bbox:str", _ann(("bbox",), "bbox"), [("bbox", "box")]),
        ("joint_cam:nan", _add_joint_cam(NAN), [("joint_cam",)]),
        ("joint_cam:inf", _add_joint_cam(INF), [("joint_cam",)]),
        ("keypoints:nan", _add_keypoints(NAN), [("keypoints",)]),
        ("image_id:str", _ann(("image_id",), "abc"), [("image_id",)]),
    ]
    for name, mutate, names in cases:
        probe("data", "pw3d-coco", name,
              json_case(lambda c: c.pw3d, "3DPW_test.json", mutate, build, names, is_bad_of))


def _add_joint_cam(value: float) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        ann, _ = _pw3d_coco_annotation(data)
        joints = np.tile([[0.0, 0.0, 4000.0]], (17, 1))
        joints[2, 1] = value
        ann["joint_cam"] = joints.tolist()
    return mutate


def _add_keypoints(value: float) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        ann, _ = _pw3d_coco_annotation(data)
        kp = np.tile([[60.0, 50.0, 1.0]], (17, 1))
        kp[4, 0] = value
        ann["keypoints"] = kp.tolist()
    return mutate


# -- data: Human3.6M (Pose2Mesh per-subject JSON) --------------------------------------------------

def _h36m_build(ctx: Ctx, root: Path):
    from kinediff.data import Human36M

    # protocol 1: every camera (1 and 4), so a spoilt camera leaves the other's records
    return Human36M(root, "test", protocol=1, subjects=(9,), body=ctx.body, **SMALL)


def _h36m_probes() -> None:
    ann = "annotations/Human36M_subject9_{}.json"

    def camera_bad(root: Path):
        return lambda r: "_ca_04" in r.image.parent.name

    def frame_bad(root: Path):
        return lambda r: r.image.name == "frame_000005.jpg"

    def one_bad(root: Path):
        return lambda r: "_ca_04" in r.image.parent.name and r.image.name == "frame_000005.jpg"

    def bbox(value):
        def mutate(data: dict) -> None:
            for im, a in zip(data["images"], data["annotations"], strict=True):
                if im["cam_idx"] == 4 and im["frame_idx"] == 5:
                    a["bbox"] = value
        return mutate

    cam = lambda key, value: _set(("4", key), value)  # noqa: E731
    smpl = lambda key, value: _set(("2", "1", "5", key), value)  # noqa: E731
    rot = lambda f: (lambda a: (np.asarray(a) * f).tolist())  # noqa: E731
    cases: list[tuple[str, str, Callable, Names, Callable]] = [
        ("camera.R:nan", "camera", cam("R", lambda a: _with(a, (0, 1), NAN).tolist()), [("R",)], camera_bad),
        ("camera.R:zero", "camera", cam("R", rot(0.0)), [("R", "rotation")], camera_bad),
        ("camera.R:scaled", "camera", cam("R", rot(2.0)), [("R", "rotation")], camera_bad),
        ("camera.R:2x3", "camera", cam("R", lambda a: a[:2]), [("R",)], camera_bad),
        ("camera.t:nan", "camera", cam("t", lambda a: _with(a, (2,), NAN).tolist()), [("t",)], camera_bad),
        ("camera.t:str", "camera", cam("t", "t"), [("t",)], camera_bad),
        ("camera.f:nan", "camera", cam("f", [NAN, 150.0]), [("f", "focal")], camera_bad),
        ("camera.f:zero", "camera", cam("f", [0.0, 0.0]), [("f", "focal")], camera_bad),
        ("camera.f:negative", "camera", cam("f", [-150.0, -150.0]), [("f", "focal")], camera_bad),
        ("camera.f:scalar", "camera", cam("f", 150.0), [("f", "focal")], camera_bad),
        ("camera.c:nan", "camera", cam("c", [NAN, 60.0]), [("c", "principal")], camera_bad),
        ("camera.c:missing", "camera", _delete_in(("4",), "c"), [("c",)], camera_bad),
        ("camera:not_a_dict", "camera", _set(("4",), [1, 2, 3]), [("camera", "4")], camera_bad),
        ("smpl.pose:nan", "smpl_param", smpl("pose", lambda a: _with(a, (5,), NAN).tolist()),
         [("pose",)], frame_bad),
        ("smpl.pose:inf", "smpl_param", smpl("pose", lambda a: _with(a, (5,), INF).tolist()),
         [("pose",)], frame_bad),
        ("smpl.pose:2x72", "smpl_param", smpl("pose", lambda a: [a, a]), [("pose",)], frame_bad),
        ("smpl.shape:nan", "smpl_param", smpl("shape", lambda a: _with(a, (2,), NAN).tolist()),
         [("shape", "betas")], frame_bad),
        ("smpl.shape:5_values", "smpl_param", smpl("shape", lambda a: a[:5]), [("shape", "betas")],
         frame_bad),
        ("smpl.trans:inf", "smpl_param", smpl("trans", [0.0, INF, 0.0]), [("trans",)], frame_bad),
        ("joint_3d:nan", "joint_3d", _set(("2", "1", "5"), lambda a: _with(a, (3, 1), NAN).tolist()),
         [("joint",)], frame_bad),
        ("joint_3d:16_joints", "joint_3d", _set(("2", "1", "5"), lambda a: a[:16]), [("joint",)],
         frame_bad),
        ("bbox:zero_width", "data", bbox([10.0, 10.0, 0.0, 50.0]), [("bbox", "box")], one_bad),
        ("bbox:nan", "data", bbox([10.0, 10.0, NAN, 50.0]), [("bbox", "box")], one_bad),
        ("bbox:negative_height", "data", bbox([10.0, 10.0, 30.0, -50.0]), [("bbox", "box")], one_bad),
        ("bbox:3_values", "data", bbox([10.0, 10.0, 30.0]), [("bbox", "box")], one_bad),
    ]
    for name, which, mutate, names, is_bad in cases:
        probe("data", "h36m", name, json_case(lambda c: c.h36m, ann.format(which), mutate, _h36m_build,
                                               names, is_bad))


def _delete_in(path: tuple, key: str) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        target = data
        for k in path:
            target = target[k]
        del target[key]
    return mutate


# -- data: SURREAL raw clips -----------------------------------------------------------------------

def _surreal_probes() -> None:
    def case(mutate: Callable[[dict], None], names_extra: Names, per_frame: bool,
             target: str = "_info.mat") -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from scipy.io import loadmat, savemat

            from kinediff.data import Surreal

            root = prep(lambda: ctx.copy_of(ctx.surreal, "surreal"))
            folder = root / "val" / "run0" / "01_01"
            info = folder / "01_01_c0002_info.mat"
            if target == "_info.mat":
                mat = prep(lambda: {k: v for k, v in loadmat(str(info)).items() if not k.startswith("__")})
                prep(lambda: mutate(mat))
                prep(lambda: savemat(info, mat, do_compression=True))
            else:
                path = folder / f"01_01_c0002{target}"
                prep(lambda: mutate(path))

            def is_bad(r) -> bool:
                if r.image.name != "01_01_c0002.mp4":
                    return False
                frame = r.extra.get("frame") if isinstance(r.extra, dict) else None
                return not per_frame or frame == 1

            name = Path(f"01_01_c0002{target}") if target != "_info.mat" else Path(info.name)
            return dataset_verdict(lambda: Surreal(root, "val", format="raw", body=ctx.body, **SMALL),
                                   [name, *names_extra], is_bad)
        return run

    def at(key: str, index: tuple, value: float) -> Callable[[dict], None]:
        def mutate(mat: dict) -> None:
            mat[key] = _with(mat[key], index, value).astype(mat[key].dtype)
        return mutate

    def truncate(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])

    def garbage(path: Path) -> None:
        path.write_bytes(b"\x00not a video" * 50)

    cases: list[tuple[str, Callable, Names, bool, str]] = [
        ("pose:nan", at("pose", (5, 1), NAN), [("pose",)], True, "_info.mat"),
        ("pose:inf", at("pose", (5, 1), INF), [("pose",)], True, "_info.mat"),
        ("shape:nan", at("shape", (2, 1), NAN), [("shape", "betas")], True, "_info.mat"),
        ("joints3D:nan", at("joints3D", (0, 0, 1), NAN), [("joints3D",)], True, "_info.mat"),
        ("joints2D:nan", at("joints2D", (0, 3, 1), NAN), [("joints2D",)], True, "_info.mat"),
        ("zrot:nan", at("zrot", (1, 0), NAN), [("zrot",)], True, "_info.mat"),
        ("camLoc:nan", at("camLoc", (0, 0), NAN), [("camLoc",)], False, "_info.mat"),
        ("camLoc:inf", at("camLoc", (2, 0), INF), [("camLoc",)], False, "_info.mat"),
        ("video:truncated", truncate, [], False, ".mp4"),
        ("video:garbage", garbage, [], False, ".mp4"),
        ("segm:truncated", truncate, [], False, "_segm.mat"),
    ]
    for name, mutate, names, per_frame, target in cases:
        probe("data", "surreal-raw", name, case(mutate, names, per_frame, target))


# -- data: SPIN-style npz --------------------------------------------------------------------------

def _spin_probes() -> None:
    def case(mutate: Callable[[dict], None] | None, names_extra: Names, per_row: bool = True,
             raw: Callable[[Path], None] | None = None) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.data import SpinNpz

            root = prep(lambda: ctx.copy_of(ctx.pw3d, "spin"))
            path = root / "spin_test.npz"
            if raw is not None:
                prep(lambda: raw(path))
            else:
                arrays = prep(lambda: dict(np.load(path)))
                prep(lambda: mutate(arrays))
                prep(lambda: np.savez(path, **arrays))
            bad = root / "imageFiles" / BAD_SEQ / "image_00002.jpg"
            return dataset_verdict(lambda: SpinNpz(path, root, body=ctx.body, **SMALL),
                                   [Path("spin_test.npz"), *names_extra],
                                   (lambda r: r.image == bad) if per_row else (lambda r: True))
        return run

    def row(key: str, index: tuple, value: float) -> Callable[[dict], None]:
        def mutate(arrays: dict) -> None:
            arrays[key] = _with(arrays[key], index, value)
        return mutate

    def setkey(key: str, value: Any) -> Callable[[dict], None]:
        def mutate(arrays: dict) -> None:
            arrays[key] = value(arrays[key]) if callable(value) else value
        return mutate

    def gender_x(arrays: dict) -> None:
        g = arrays["gender"].copy()
        g[4] = "x"
        arrays["gender"] = g

    cases: list[tuple[str, Callable | None, Names, bool]] = [
        ("center:nan", row("center", (4, 0), NAN), [("center",)], True),
        ("center:inf", row("center", (4, 1), INF), [("center",)], True),
        ("scale:nan", row("scale", (4,), NAN), [("scale",)], True),
        ("scale:zero", row("scale", (4,), 0.0), [("scale",)], True),
        ("scale:negative", row("scale", (4,), -0.5), [("scale",)], True),
        ("scale:inf", row("scale", (4,), INF), [("scale",)], True),
        ("pose:nan", row("pose", (4, 5), NAN), [("pose",)], True),
        ("pose:inf", row("pose", (4, 5), INF), [("pose",)], True),
        ("shape:nan", row("shape", (4, 2), NAN), [("shape", "betas")], True),
        ("pose:70_values", setkey("pose", lambda a: a[:, :70]), [("pose",)], False),
        ("gender:unknown", gender_x, [("gender",)], True),
        ("imgname:shorter", setkey("imgname", lambda a: a[:4]), [("imgname",)], False),
    ]
    for name, mutate, names, per_row in cases:
        probe("data", "spin-npz", name, case(mutate, names, per_row))

    def truncate(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    def npy_instead(path: Path) -> None:
        with open(path, "wb") as fh:
            np.save(fh, np.zeros((6, 72)))

    def object_member(path: Path) -> None:
        arrays = dict(np.load(path))
        arrays["pose"] = np.array([np.zeros(72)] * 6 + [None], dtype=object)[:6]
        np.savez(path, **arrays)

    files: list[tuple[str, Callable[[Path], None]]] = [
        ("truncated", truncate), ("empty", lambda p: p.write_bytes(b"")),
        ("npy_not_npz", npy_instead), ("text", lambda p: p.write_text("imgname,center\n")),
        ("object_array", object_member),
    ]
    for name, raw in files:
        probe("data", "spin-npz", f"file:{name}", case(None, [], False, raw))


# -- data: COCO raw (keypoints + NeuralAnnot / EFT fits) -------------------------------------------

def _coco_probes() -> None:
    def case(relpath: str, smpl: str | None, mutate: Callable[[Any], None], names: Names,
             report_names: Names | None = None) -> Callable[[Ctx], tuple[str, str]]:
        def build(ctx: Ctx, root: Path):
            from kinediff.data import COCO

            return COCO(root, "train", smpl=smpl, body=ctx.body, **SMALL)

        def is_bad_of(root: Path):
            return lambda r: isinstance(r.extra, dict) and r.extra.get("ann_id") == 1001
        return json_case(lambda c: c.coco, relpath, mutate, build, names, is_bad_of,
                         report_names=report_names)

    kp = "annotations/person_keypoints_train2017.json"
    na = "annotations/MSCOCO_train_SMPL_NeuralAnnot.json"
    eft = "eft_fit/COCO2014-All-ver01.json"

    def ann(key: str, value: Any) -> Callable[[dict], None]:
        def mutate(data: dict) -> None:
            a = next(a for a in data["annotations"] if a["id"] == 1001)
            a[key] = value(a[key]) if callable(value) else value
        return mutate

    def fit(path: tuple, value: Any) -> Callable[[dict], None]:
        return _set(("1001", *path), value)

    def eft_fit(key: str, value: Any) -> Callable[[dict], None]:
        def mutate(data: dict) -> None:
            entry = next(e for e in data["data"] if e["annotId"] == 1001)
            entry[key] = value(entry[key]) if callable(value) else value
        return mutate

    cases: list[tuple[str, str, str | None, Callable, Names, Names | None]] = [
        ("keypoints:nan", kp, None, ann("keypoints", lambda a: _with(a, (15,), NAN).tolist()),
         [("keypoints",)], None),
        ("keypoints:inf", kp, None, ann("keypoints", lambda a: _with(a, (16,), INF).tolist()),
         [("keypoints",)], None),
        ("bbox:nan", kp, None, ann("bbox", lambda a: _with(a, (2,), NAN).tolist()), [("bbox", "box")], None),
        ("bbox:inf", kp, None, ann("bbox", lambda a: _with(a, (3,), INF).tolist()), [("bbox", "box")], None),
        # COCO's documented filter: an empty box is skipped, counted and reported
        ("bbox:zero_width", kp, None, ann("bbox", lambda a: _with(a, (2,), 0.0).tolist()),
         [("bbox", "box")], [("box",)]),
        ("neuralannot.pose:nan", na, "neuralannot",
         fit(("smpl_param", "pose"), lambda a: _with(a, (5,), NAN).tolist()), [("pose",)], None),
        ("neuralannot.shape:nan", na, "neuralannot",
         fit(("smpl_param", "shape"), lambda a: _with(a, (2,), NAN).tolist()), [("shape", "betas")], None),
        ("neuralannot.trans:inf", na, "neuralannot", fit(("smpl_param", "trans"), [0.0, 0.0, INF]),
         [("trans",)], None),
        ("neuralannot.focal:nan", na, "neuralannot", fit(("cam_param", "focal"), [NAN, 150.0]),
         [("focal",)], None),
        ("neuralannot.focal:zero", na, "neuralannot", fit(("cam_param", "focal"), [0.0, 0.0]),
         [("focal",)], None),
        ("neuralannot.focal:negative", na, "neuralannot", fit(("cam_param", "focal"), [-150.0, -150.0]),
         [("focal",)], None),
        ("neuralannot.princpt:nan", na, "neuralannot", fit(("cam_param", "princpt"), [NAN, 50.0]),
         [("princpt",)], None),
        ("eft.parm_cam:nan", eft, "eft", eft_fit("parm_cam", lambda a: _with(a, (0,), NAN).tolist()),
         [("parm_cam",)], None),
        ("eft.parm_cam:inf_translation", eft, "eft",
         eft_fit("parm_cam", lambda a: _with(a, (1,), INF).tolist()),
         [("parm_cam",)], None),
        ("eft.bbox_scale:nan", eft, "eft", eft_fit("bbox_scale", NAN), [("bbox_scale",)], None),
        ("eft.bbox_center:inf", eft, "eft", eft_fit("bbox_center", lambda a: [a[0], INF]),
         [("bbox_center",)], None),
        ("eft.parm_shape:nan", eft, "eft", eft_fit("parm_shape", lambda a: _with(a, (1,), NAN).tolist()),
         [("parm_shape", "shape")], None),
        ("eft.parm_pose:nan", eft, "eft",
         eft_fit("parm_pose", lambda a: _with(a, (3, 0, 0), NAN).tolist()), [("parm_pose",)], None),
    ]
    for name, rel, smpl, mutate, names, report in cases:
        probe("data", "coco", name, case(rel, smpl, mutate, names, report))


# -- data: UP-3D raw -------------------------------------------------------------------------------

def _up3d_probes() -> None:
    def case(mutate: Callable[[dict], None] | None, names_extra: Names, target: str = "_body.pkl",
             raw: Callable[[Path], None] | None = None) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.body.smpl_io import load_smpl_pickle
            from kinediff.data import UP3D

            root = prep(lambda: ctx.copy_of(ctx.up3d, "up3d"))
            path = root / f"00001{target}"
            if raw is not None:
                prep(lambda: raw(path))
            else:
                data = prep(lambda: {k: (np.asarray(v) if isinstance(v, np.ndarray) else v)
                                     for k, v in load_smpl_pickle(path).items()})
                prep(lambda: mutate(data))
                prep(lambda: save_pkl(path, data))
            bad = root / "00001_image.png"
            return dataset_verdict(lambda: UP3D(root, "trainval", body=ctx.body, **SMALL),
                                   [Path(path.name), *names_extra], lambda r: r.image == bad)
        return run

    def at(key: str, index: tuple, value: float) -> Callable[[dict], None]:
        def mutate(data: dict) -> None:
            data[key] = _with(data[key], index, value)
        return mutate

    cases: list[tuple[str, Callable, Names]] = [
        ("pose:nan", at("pose", (5,), NAN), [("pose",)]),
        ("pose:inf", at("pose", (5,), INF), [("pose",)]),
        ("betas:nan", at("betas", (2,), NAN), [("betas",)]),
        ("trans:inf", at("trans", (1,), INF), [("trans",)]),
        ("rt:nan", at("rt", (0,), NAN), [("rt",)]),
        ("t:nan", at("t", (2,), NAN), [("t",)]),
        ("f:nan", lambda d: d.__setitem__("f", np.array([NAN])), [("f",)]),
        ("f:inf", lambda d: d.__setitem__("f", np.array([INF])), [("f",)]),
    ]
    for name, mutate, names in cases:
        probe("data", "up3d", name, case(mutate, names))

    def joints_nan(path: Path) -> None:
        a = np.load(path)
        a = a.astype(np.float64)
        a[0, 3] = NAN
        np.save(path, a)

    def truncate(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    raws: list[tuple[str, str, Callable[[Path], None], Names]] = [
        ("joints:nan", "_joints.npy", joints_nan, [("joints", "keypoints")]),
        ("joints:truncated", "_joints.npy", truncate, []),
        ("joints:text", "_joints.npy", lambda p: p.write_text("1 2 3"), []),
        ("body.pkl:truncated", "_body.pkl", truncate, []),
        ("body.pkl:empty", "_body.pkl", lambda p: p.write_bytes(b""), []),
        ("crop_info:nan", "_fit_crop_info.txt", lambda p: p.write_text("nan 160 0 120 0 160"), []),
    ]
    for name, target, raw, names in raws:
        probe("data", "up3d", name, case(None, names, target, raw))


# -- data: images ----------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A PNG of a few hundred bytes whose header claims width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + \
        _png_chunk(b"IEND", b"")


IMAGE_FAULTS: dict[str, Callable[[bytes], bytes | None]] = {
    "garbage": lambda b: b"\x13\x37 not an image " * 40,
    "empty": lambda b: b"",
    "truncated_jpeg": lambda b: b[: len(b) // 2],
    "header_only_jpeg": lambda b: b[:20],
    "decompression_bomb_png": lambda b: bomb_png(),
    "text": lambda b: b"hello, I am a text file\n",
    "directory": lambda b: None,
}


def write_image_fault(path: Path, fault: str) -> None:
    data = path.read_bytes() if path.is_file() else b""
    out = IMAGE_FAULTS[fault](data)
    path.unlink(missing_ok=True)
    if out is None:
        path.mkdir()
    else:
        path.write_bytes(out)


def _image_probes() -> None:
    for fault in IMAGE_FAULTS:
        def in_loader(ctx: Ctx, fault: str = fault) -> tuple[str, str]:
            from kinediff.data import PW3D

            root = prep(lambda: ctx.copy_of(ctx.pw3d, "images"))
            bad = root / "imageFiles" / BAD_SEQ / "image_00002.jpg"
            prep(lambda: write_image_fault(bad, fault))
            return dataset_verdict(lambda: PW3D(root, "test", body=ctx.body, **SMALL),
                                   [(BAD_SEQ,), ("image_00002",)], lambda r: r.image == bad)

        def direct(ctx: Ctx, fault: str = fault) -> tuple[str, str]:
            from kinediff.core.images import read_image

            path = prep(lambda: ctx.fresh("image") / "photo.jpg")
            prep(lambda: shutil.copy(ctx.good_image, path))
            prep(lambda: write_image_fault(path, fault))
            return refusal(lambda: read_image(path), [Path("photo.jpg")])

        probe("data", "images-in-loader", fault, in_loader)
        probe("data", "read_image", fault, direct)


# -- data: whole files (pickles, JSON) -------------------------------------------------------------

def _forbidden_global(b: bytes) -> bytes:
    return b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."


def _file_probes() -> None:
    pkl_faults: dict[str, Callable[[bytes], bytes]] = {
        "truncated": lambda b: b[: len(b) // 2],
        "empty": lambda b: b"",
        "text": lambda b: b"sequence,poses\n1,2\n",
        "list_not_dict": lambda b: pickle.dumps([1, 2, 3], protocol=2),
        "forbidden_global": _forbidden_global,
        "pickle_of_string": lambda b: pickle.dumps("not a sequence", protocol=2),
    }
    for name, fault in pkl_faults.items():
        probe("data", "pw3d-raw-file", name, pw3d_raw_case(lambda d: None, [], False, raw_bytes=fault))

    def build_coco(ctx: Ctx, root: Path):
        from kinediff.data import PW3D

        return PW3D(root, "test", format="coco", body=ctx.body, **SMALL)

    json_faults: dict[str, Callable[[bytes], bytes]] = {
        "truncated": lambda b: b[: len(b) // 2],
        "empty": lambda b: b"",
        "not_utf8": lambda b: b"\xff\xfe\x00garbage\x81",
        "list_not_object": lambda b: b"[1, 2, 3]",
        "images_missing": lambda b: json.dumps({"annotations": json.loads(b)["annotations"]}).encode(),
    }
    for name, fault in json_faults.items():
        probe("data", "pw3d-coco-file", name,
              json_case(lambda c: c.pw3d, "3DPW_test.json", None, build_coco, [], lambda r: lambda x: True,
                        raw_text=fault))
    for which in ("camera", "smpl_param", "joint_3d", "data"):
        probe("data", "h36m-file", f"{which}:truncated",
              json_case(lambda c: c.h36m, f"annotations/Human36M_subject9_{which}.json", None, _h36m_build,
                        [], lambda r: lambda x: True, raw_text=lambda b: b[: len(b) // 2]))


# -- data: kinediff's cache files ------------------------------------------------------------------

def _cache_probes() -> None:
    def corrupt_hierarchy(how: str) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.mesh import MeshHierarchy

            cache = prep(lambda: ctx.fresh("hierarchy-cache"))
            prep(lambda: MeshHierarchy.from_body(ctx.body, (4, 4, 4), cache_dir=cache))
            files = prep(lambda: sorted(cache.glob("hierarchy_*.npz")))
            if len(files) != 1:
                raise HarnessError(f"expected one hierarchy cache file, found {files}")
            path = files[0]
            data = path.read_bytes()
            if how == "truncated":
                path.write_bytes(data[: len(data) // 2])
            elif how == "empty":
                path.write_bytes(b"")
            else:  # a valid npz without the expected arrays
                np.savez(path, unrelated=np.zeros(3))
            good = prep(lambda: MeshHierarchy.from_body(ctx.body, (4, 4, 4),
                                                        cache_dir=ctx.fresh("hierarchy-clean")))
            return refusal(lambda: MeshHierarchy.from_body(ctx.body, (4, 4, 4), cache_dir=cache),
                           [Path(path.name)], _rebuilt(good, "selection"))
        return run

    def _rebuilt(good, method: str) -> Callable[[Any], tuple[str, str]]:
        def accept(h) -> tuple[str, str]:
            same = torch.equal(getattr(h, method)(-1).cpu(), getattr(good, method)(-1).cpu())
            return ("ok", "rebuilt the spoilt cache file: same result") if same else \
                ("silent", "read the spoilt cache file into a different hierarchy")
        return accept

    for how in ("truncated", "empty", "missing_arrays"):
        probe("data", "cache", f"hierarchy:{how}", corrupt_hierarchy(how))

    def corrupt_synthetic(how: str) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.body import BodyModel

            cache = prep(lambda: ctx.fresh("synthetic-cache"))
            src = prep(lambda: next(ctx.cache.glob("SMPL_SYNTHETIC_*seed0.pkl")))
            path = cache / src.name
            data = src.read_bytes()
            path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"")

            def accept(body) -> tuple[str, str]:
                same = torch.equal(body.v_template, ctx.body.v_template)
                return ("ok", "rebuilt the spoilt cache file: same body") if same else \
                    ("silent", "a different body from the spoilt cache file")
            return refusal(lambda: BodyModel.synthetic(cache_dir=cache), [Path(src.name)], accept)
        return run

    for how in ("truncated", "empty"):
        probe("data", "cache", f"synthetic_body:{how}", corrupt_synthetic(how), timeout=60)

    def corrupt_synthbody(how: str) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.data import SynthBody

            cache = prep(lambda: ctx.fresh("synthbody-cache"))
            kw = dict(seed=5, body=ctx.body, cache=True, cache_root=cache, progress=False, **SMALL)
            prep(lambda: SynthBody(3, **kw))
            files = sorted(cache.rglob("*.pt"))
            if len(files) != 1:
                raise HarnessError(f"expected one SynthBody cache file, found {files}")
            path = files[0]
            data = path.read_bytes()
            if how == "truncated":
                path.write_bytes(data[: len(data) // 2])
            else:
                torch.save({"unrelated": torch.zeros(3)}, path)

            def accept(ds) -> tuple[str, str]:
                try:
                    ds[0]
                except Exception as err:
                    return "unclear", f"built, then failed reading an item: {describe(err)}"
                return "ok", "rebuilt the spoilt cache file"
            return refusal(lambda: SynthBody(3, **kw), [Path(path.name)], accept)
        return run

    for how in ("truncated", "wrong_content"):
        probe("data", "cache", f"synthbody:{how}", corrupt_synthbody(how))


# -- data: memory bombs (guarded) ------------------------------------------------------------------

def _bomb_probes() -> None:
    def shared_poses(data: dict) -> None:
        row = [0.0] * 72
        block = [row] * 1000
        data["poses"] = [[block] * 100_000]  # 1e5 x 1e3 x 72 floats: ~58 GB once converted

    def shared_frame_ids(data: dict) -> None:
        data["img_frame_ids"] = [[0] * 10_000] * 1_000_000  # 1e10 ints: 80 GB once converted

    probe("data", "memory-bomb", "pw3d_pickle:shared_poses",
          pw3d_raw_case(shared_poses, [("poses",)], False), guarded=True, timeout=10)
    probe("data", "memory-bomb", "pw3d_pickle:shared_frame_ids",
          pw3d_raw_case(shared_frame_ids, [("img_frame_ids",)], False), guarded=True, timeout=10)

    def npz_bomb(ctx: Ctx) -> tuple[str, str]:
        from kinediff.data import SpinNpz

        root = prep(lambda: ctx.copy_of(ctx.pw3d, "spin-bomb"))
        path = root / "spin_test.npz"
        prep(lambda: write_npz_header_bomb(path, "pose", (10**10 // 72, 72)))
        return refusal(lambda: SpinNpz(path, root, body=ctx.body, **SMALL), [Path(path.name)])

    probe("data", "memory-bomb", "spin_npz:header_claims_80GB", npz_bomb, guarded=True, timeout=25)


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    text = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def write_npz_header_bomb(path: Path, key: str, shape: tuple[int, ...]) -> None:
    """Rewrite ``path`` (an npz) with member ``key`` replaced by a header claiming ``shape`` and a
    few bytes of data."""
    import zipfile

    arrays = dict(np.load(path))
    with zipfile.ZipFile(path, "w") as zf:
        for name, value in arrays.items():
            buf = io.BytesIO()
            np.save(buf, value)
            payload = npy_header(shape) + b"\x00" * 64 if name == key else buf.getvalue()
            zf.writestr(f"{name}.npy", payload)


# -- api: PostureHMR.predict -----------------------------------------------------------------------

def _predict_probes() -> None:
    def run(make: Callable[[Ctx], dict], names: Names,
            accept: Callable[[Ctx, dict], tuple[str, str]] | None = None) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            model = prep(lambda: ctx.model)
            kwargs = prep(lambda: make(ctx))

            def call():
                with torch.no_grad():
                    return model.predict(**kwargs)
            return refusal(call, names, (lambda out: accept(ctx, out)) if accept else
                           finite_accept("accepted"))
        return fn

    def uint8_accept(ctx: Ctx, out: dict) -> tuple[str, str]:
        from kinediff import PostureHMR

        with torch.no_grad():
            ref = ctx.model.predict((ctx.images * 255).round().to(torch.uint8).float() / 255)
        same = torch.allclose(out["vertices"], ref["vertices"], atol=1e-4)
        if same and documented(PostureHMR.predict, "uint8"):
            return "ok", "uint8 read as [0, 255] / 255 (documented)"
        if same:
            return "unclear", "uint8 images scaled by 1/255: right, but undocumented"
        return "silent", "uint8 images used as floats in [0, 255]: wrong mesh"

    img = lambda ctx: ctx.images.clone()  # noqa: E731

    def nan_img(ctx: Ctx) -> dict:
        x = img(ctx)
        x[0, 1, 10, 10] = NAN
        return {"images": x}

    def inf_img(ctx: Ctx) -> dict:
        x = img(ctx)
        x[1, 0, 3, 3] = INF
        return {"images": x}

    def mesh2d(value: float | None, n: int | None = None) -> Callable[[Ctx], dict]:
        def make(ctx: Ctx) -> dict:
            count = ctx.model.num_coarse if n is None else n
            m = torch.full((2, count, 2), 32.0)
            if value is not None:
                m[0, 3, 0] = value
            return {"images": img(ctx), "mesh2d": m}
        return make

    probe("api", "predict", "images:uint8",
          run(lambda c: {"images": (c.images * 255).round().to(torch.uint8)}, [("images", "uint8")],
              uint8_accept))
    probe("api", "predict", "images:nan", run(nan_img, [("images",)]))
    probe("api", "predict", "images:inf", run(inf_img, [("images",)]))
    probe("api", "predict", "images:float_0_255", run(lambda c: {"images": c.images * 255}, [("images",)]))
    probe("api", "predict", "mesh2d:nan", run(mesh2d(NAN), [("mesh2d",)]))
    probe("api", "predict", "mesh2d:inf", run(mesh2d(INF), [("mesh2d",)]))
    probe("api", "predict", "mesh2d:wrong_vertex_count", run(mesh2d(None, 50), [("mesh2d",)]))


# -- api: BodyModel --------------------------------------------------------------------------------

def _body_probes() -> None:
    def run(make: Callable[[Ctx], dict], names: Names, accept=None, double: bool = False):
        def fn(ctx: Ctx) -> tuple[str, str]:
            body = prep(lambda: copy.deepcopy(ctx.body).double() if double else ctx.body)
            kwargs = prep(lambda: make(ctx))
            return refusal(lambda: body(**kwargs), names, accept or finite_accept("accepted"))
        return fn

    def mats(fill: Callable[[torch.Tensor], None]) -> Callable[[Ctx], dict]:
        def make(ctx: Ctx) -> dict:
            m = torch.eye(3).expand(1, 24, 3, 3).clone()
            fill(m)
            return {"pose": m}
        return make

    def zero(m):
        m[0, 5] = 0.0

    def scaled(m):
        m[0, 5] *= 2.0

    def reflection(m):
        m[0, 5] = -torch.eye(3)

    def shear(m):
        m[0, 5, 0, 1] = 0.7

    def nan(m):
        m[0, 5, 1, 1] = NAN

    rot = [("pose", "rotation")]
    probe("api", "body", "rotmats:zero", run(mats(zero), rot))
    probe("api", "body", "rotmats:scaled_2x", run(mats(scaled), rot))
    probe("api", "body", "rotmats:reflection", run(mats(reflection), rot))
    probe("api", "body", "rotmats:shear", run(mats(shear), rot))
    probe("api", "body", "rotmats:nan", run(mats(nan), rot))

    def huge(angle: float, dtype=torch.float32) -> Callable[[Ctx], dict]:
        def make(ctx: Ctx) -> dict:
            pose = torch.zeros(1, 24, 3, dtype=dtype)
            pose[0, 4, 0] = angle
            return {"pose": pose}
        return make

    def finite_ok(out) -> tuple[str, str]:
        # an axis-angle of any finite size is a rotation: a finite mesh is right
        if all_finite(out):
            return "ok", "finite output"
        return "silent", "NON-FINITE output for a finite pose"

    for label, angle in (("1e20", 1e20), ("1e30", 1e30), ("3e38", 3e38)):
        probe("api", "body", f"axis_angle:{label}", run(huge(angle), [("pose",)], finite_ok))
    probe("api", "body", "axis_angle:1e300_float64",
          run(huge(1e300, torch.float64), [("pose",)], finite_ok, double=True))

    def betas(make_b: Callable[[], torch.Tensor]) -> Callable[[Ctx], dict]:
        return lambda ctx: {"pose": torch.zeros(1, 24, 3), "betas": make_b()}

    probe("api", "body", "betas:nan",
          run(betas(lambda: torch.tensor([[0.0, NAN] + [0.0] * 8])), [("betas",)]))
    probe("api", "body", "betas:11_values", run(betas(lambda: torch.zeros(1, 11)), [("betas",)]))
    probe("api", "body", "transl:inf",
          run(lambda c: {"pose": torch.zeros(1, 24, 3), "transl": torch.tensor([[0.0, INF, 0.0]])},
              [("transl",)]))
    probe("api", "body", "pose:numpy", run(lambda c: {"pose": np.zeros((1, 24, 3), np.float32)}, [("pose",)]))


# -- api: rasterizer and trimap loss ---------------------------------------------------------------

SQUARE = torch.tensor([[[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]]])
SQUARE_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])


def _render_probes() -> None:
    from kinediff.render import soft_silhouette

    def sil(verts=None, faces=None, size: Any = 8, sigma: Any = 0.5, names: Names = (),
            accept=None) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            v = SQUARE.clone() if verts is None else verts()
            f = SQUARE_FACES.clone() if faces is None else faces
            return refusal(lambda: soft_silhouette(v, f, size, sigma=sigma), list(names),
                           accept or finite_accept("accepted"))
        return fn

    def bad_vertex(value: float) -> Callable[[], torch.Tensor]:
        def make() -> torch.Tensor:
            v = SQUARE.clone()
            v[0, 2, 0] = value
            return v
        return make

    ref = None

    def same_as_8(what: str) -> Callable[[Any], tuple[str, str]]:
        def accept(out) -> tuple[str, str]:
            nonlocal ref
            if ref is None:
                ref = soft_silhouette(SQUARE, SQUARE_FACES, 8, sigma=0.5)
            if out.shape == ref.shape and torch.allclose(out, ref):
                if what == "tuple" and documented(soft_silhouette, "(H, W)"):
                    return "ok", "image_size=(8, 8) is documented"
                return "unclear", f"{what} accepted and right, but undocumented"
            return "silent", f"{what} accepted: output shape {tuple(out.shape)} or values differ"
        return accept

    probe("api", "soft_silhouette", "verts:nan", sil(verts=bad_vertex(NAN), names=[("verts2d", "vertices")]))
    probe("api", "soft_silhouette", "verts:inf", sil(verts=bad_vertex(INF), names=[("verts2d", "vertices")]))
    probe("api", "soft_silhouette", "sigma:nan", sil(sigma=NAN, names=[("sigma",)]))
    probe("api", "soft_silhouette", "sigma:inf", sil(sigma=INF, names=[("sigma",)]))
    probe("api", "soft_silhouette", "sigma:negative", sil(sigma=-1.0, names=[("sigma",)]))
    probe("api", "soft_silhouette", "faces:float", sil(faces=SQUARE_FACES.float(), names=[("faces",)]))
    probe("api", "soft_silhouette", "faces:out_of_range",
          sil(faces=torch.tensor([[0, 1, 7]]), names=[("faces",)]))
    probe("api", "soft_silhouette", "image_size:tuple_HW",
          sil(size=(8, 8), names=[("image_size",)], accept=same_as_8("tuple")))
    probe("api", "soft_silhouette", "image_size:1_tuple", sil(size=(8,), names=[("image_size",)]))
    probe("api", "soft_silhouette", "image_size:3_tuple", sil(size=(8, 8, 3), names=[("image_size",)]))
    probe("api", "soft_silhouette", "image_size:float_8.5", sil(size=8.5, names=[("image_size",)]))
    probe("api", "soft_silhouette", "image_size:float_8.0",
          sil(size=8.0, names=[("image_size",)], accept=same_as_8("8.0")))
    probe("api", "soft_silhouette", "image_size:str", sil(size="8", names=[("image_size",)]))
    probe("api", "soft_silhouette", "image_size:zero", sil(size=0, names=[("image_size",)]))
    probe("api", "soft_silhouette", "image_size:numpy_int",
          sil(size=np.int64(8), names=[("image_size",)], accept=same_as_8("numpy int")))

    def loss(pred, gt, width: Any = 2, names: Names = ()) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            from kinediff.losses import trimap_iou_loss

            p, g = pred(), gt()

            def accept(out) -> tuple[str, str]:
                if not all_finite(out):
                    return "silent", "NON-FINITE loss"
                if bool(((out < 0) | (out > 2)).any()):
                    return "silent", f"loss {out.tolist()} outside its documented [0, 2]"
                return "silent", f"accepted; loss {short(str(out.tolist()))}"
            return refusal(lambda: trimap_iou_loss(p, g, width), list(names), accept)
        return fn

    def mask(value: float = 1.0, nan: bool = False) -> Callable[[], torch.Tensor]:
        def make() -> torch.Tensor:
            m = torch.zeros(1, 16, 16)
            m[:, 4:12, 4:12] = value
            if nan:
                m[0, 6, 6] = NAN
            return m
        return make

    probe("api", "trimap_iou_loss", "gt:0_255", loss(mask(), mask(255.0), names=[("gt", "mask")]))
    probe("api", "trimap_iou_loss", "pred:0_255", loss(mask(255.0), mask(), names=[("pred", "mask")]))
    probe("api", "trimap_iou_loss", "pred:nan", loss(mask(nan=True), mask(), names=[("pred", "mask")]))
    probe("api", "trimap_iou_loss", "gt:nan", loss(mask(), mask(nan=True), names=[("gt", "mask")]))
    probe("api", "trimap_iou_loss", "width:float", loss(mask(), mask(), width=2.5, names=[("width",)]))
    probe("api", "trimap_iou_loss", "width:zero", loss(mask(), mask(), width=0, names=[("width",)]))


# -- api: the noise schedule -----------------------------------------------------------------------

def _schedule_probes() -> None:
    def step(t: Any, names: Names = (("t",),)) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            from kinediff.forward import GaussianNoiseSchedule

            sched = GaussianNoiseSchedule(num_steps=10, num_train_steps=1000)
            x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1))
            tt = t() if callable(t) else t
            return refusal(lambda: sched.step(x, tt, x.clone()), list(names), finite_accept(
                f"t={short(str(tt), 40)} (not one of the timesteps {sched.timesteps.tolist()}) accepted"))
        return fn

    probe("api", "noise_schedule", "step:t_5_not_a_timestep", step(5))
    probe("api", "noise_schedule", "step:t_950_not_a_timestep", step(950))
    probe("api", "noise_schedule", "step:t_1000", step(1000))
    probe("api", "noise_schedule", "step:t_-1", step(-1))
    probe("api", "noise_schedule", "step:t_float", step(900.0))
    probe("api", "noise_schedule", "step:t_float_tensor", step(lambda: torch.tensor([900.0, 900.0])))
    probe("api", "noise_schedule", "step:t_tensor_one_out_of_range", step(lambda: torch.tensor([900, 1000])))
    probe("api", "noise_schedule", "step:t_tensor_one_not_a_timestep", step(lambda: torch.tensor([900, 901])))


# -- api: metrics ----------------------------------------------------------------------------------

def _metric(name: str) -> Callable:
    from kinediff import metrics

    return getattr(metrics, name)


def _metric_probes() -> None:
    g = torch.Generator().manual_seed(2)
    pred, gt = torch.randn(2, 14, 3, generator=g), torch.randn(2, 14, 3, generator=g)

    def metric(fn_name: str, a: Callable[[], torch.Tensor], b: Callable[[], torch.Tensor],
               names: Names, accept=None, **kw) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff import metrics

            fn = getattr(metrics, fn_name)
            return refusal(lambda: fn(a(), b(), **kw), names, accept or finite_accept("accepted"))
        return run

    def with_nan() -> torch.Tensor:
        x = pred.clone()
        x[0, 3, 1] = NAN
        return x

    def with_inf() -> torch.Tensor:
        x = pred.clone()
        x[1, 2, 0] = INF
        return x

    def dtype_accept(fn_name: str, reference: Callable[[], torch.Tensor]) -> Callable[[Any], tuple[str, str]]:
        def accept(out) -> tuple[str, str]:
            from kinediff import metrics

            ref = reference()
            if not all_finite(out) or not torch.allclose(out.double(), ref.double(), rtol=1e-2, atol=1e-3):
                return "silent", f"accepted; result {short(str(out))} differs from {short(str(ref))}"
            if documented(getattr(metrics, fn_name), "dtype", "float16", "promot", "precision"):
                return "ok", "accepted and right (documented)"
            return "unclear", "accepted and right, but the accepted dtypes are undocumented"
        return accept

    def root_accept(expect: Callable[[], torch.Tensor], what: str) -> Callable[[Any], tuple[str, str]]:
        def accept(out) -> tuple[str, str]:
            if torch.allclose(out, expect()):
                if documented(_metric("mpjpe"), "negative"):
                    return "ok", f"{what}: the last joint (documented)"
                return "unclear", f"{what}: accepted and right, but undocumented"
            return "silent", f"{what}: accepted, wrong result"
        return accept

    def mpjpe_root(r: int) -> torch.Tensor:
        from kinediff.metrics import mpjpe

        return mpjpe(pred - pred[:, r:r + 1], gt - gt[:, r:r + 1])

    P = [("pred",)]
    probe("api", "metrics", "mpjpe:root_True", metric("mpjpe", lambda: pred, lambda: gt, [("root",)],
                                                        finite_accept("root=True accepted (as joint 1)"),
                                                        root=True))
    probe("api", "metrics", "mpjpe:root_-1",
          metric("mpjpe", lambda: pred, lambda: gt, [("root",)],
                 root_accept(lambda: mpjpe_root(13), "root=-1"), root=-1))
    probe("api", "metrics", "mpjpe:root_14_out_of_range",
          metric("mpjpe", lambda: pred, lambda: gt, [("root",)], root=14))
    probe("api", "metrics", "mpjpe:root_1.5",
          metric("mpjpe", lambda: pred, lambda: gt, [("root",)], root=1.5))
    probe("api", "metrics", "mpjpe:nan", metric("mpjpe", with_nan, lambda: gt, P))
    probe("api", "metrics", "mpjpe:float16",
          metric("mpjpe", lambda: pred.half(), lambda: gt.half(), P,
                 dtype_accept("mpjpe", lambda: _metric("mpjpe")(pred, gt))))
    probe("api", "metrics", "mpjpe:mixed_float32_float64",
          metric("mpjpe", lambda: pred, lambda: gt.double(), P,
                 dtype_accept("mpjpe", lambda: _metric("mpjpe")(pred, gt))))
    probe("api", "metrics", "pa_mpjpe:nan", metric("pa_mpjpe", with_nan, lambda: gt, P))
    probe("api", "metrics", "pa_mpjpe:inf", metric("pa_mpjpe", with_inf, lambda: gt, P))
    probe("api", "metrics", "pa_mpjpe:float16",
          metric("pa_mpjpe", lambda: pred.half(), lambda: gt.half(), P,
                 dtype_accept("pa_mpjpe", lambda: _metric("pa_mpjpe")(pred, gt))))
    probe("api", "metrics", "pa_mpjpe:mixed_float32_float64",
          metric("pa_mpjpe", lambda: pred, lambda: gt.double(), P,
                 dtype_accept("pa_mpjpe", lambda: _metric("pa_mpjpe")(pred, gt))))
    probe("api", "metrics", "mpve:nan", metric("mpve", with_nan, lambda: gt, P))

    def evaluator(make: Callable[[Ctx], tuple], names: Names,
                  accept=None) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.metrics import GRAPHORMER_3DPW, Evaluator, load_regressor

            reg = prep(lambda: load_regressor(GRAPHORMER_3DPW, body=ctx.body))
            p, q = prep(lambda: make(ctx))

            def call():
                ev = Evaluator(GRAPHORMER_3DPW, reg, "probe")
                ev.update(p, q)
                return ev.summary()
            return refusal(call, names, accept or finite_accept("accepted"))
        return run

    def meshes(ctx: Ctx) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(4)
        gt_v = ctx.body(torch.randn(2, 24, 3, generator=gen) * 0.3).vertices
        return gt_v + 0.01 * torch.randn(gt_v.shape, generator=gen), gt_v

    def nan_pred(ctx: Ctx):
        p, q = meshes(ctx)
        p[0, 100, 1] = NAN
        return p, q

    def nan_gt(ctx: Ctx):
        p, q = meshes(ctx)
        q[1, 7, 0] = NAN
        return p, q

    def ev_dtype(convert: Callable[[tuple], tuple]) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.metrics import GRAPHORMER_3DPW, Evaluator, load_regressor

            reg = load_regressor(GRAPHORMER_3DPW, body=ctx.body)
            p, q = meshes(ctx)
            ref = Evaluator(GRAPHORMER_3DPW, reg, "ref")
            ref.update(p, q)
            expect = ref.summary()

            def accept(out) -> tuple[str, str]:
                close = all(abs(out[k] - expect[k]) <= 0.05 * abs(expect[k]) + 0.05 for k in expect)
                if not close:
                    return "silent", f"accepted; summary {out} differs from {expect}"
                if documented(Evaluator.update, "dtype", "float16", "promot", "precision"):
                    return "ok", "accepted and right (documented)"
                return "unclear", "accepted and right, but the accepted dtypes are undocumented"
            a, b = convert((p, q))

            def call():
                ev = Evaluator(GRAPHORMER_3DPW, reg, "probe")
                ev.update(a, b)
                return ev.summary()
            return refusal(call, [("pred", "vertices")], accept)
        return run

    probe("api", "evaluator", "update:nan_pred", evaluator(nan_pred, [("pred",)]))
    probe("api", "evaluator", "update:nan_gt", evaluator(nan_gt, [("gt",)]))
    probe("api", "evaluator", "update:float16", ev_dtype(lambda pq: (pq[0].half(), pq[1].half())))
    probe("api", "evaluator", "update:mixed_float32_float64", ev_dtype(lambda pq: (pq[0], pq[1].double())))
    probe("api", "evaluator", "update:wrong_vertex_count",
          evaluator(lambda c: (meshes(c)[0][:, :-1], meshes(c)[1][:, :-1]), [("vertices", "regressor")]))


# -- api: load_regressor ---------------------------------------------------------------------------

def _regressor_probes() -> None:
    def case(write: Callable[[Path, np.ndarray], None], names_extra: Names = (),
             accept=None) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.core.conventions import synthetic_h36m_regressor
            from kinediff.metrics import GRAPHORMER_3DPW, load_regressor

            reg = prep(lambda: synthetic_h36m_regressor(ctx.body).numpy().astype(np.float64))
            path = prep(lambda: ctx.fresh("regressor") / "J_regressor_h36m_correct.npy")
            prep(lambda: write(path, reg))
            return refusal(lambda: load_regressor(GRAPHORMER_3DPW, path, body=ctx.body),
                           [Path(path.name), *names_extra], accept or finite_accept("accepted"))
        return run

    def save(transform: Callable[[np.ndarray], Any]) -> Callable[[Path, np.ndarray], None]:
        return lambda path, reg: np.save(path, transform(reg))

    def raw(make: Callable[[np.ndarray], bytes]) -> Callable[[Path, np.ndarray], None]:
        return lambda path, reg: path.write_bytes(make(reg))

    def npz(path: Path, reg: np.ndarray) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, regressor=reg)

    def npy_bytes(reg: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, reg)
        return buf.getvalue()

    probe("api", "load_regressor", "transposed", case(save(lambda r: r.T)))
    probe("api", "load_regressor", "nan", case(save(lambda r: _with(r, (3, 10), NAN))))
    probe("api", "load_regressor", "inf", case(save(lambda r: _with(r, (3, 10), INF))))
    probe("api", "load_regressor", "npz_where_npy_belongs", case(npz))
    probe("api", "load_regressor", "object_array", case(save(lambda r: np.array([r, None], dtype=object))))
    probe("api", "load_regressor", "truncated", case(raw(lambda r: npy_bytes(r)[:5000])))
    probe("api", "load_regressor", "empty", case(raw(lambda r: b"")))
    probe("api", "load_regressor", "text", case(raw(lambda r: b"0.1 0.2 0.3\n")))
    probe("api", "load_regressor", "3d_array", case(save(lambda r: r[None])))


# -- api: pretrained folders -----------------------------------------------------------------------

def _pretrained_probes() -> None:
    def case(spoil: Callable[[Path], None], target: str, accept=None) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff import PostureHMR

            folder = prep(lambda: ctx.copy_of(ctx.model_dir, "pretrained"))
            prep(lambda: spoil(folder / target))
            return refusal(lambda: PostureHMR.from_pretrained(folder, ctx.body), [Path(target)],
                           accept or finite_accept("loaded"))
        return run

    def truncate(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    def nan_weights(path: Path) -> None:
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(path))
        key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 10)
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = NAN
        with open(path, "rb") as fh:
            header = fh.read(8)
            meta = json.loads(fh.read(struct.unpack("<Q", header)[0])).get("__metadata__")
        save_file(tensors, str(path), metadata=meta)

    def nan_accept(model) -> tuple[str, str]:
        finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
        return "silent", f"loaded; weights {'finite' if finite else 'hold NaN'}"

    def config_num_points(path: Path) -> None:
        data = json.loads(path.read_text())
        data["head"]["num_points"] = 200_000_000
        path.write_text(json.dumps(data))

    probe("api", "from_pretrained", "config:truncated", case(truncate, "config.json"))
    probe("api", "from_pretrained", "config:not_json",
          case(lambda p: p.write_bytes(b"\xff\x00"), "config.json"))
    probe("api", "from_pretrained", "weights:truncated", case(truncate, "model.safetensors"))
    probe("api", "from_pretrained", "weights:nan", case(nan_weights, "model.safetensors", nan_accept))
    probe("api", "from_pretrained", "body:garbage", case(lambda p: p.write_text("{{"), "body.json"))
    probe("api", "from_pretrained", "config:num_points_2e8", case(config_num_points, "config.json"),
          guarded=True, timeout=60)


# -- api: absurd sizes (guarded) -------------------------------------------------------------------

def _size_probes() -> None:
    def model_case(names: Names, **overrides: Any) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff import PostureHMR, PostureHMRConfig

            body = prep(lambda: ctx.body)

            def call():
                return PostureHMR(PostureHMRConfig.tiny(**overrides), body)
            return refusal(call, names, lambda m: ("silent", "built a model of that size"))
        return run

    cases: list[tuple[str, Names, dict]] = [
        ("head.num_points=2e8", [("num_points",)], {"head": {"num_points": 200_000_000}}),
        ("decoder.dim=1e6", [("dim",)], {"decoder_config": {"dim": 1_000_000}}),
        ("decoder.ffn_dim=1e9", [("ffn_dim",)], {"decoder_config": {"ffn_dim": 1_000_000_000}}),
        ("decoder.num_layers=1e6", [("num_layers",)], {"decoder_config": {"num_layers": 1_000_000}}),
        ("schedule.num_steps=1e8", [("num_steps",)], {"schedule_config": {"num_steps": 100_000_000}}),
        ("noise_train_steps=1e10", [("noise_train_steps",)],
         {"schedule": "noise", "schedule_config": {"noise_train_steps": 10_000_000_000}}),
        ("feature_dim=1e9", [("feature_dim",)], {"condition": "image_feature", "feature_dim": 1_000_000_000}),
        ("head.heatmap_size=2e5", [("heatmap_size", "image_size")],
         {"image_size": 2 ** 20 * 4, "head": {"heatmap_size": 2 ** 20}}),
    ]
    for name, names, overrides in cases:
        probe("api", "absurd-size", f"PostureHMR:{name}", model_case(names, **overrides), guarded=True,
              timeout=25)

    def noise(ctx: Ctx) -> tuple[str, str]:
        from kinediff.forward import GaussianNoiseSchedule

        return refusal(lambda: GaussianNoiseSchedule(num_train_steps=10_000_000_000), [("num_train_steps",)])

    probe("api", "absurd-size", "GaussianNoiseSchedule:num_train_steps=1e10", noise, guarded=True, timeout=30)


# -- training: atomic writes under ENOSPC ----------------------------------------------------------

def enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@contextlib.contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    old = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, old)


def _partial_write(target: Any, data: bytes = b"PK\x03\x04 half a file") -> None:
    if hasattr(target, "write"):
        target.write(data)
    else:
        with open(target, "wb") as fh:
            fh.write(data)


def write_fault_verdict(folder: Path, target: Path, call: Callable[[], Any]) -> tuple[str, str]:
    """``call`` meets ENOSPC half-way through writing ``target`` (in ``folder``). ``clear``: an
    OSError naming the file, nothing left behind, an earlier ``target`` unchanged."""
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    dirs_before = {p for p in folder.rglob("*") if p.is_dir()}
    raised: BaseException | None = None
    try:
        call()
    except Exception as err:
        raised = err
    after = {p for p in folder.rglob("*") if p.is_file()}
    left = sorted(str(p.relative_to(folder)) for p in after - set(before))
    left += sorted(str(p.relative_to(folder)) + "/" for p in
                   {p for p in folder.rglob("*") if p.is_dir()} - dirs_before)
    changed = [str(p.relative_to(folder)) for p in before if p.is_file() and p.read_bytes() != before[p]]
    if raised is None:
        return "silent", f"no error for a failed write; left {left or 'nothing'}"
    if left or changed:
        return "silent", (f"{type(raised).__name__} raised, but left {left} behind"
                          + (f" and changed {changed}" if changed else ""))
    return verdict_error(raised, [(target, folder)])


def _atomic_probes() -> None:
    def torch_save_fault(obj, f, *a, **k):
        _partial_write(f)
        raise enospc()

    def numpy_savez_fault(file, *a, **k):
        _partial_write(file)
        raise enospc()

    def write_bytes_fault(self, data):
        with open(self, "wb") as fh:
            fh.write(bytes(data)[: max(1, len(data) // 2)])
        raise enospc()

    def write_text_fault(self, data, *a, **k):
        with open(self, "w") as fh:
            fh.write(data[: max(1, len(data) // 2)])
        raise enospc()

    def checkpoint(existing: bool) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.training import save_checkpoint

            folder = prep(lambda: ctx.fresh("ckpt-enospc"))
            target = folder / "3d_last.pt"
            if existing:
                prep(lambda: save_checkpoint(target, ctx.model))

            def call():
                with patched(torch, "save", torch_save_fault):
                    save_checkpoint(target, ctx.model)
            return write_fault_verdict(folder, target, call)
        return run

    def trainer_save(ctx: Ctx) -> tuple[str, str]:
        from kinediff.training import Trainer

        folder = prep(lambda: ctx.fresh("trainer-enospc"))
        trainer = prep(lambda: Trainer(ctx.model, "3d", ctx.synth, folder, progress=False, tensorboard=False))

        def call():
            with patched(torch, "save", torch_save_fault):
                trainer.save()
        return write_fault_verdict(folder, trainer.checkpoint_path, call)

    def hierarchy(ctx: Ctx) -> tuple[str, str]:
        from kinediff.mesh import MeshHierarchy

        folder = prep(lambda: ctx.fresh("hierarchy-enospc"))

        def call():
            with patched(np, "savez", numpy_savez_fault):
                MeshHierarchy.from_body(ctx.body, (4, 4), cache_dir=folder)
        return write_fault_verdict(folder, folder / "hierarchy_*.npz", call)

    def mesh_file(suffix: str) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.export import export_mesh

            folder = prep(lambda: ctx.fresh("mesh-enospc"))
            target = folder / f"person.{suffix}"
            verts = ctx.body.v_template
            prep(lambda: export_mesh(target, verts, ctx.body.faces))

            def call():
                with patched(Path, "write_bytes", write_bytes_fault):
                    export_mesh(target, verts + 0.1, ctx.body.faces)
            return write_fault_verdict(folder, target, call)
        return run

    def npz_file(ctx: Ctx) -> tuple[str, str]:
        from kinediff.export import export_npz

        folder = prep(lambda: ctx.fresh("npz-enospc"))
        target = folder / "person.npz"

        def call():
            with patched(Path, "write_bytes", write_bytes_fault):
                export_npz(target, ctx.body.v_template, ctx.body.faces)
        return write_fault_verdict(folder, target, call)

    def pretrained(ctx: Ctx) -> tuple[str, str]:
        import safetensors.torch as st

        folder = prep(lambda: ctx.fresh("pretrained-enospc"))
        target = folder / "model"

        def fault(tensors, filename, *a, **k):
            _partial_write(filename)
            raise enospc()

        def call():
            with patched(st, "save_file", fault):
                ctx.model.save_pretrained(target)
        return write_fault_verdict(folder, target, call)

    def save_config(ctx: Ctx) -> tuple[str, str]:
        folder = prep(lambda: ctx.fresh("config-enospc"))
        prep(lambda: ctx.model.config.save_config(folder))
        target = next(folder.iterdir())

        def call():
            with patched(Path, "write_text", write_text_fault):
                replace(ctx.model.config, render_weight=5.0).save_config(folder)
        return write_fault_verdict(folder, target, call)

    def evaluator_save(ctx: Ctx) -> tuple[str, str]:
        from kinediff.metrics import GRAPHORMER_3DPW, Evaluator, load_regressor

        folder = prep(lambda: ctx.fresh("evaluator-enospc"))
        ev = Evaluator(GRAPHORMER_3DPW, load_regressor(GRAPHORMER_3DPW, body=ctx.body), "probe")
        v = ctx.body(torch.zeros(2, 24, 3)).vertices
        prep(lambda: ev.update(v + 0.01, v))

        def call():
            with patched(Path, "write_text", write_text_fault):
                ev.save(folder)
        return write_fault_verdict(folder, folder / "results.json", call)

    def synthbody_cache(ctx: Ctx) -> tuple[str, str]:
        from kinediff.data import SynthBody

        folder = prep(lambda: ctx.fresh("synthbody-enospc"))

        def call():
            with patched(torch, "save", torch_save_fault):
                SynthBody(2, seed=9, body=ctx.body, cache=True, cache_root=folder, progress=False, **SMALL)
        return write_fault_verdict(folder, folder / "synthbody", call)

    def overlay_png(ctx: Ctx) -> tuple[str, str]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from kinediff.apps.predict import predict_images

        folder = prep(lambda: ctx.fresh("overlay-enospc"))
        model_dir = prep(lambda: ctx.model_dir)

        def fault(fname, *a, **k):
            _partial_write(fname, b"\x89PNG half")
            raise enospc()

        def call():
            with patched(plt, "imsave", fault):
                predict_images([ctx.good_image], model_dir, out_dir=folder, body=ctx.body)
        return write_fault_verdict(folder, folder / "image_00000_overlay.png", call)

    probe("training", "write-enospc", "save_checkpoint:new", checkpoint(False))
    probe("training", "write-enospc", "save_checkpoint:over_existing", checkpoint(True))
    probe("training", "write-enospc", "Trainer.save", trainer_save)
    probe("training", "write-enospc", "hierarchy_cache", hierarchy)
    probe("training", "write-enospc", "export_mesh:obj", mesh_file("obj"))
    probe("training", "write-enospc", "export_npz", npz_file)
    probe("training", "write-enospc", "save_pretrained", pretrained)
    probe("training", "write-enospc", "save_config:over_existing", save_config)
    probe("training", "write-enospc", "Evaluator.save", evaluator_save)
    probe("training", "write-enospc", "SynthBody_cache", synthbody_cache)
    probe("training", "write-enospc", "predict_overlay_png", overlay_png)


# -- training: resuming from spoilt checkpoints ----------------------------------------------------

def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _resume_probes() -> None:
    def case(spoil: Callable[[dict, Ctx], Any], names_extra: Names) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.training import Trainer

            folder = prep(lambda: ctx.fresh("resume"))
            model = prep(lambda: copy.deepcopy(ctx.model))
            trainer = prep(lambda: Trainer(model, "3d", ctx.synth, folder, progress=False, tensorboard=False))
            path = prep(lambda: trainer.save())
            data = prep(lambda: torch.load(path, weights_only=True))
            for value in data["model"].values():  # loading them would change the model
                if value.is_floating_point():
                    value.add_(0.5)
            out = spoil(data, ctx)
            if isinstance(out, bytes):
                prep(lambda: path.write_bytes(out))
            else:
                prep(lambda: torch.save(data, path))
            before = _weights(model)
            rng = torch.get_rng_state()
            try:
                trainer.resume(path)
            except Exception as err:
                changed = [k for k, v in _weights(model).items() if not torch.equal(v, before[k])]
                status, reason = verdict_error(err, [Path(path.name), *names_extra])
                if changed:
                    return "unclear", f"weights changed before the error ({len(changed)} tensors); {reason}"
                return status, reason
            finally:
                torch.set_rng_state(rng)
            finite = all(bool(torch.isfinite(v).all()) for v in _weights(model).values()
                         if v.is_floating_point())
            return "silent", ("resumed from the spoilt checkpoint (weights "
                              f"{'finite' if finite else 'hold NaN'})")
        return run

    def drop(key: str) -> Callable[[dict, Ctx], None]:
        return lambda data, ctx: data.pop(key)

    def setv(key: str, value: Any) -> Callable[[dict, Ctx], None]:
        return lambda data, ctx: data.__setitem__(key, value)

    def foreign_optimizer(data: dict, ctx: Ctx) -> None:
        other = torch.nn.Linear(3, 2)
        opt = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
        other(torch.ones(1, 3)).sum().backward()
        opt.step()
        data["optimizer"] = opt.state_dict()

    def stage2d_optimizer(data: dict, ctx: Ctx) -> None:
        from kinediff.training import Trainer

        t = Trainer(copy.deepcopy(ctx.model), "2d", ctx.synth, ctx.fresh("2d"), progress=False,
                    tensorboard=False)
        data["optimizer"] = t.optimizer.state_dict()

    def nan_weight(data: dict, ctx: Ctx) -> None:
        key = next(k for k, v in data["model"].items() if v.is_floating_point() and v.numel() > 10)
        data["model"][key].view(-1)[0] = NAN

    def truncated(data: dict, ctx: Ctx) -> bytes:
        buf = io.BytesIO()
        torch.save(data, buf)
        return buf.getvalue()[: len(buf.getvalue()) // 2]

    cases: list[tuple[str, Callable, Names]] = [
        ("missing_optimizer", drop("optimizer"), [("optimizer",)]),
        ("missing_scheduler", drop("scheduler"), [("scheduler",)]),
        ("missing_rng", drop("rng"), [("rng",)]),
        ("rng_not_a_dict", setv("rng", "abc"), [("rng",)]),
        ("rng_torch_wrong_size",
         lambda d, c: d["rng"].__setitem__("torch", torch.zeros(3, dtype=torch.uint8)),
         [("rng",)]),
        ("missing_epoch", drop("epoch"), [("epoch",)]),
        ("epoch_not_a_number", setv("epoch", "x"), [("epoch",)]),
        ("missing_step", drop("step"), [("step",)]),
        ("foreign_optimizer_state", foreign_optimizer, [("optimizer",)]),
        ("optimizer_of_the_2d_stage", stage2d_optimizer, [("optimizer",)]),
        ("nan_weight", nan_weight, [("model", "weight", "NaN")]),
        ("missing_model_tensor", lambda d, c: d["model"].pop(next(iter(d["model"]))), [("missing",)]),
        ("truncated_file", truncated, []),
    ]
    for name, spoil, names in cases:
        probe("training", "resume", name, case(spoil, names))

    def malicious(ctx: Ctx) -> tuple[str, str]:
        from kinediff.training import load_checkpoint

        path = prep(lambda: ctx.fresh("malicious") / "evil.pt")
        prep(lambda: torch.save({"model": {}, "payload": _Evil()}, path))

        try:
            load_checkpoint(path)
        except Exception as err:
            text = str(err)
            if re.search(r"weights_only\s*=\s*False|weights_only` set to `False", text):
                return "unclear", f"the message advises weights_only=False: {describe(err)}"
            return verdict_error(err, [Path("evil.pt")])
        return "silent", "a checkpoint with a foreign global was loaded"

    def malicious_cli(ctx: Ctx) -> tuple[str, str]:
        path = prep(lambda: ctx.fresh("malicious-cli") / "evil.pt")
        prep(lambda: torch.save({"model": {}, "config": "{}", "payload": _Evil()}, path))
        code, out, err = run_cli(["predict", str(ctx.good_image), "--checkpoint", str(path),
                                  "--out", str(ctx.fresh("malicious-out"))])
        if re.search(r"weights_only\s*=\s*False|weights_only` set to `False", err):
            return "unclear", f"exit {code}; the message advises weights_only=False: {short(last_line(err))}"
        return cli_verdict(code, out, err, [Path("evil.pt")])

    probe("training", "malicious-checkpoint", "load_checkpoint", malicious)
    probe("training", "malicious-checkpoint", "predict --checkpoint", malicious_cli)


class _Evil:
    """Pickles as a call of os.getpid (harmless if ever run; kinediff must refuse to run it)."""

    def __reduce__(self):
        return (os.getpid, ())


# -- training: output folders that cannot be written -----------------------------------------------

def _outdir_probes() -> None:
    def case(make: Callable[[Ctx], Path]) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            from kinediff.training import Trainer

            out = prep(lambda: make(ctx))
            model = prep(lambda: copy.deepcopy(ctx.model))
            steps = []
            trainer = None

            def call():
                nonlocal trainer
                trainer = Trainer(model, "3d", ctx.synth, out, max_steps=2, batch_size=2, progress=False,
                                  tensorboard=False)
                original = trainer.train_step

                def counting(batch):
                    steps.append(1)
                    return original(batch)
                trainer.train_step = counting
                trainer.fit()
            try:
                call()
            except Exception as err:
                status, reason = verdict_error(err, [(out, out.name)])
                if steps:
                    return "unclear", f"detected only after {len(steps)} training step(s); {reason}"
                return status, reason
            return "silent", f"trained {len(steps)} step(s) and reported nothing"
        return run

    def a_file(ctx: Ctx) -> Path:
        path = ctx.fresh("out-file") / "run"
        path.write_text("I am a file")
        return path

    def under_a_file(ctx: Ctx) -> Path:
        return a_file(ctx) / "sub"

    probe("training", "output-folder", "is_a_file", case(a_file))
    probe("training", "output-folder", "under_a_file", case(under_a_file))
    probe("training", "output-folder", "unwritable", case(lambda ctx: ctx.unwritable_dir("trainer-out")))


# -- cli -------------------------------------------------------------------------------------------

def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``kinediff.cli.main(argv)`` in this process: (exit code, stdout, stderr); an exception that
    escapes ``main`` is what the process would print: a traceback."""
    from kinediff.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                err.write(exc.code + "\n")
        except Exception:  # the interpreter would print this and exit 1
            err.write(traceback.format_exc())
            code = 1
    return int(code or 0), out.getvalue(), err.getvalue()


def cli_verdict(code: int, out: str, err: str, names: Names,
                accept: Callable[[str, str], tuple[str, str]] | None = None) -> tuple[str, str]:
    if "Traceback (most recent call last)" in err:
        return "unclear", f"exit {code} with a traceback: {short(last_line(err))}"
    if code == 0:
        return accept(out, err) if accept else ("silent", f"exit 0: {short(last_line(out) or 'no output')}")
    missing = missing_names(err + out, names)
    if missing:
        return "unclear", f"exit {code}; does not name {', '.join(missing)}: {short(last_line(err))}"
    return "clear", f"exit {code}: {short(last_line(err))}"


def cli_case(make: Callable[[Ctx], tuple[list[str], Names]],
             accept: Callable[[str, str], tuple[str, str]] | None = None) -> Callable[[Ctx], tuple[str, str]]:
    def run(ctx: Ctx) -> tuple[str, str]:
        argv, names = prep(lambda: make(ctx))
        code, out, err = run_cli([str(a) for a in argv])
        return cli_verdict(code, out, err, names, accept)
    return run


def _cli_probes() -> None:
    def predict(ctx: Ctx, *extra: Any, image: Path | None = None, out: Path | None = None) -> list:
        return ["predict", str(image or ctx.good_image), "--model", str(ctx.model_dir),
                "--out", str(out or ctx.fresh("predict-out")), *map(str, extra)]

    for fault in ("garbage", "empty", "truncated_jpeg", "decompression_bomb_png", "directory"):
        def bad_image(ctx: Ctx, fault: str = fault):
            path = ctx.fresh("cli-image") / "photo.jpg"
            shutil.copy(ctx.good_image, path)
            write_image_fault(path, fault)
            return predict(ctx, image=path), [Path("photo.jpg")]
        probe("cli", "predict-image", fault, cli_case(bad_image))
    probe("cli", "predict-image", "missing",
          cli_case(lambda c: (predict(c, image=c.work / "nowhere.jpg"), [Path("nowhere.jpg")])))

    def out_file(ctx: Ctx):
        path = ctx.fresh("cli-outfile") / "results"
        path.write_text("a file")
        return predict(ctx, out=path), [Path("results")]

    def out_under_file(ctx: Ctx):
        path = ctx.fresh("cli-outfile") / "results"
        path.write_text("a file")
        return predict(ctx, out=path / "sub"), [("results",)]

    def out_unwritable(ctx: Ctx):
        path = ctx.unwritable_dir("cli-out")
        return predict(ctx, out=path), [Path(path.name)]

    probe("cli", "predict-out", "is_a_file", cli_case(out_file))
    probe("cli", "predict-out", "under_a_file", cli_case(out_under_file))
    probe("cli", "predict-out", "unwritable", cli_case(out_unwritable))

    bboxes = {"nan": ["10", "10", "nan", "60"], "inf": ["10", "10", "inf", "60"],
              "zero_width": ["10", "10", "0", "60"], "negative_height": ["10", "10", "40", "-60"],
              "huge": ["0", "0", "1e30", "1e30"]}
    for name, box in bboxes.items():
        probe("cli", "predict-bbox", name,
              cli_case(lambda c, box=box: (predict(c, "--bbox", *box), [("bbox", "box")])))
    for name, value in {"zero": "0", "negative": "-500", "nan": "nan", "inf": "inf"}.items():
        probe("cli", "predict-focal", name,
              cli_case(lambda c, value=value: (predict(c, "--focal", value), [("focal",)])))

    def boxes_file(content: bytes) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            path = ctx.fresh("cli-boxes") / "boxes.json"
            path.write_bytes(content)
            return predict(ctx, "--boxes", path), [Path("boxes.json")]
        return make

    name = "image_00000.jpg"
    box_cases = {
        "truncated_json": b'{"image_00000.jpg": [[10, 10, 40',
        "three_numbers": json.dumps({name: [[10, 10, 40]]}).encode(),
        "strings": json.dumps({name: [["a", "b", "c", "d"]]}).encode(),
        "nan": json.dumps({name: [[10, 10, NAN, 60]]}).encode(),
        "zero_size": json.dumps({name: [[10, 10, 0, 0]]}).encode(),
        "not_a_list_of_boxes": json.dumps({name: [10, 10, 40, 60]}).encode(),
    }
    for case_name, content in box_cases.items():
        probe("cli", "predict-boxes", case_name, cli_case(boxes_file(content)))
    probe("cli", "predict-boxes", "missing_file",
          cli_case(lambda c: (predict(c, "--boxes", c.work / "no_boxes.json"), [Path("no_boxes.json")])))

    def model_folder(spoil: Callable[[Path], None] | None,
                     target: str) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            folder = ctx.copy_of(ctx.model_dir, "cli-model")
            if spoil is not None:
                spoil(folder / target)
            return (["predict", str(ctx.good_image), "--model", str(folder), "--out",
                     str(ctx.fresh("o"))], [Path(target)])
        return make

    def truncate(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    probe("cli", "predict-model", "config_truncated", cli_case(model_folder(truncate, "config.json")))
    probe("cli", "predict-model", "weights_truncated", cli_case(model_folder(truncate, "model.safetensors")))
    probe("cli", "predict-model", "weights_missing",
          cli_case(model_folder(lambda p: p.unlink(), "model.safetensors")))

    def checkpoint(content: Callable[[Ctx], bytes], label: str) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            path = ctx.fresh("cli-ckpt") / "run.pt"
            path.write_bytes(content(ctx))
            return (["predict", str(ctx.good_image), "--checkpoint", str(path), "--out",
                     str(ctx.fresh("o"))], [Path("run.pt")])
        return make

    def good_ckpt(ctx: Ctx) -> bytes:
        from kinediff.training import save_checkpoint

        path = ctx.fresh("ckpt") / "x.pt"
        save_checkpoint(path, ctx.model, stage="3d", config=ctx.model.config.to_json())
        return path.read_bytes()

    probe("cli", "predict-checkpoint", "truncated",
          cli_case(checkpoint(lambda c: good_ckpt(c)[:100000], "truncated")))
    probe("cli", "predict-checkpoint", "empty", cli_case(checkpoint(lambda c: b"", "empty")))
    probe("cli", "predict-checkpoint", "text", cli_case(checkpoint(lambda c: b"hello\n", "text")))

    def smpl_file(content: bytes) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            path = ctx.fresh("cli-smpl") / "SMPL_NEUTRAL.pkl"
            path.write_bytes(content)
            return predict(ctx, "--smpl", path), [Path("SMPL_NEUTRAL.pkl")]
        return make

    probe("cli", "predict-smpl", "truncated_pkl",
          cli_case(lambda c: smpl_file(_truncated_copy(c, "src.pkl").read_bytes()[:3000])(c)))
    probe("cli", "predict-smpl", "empty_pkl", cli_case(smpl_file(b"")))

    # data convert: spoilt sources, bad destinations
    def convert(dataset: str, src: Path, dst: Path) -> list:
        return ["data", "convert", dataset, str(src), str(dst)]

    def h36m_camera(mutate: Callable[[dict], None]) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            root = ctx.copy_of(ctx.h36m, "cli-h36m")
            path = root / "annotations" / "Human36M_subject9_camera.json"
            data = json.loads(path.read_text())
            mutate(data)
            path.write_text(json.dumps(data))
            return convert("h36m", root, ctx.fresh("dst")), [Path(path.name)]
        return make

    cams = {"entry_not_a_dict": _set(("4",), "camera"), "R_2x3": _set(("4", "R"), lambda a: a[:2]),
            "f_missing": _delete_in(("4",), "f"), "f_zero": _set(("4", "f"), [0.0, 0.0]),
            "f_nan": _set(("4", "f"), [NAN, NAN]), "t_strings": _set(("4", "t"), ["a", "b", "c"])}
    for case_name, mutate in cams.items():
        probe("cli", "convert-h36m-camera", case_name, cli_case(h36m_camera(mutate)))

    def pw3d_pickle(fault: Callable[[bytes], bytes]) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            root = ctx.copy_of(ctx.pw3d, "cli-3dpw")
            path = root / "sequenceFiles" / "test" / f"{BAD_SEQ}.pkl"
            path.write_bytes(fault(path.read_bytes()))
            return convert("3dpw", root, ctx.fresh("dst")), [Path(path.name)]
        return make

    probe("cli", "convert-3dpw", "truncated_pickle", cli_case(pw3d_pickle(lambda b: b[: len(b) // 2])))
    probe("cli", "convert-3dpw", "empty_pickle", cli_case(pw3d_pickle(lambda b: b"")))

    def dst_file(ctx: Ctx):
        dst = ctx.fresh("cli-dst") / "out"
        dst.write_text("a file")
        return convert("3dpw", ctx.pw3d, dst), [Path("out")]

    probe("cli", "convert-3dpw", "dst_is_a_file", cli_case(dst_file))
    probe("cli", "convert-3dpw", "dst_unwritable",
          cli_case(lambda c: (convert("3dpw", c.pw3d, c.unwritable_dir("cli-dst")), [("locked",)])))

    # train / eval / fit / body
    def config_file(content: bytes) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            path = ctx.fresh("cli-config") / "config.json"
            path.write_bytes(content)
            return (["train", path, "--data", "synthetic", "--out", ctx.fresh("run"), "--size", "4",
                     "--max-steps", "1"], [Path("config.json")])
        return make

    probe("cli", "train", "config_truncated", cli_case(config_file(b'{"image_size": 64, "mesh_fac')))
    probe("cli", "train", "config_missing",
          cli_case(lambda c: (["train", c.work / "no_config.json", "--data", "synthetic", "--out",
                               c.fresh("run")], [Path("no_config.json")])))

    def train_out(make_out: Callable[[Ctx], Path]) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            cfg = ctx.fresh("cli-cfg") / "config.json"
            cfg.write_text(ctx.model.config.to_json())
            out = make_out(ctx)
            return (["train", cfg, "--data", "synthetic", "--out", out, "--size", "4", "--max-steps", "1",
                     "--epochs", "1"], [(out, out.name)])
        return make

    def file_out(ctx: Ctx) -> Path:
        path = ctx.fresh("cli-train-out") / "run"
        path.write_text("a file")
        return path

    probe("cli", "train", "out_is_a_file", cli_case(train_out(file_out)))
    probe("cli", "train", "out_unwritable", cli_case(train_out(lambda c: c.unwritable_dir("cli-train"))))

    def train_absurd(ctx: Ctx) -> tuple[str, str]:
        from kinediff import PostureHMRConfig

        cfg = prep(lambda: ctx.fresh("cli-cfg-absurd") / "config.json")
        data = json.loads(PostureHMRConfig.tiny().to_json())
        data["head"]["num_points"] = 200_000_000
        cfg.write_text(json.dumps(data))
        code, out, err = run_cli(["train", str(cfg), "--data", "synthetic", "--out", str(ctx.fresh("run")),
                                  "--size", "4", "--max-steps", "1"])
        return cli_verdict(code, out, err, [("num_points",)])

    probe("cli", "train", "config_num_points_2e8", train_absurd, guarded=True, timeout=40)

    probe("cli", "eval", "model_missing",
          cli_case(lambda c: (["eval", "--model", c.work / "no_model", "--data", "synthetic", "--size", "4"],
                              [Path("no_model")])))

    def eval_regressor(write: Callable[[Path], None]) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            path = ctx.fresh("cli-reg") / "J_regressor_h36m_correct.npy"
            write(path)
            return (["eval", "--model", ctx.model_dir, "--data", "synthetic", "--size", "4",
                     "--regressor", path], [Path(path.name)])
        return make

    probe("cli", "eval", "regressor_truncated",
          cli_case(eval_regressor(lambda p: p.write_bytes(b"\x93NUMPY"))))
    def npz_at(path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, r=np.zeros((17, 6890)))

    probe("cli", "eval", "regressor_npz", cli_case(eval_regressor(npz_at)))

    def mesh(content: bytes) -> Callable[[Ctx], tuple[list, Names]]:
        def make(ctx: Ctx):
            path = ctx.fresh("cli-mesh") / "person.obj"
            path.write_bytes(content)
            return ["fit", path], [Path("person.obj")]
        return make

    def nan_obj(ctx: Ctx):
        path = ctx.fresh("cli-mesh") / "person.obj"
        v = ctx.body.v_template.numpy().copy()
        v[10, 1] = NAN
        lines = [f"v {a} {b} {c}" for a, b, c in v]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in ctx.body.faces.tolist()]
        path.write_text("\n".join(lines) + "\n")
        return ["fit", path], [Path("person.obj"), ("nan", "finite")]

    probe("cli", "fit", "garbage_mesh", cli_case(mesh(b"\x00\x01 this is not a mesh")))
    probe("cli", "fit", "empty_mesh", cli_case(mesh(b"")))
    probe("cli", "fit", "nan_vertices", cli_case(nan_obj))
    probe("cli", "body", "info_truncated_pkl",
          cli_case(lambda c: (["body", "info", _truncated_copy(c, "SMPL_NEUTRAL.pkl")],
                              [Path("SMPL_NEUTRAL.pkl")])))
    probe("cli", "body", "clean_truncated_pkl",
          cli_case(lambda c: (["body", "clean", _truncated_copy(c, "in.pkl"), c.fresh("clean") / "out.pkl"],
                              [Path("in.pkl")])))

    # the real processes: `python -m kinediff` and the `kinediff` entry point
    def process(argv_of: Callable[[Ctx], tuple[list[str], Names]]) -> Callable[[Ctx], tuple[str, str]]:
        def run(ctx: Ctx) -> tuple[str, str]:
            argv, names = prep(lambda: argv_of(ctx))
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
            return cli_verdict(proc.returncode, proc.stdout, proc.stderr, names)
        return run

    entry = Path(sys.executable).with_name("kinediff")

    def python_m(ctx: Ctx):
        return ([sys.executable, "-m", "kinediff", "predict", str(ctx.work / "nowhere.jpg"), "--model",
                 str(ctx.model_dir)], [Path("nowhere.jpg")])

    def entry_out_file(ctx: Ctx):
        if not entry.is_file():
            raise HarnessError(f"no kinediff entry point next to {sys.executable}")
        path = ctx.fresh("proc-out") / "results"
        path.write_text("a file")
        return ([str(entry), "predict", str(ctx.good_image), "--model", str(ctx.model_dir), "--out",
                 str(path)], [Path("results")])

    probe("cli", "process", "python -m kinediff predict missing.jpg", process(python_m), timeout=120,
          isolated=True)
    probe("cli", "process", "kinediff predict --out FILE", process(entry_out_file), timeout=120,
          isolated=True)


def _truncated_copy(ctx: Ctx, name: str) -> Path:
    src = next(ctx.cache.glob("SMPL_SYNTHETIC_*seed0.pkl"))
    path = ctx.fresh("trunc-pkl") / name
    data = src.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# -- registry --------------------------------------------------------------------------------------

def register_all() -> None:
    if PROBES:
        return
    _record_probes()
    _pw3d_raw_probes()
    _pw3d_coco_probes()
    _h36m_probes()
    _surreal_probes()
    _spin_probes()
    _coco_probes()
    _up3d_probes()
    _image_probes()
    _file_probes()
    _cache_probes()
    _bomb_probes()
    _predict_probes()
    _body_probes()
    _render_probes()
    _schedule_probes()
    _metric_probes()
    _regressor_probes()
    _pretrained_probes()
    _size_probes()
    _atomic_probes()
    _resume_probes()
    _outdir_probes()
    _cli_probes()


# -- report ----------------------------------------------------------------------------------------

def table(results: list[Result]) -> str:
    rows = [("category", "tried", "clear", "unclear", "silent", "ok", "error")]
    for cat in (*CATEGORIES, "total"):
        mine = [r for r in results if cat in ("total", r.category)]
        counted = [r for r in mine if r.status != "error"]
        rows.append((cat, str(len(counted)), *(str(sum(r.status == s for r in mine)) for s in STATUSES)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default=None, help="write every probe's outcome to this file")
    parser.add_argument("--only", default=None, help="run the probes whose category/family/name holds this")
    parser.add_argument("--list", action="store_true", help="list the probes and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder of fixtures")
    parser.add_argument("--verbose", action="store_true", help="print every probe's outcome")
    parser.add_argument("--zygote", nargs=2, metavar=("WORK", "KEYS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.zygote:
        return zygote_main(Path(args.zygote[0]), Path(args.zygote[1]))
    register_all()
    probes = [p for p in PROBES if args.only is None or args.only in p.key]
    if args.list:
        for p in probes:
            print(p.key + ("  [guarded]" if p.guarded else "  [isolated]" if p.isolated else ""))
        print(f"{len(probes)} probes ({sum(p.guarded for p in probes)} guarded, "
              f"{sum(p.isolated for p in probes)} in the separate lane)")
        return 0
    warnings.simplefilter("ignore")
    work = Path(tempfile.mkdtemp(prefix="kinediff-probes-"))
    ctx = Ctx(work)
    start = time.perf_counter()
    results: dict[str, Result] = {}
    isolated = [p for p in probes if p.isolated]
    zygote = Zygote(work, isolated) if isolated else None  # runs beside the inline probes
    try:
        with quiet():
            ctx.body  # noqa: B018 - built (or read from the cache) once, before any probe's timer
        inline = [p for p in probes if not p.isolated]
        for i, p in enumerate(inline, 1):
            results[p.key] = result = run_probe(p, ctx)
            if args.verbose or result.status == "error":
                print(f"[{i}/{len(inline)}] {result.status:7s} {result.seconds:5.1f}s {p.key}: "
                      f"{result.reason}", flush=True)
        if zygote is not None:
            for result in zygote.results():
                results[result.key] = result
                if args.verbose or result.status == "error":
                    print(f"[lane 2] {result.status:7s} {result.seconds:5.1f}s {result.key}: "
                          f"{result.reason}", flush=True)
    finally:
        if zygote is not None and zygote.proc.poll() is None:
            zygote.proc.kill()
        ctx.release()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"fixtures kept in {work}")
    ordered = [results[p.key] for p in probes if p.key in results]
    elapsed = time.perf_counter() - start
    print()
    print(table(ordered))
    import kinediff

    where = Path(kinediff.__file__).resolve().parents[1]
    print(f"\n{len(ordered)} probes in {elapsed:.0f} s (kinediff {kinediff.__version__} from {where})")
    for status in ("unclear", "silent", "error"):
        bad = [r for r in ordered if r.status == status]
        if bad:
            print(f"\n{status} ({len(bad)}):")
            for r in bad:
                print(f"  {r.key}: {r.reason.splitlines()[0]}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "elapsed_s": round(elapsed, 1), "kinediff": str(where), "guard_gib": GUARD_GIB,
            "summary": {cat: {s: sum(r.status == s for r in ordered if cat in ("total", r.category))
                              for s in STATUSES} for cat in (*CATEGORIES, "total")},
            "probes": [{**asdict(r), "seconds": round(r.seconds, 2)} for r in ordered]}, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
