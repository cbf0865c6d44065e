"""The robustness harness: a bad input or a fault thrown at kinediff's public surface, and what
happened, classified. The robust tests (marker ``robust``) and the other tests of bad input share
it.

Outcome categories:

- ``clear``: an error of a user-error type (ValueError, TypeError, an OSError such as
  FileNotFoundError, pickle.UnpicklingError, or an exception class of kinediff's own; KeyError,
  IndexError, RuntimeError, MemoryError, ... are not) whose message names what the test expects
  (the file, the key, the argument); for a data set, also: the bad record skipped, the loader's
  ``report()`` naming it and the rest loading; for the command line: a non-zero exit, the message
  naming the thing, no traceback.
- ``ok``: accepted and right where the docstring documents the acceptance (e.g.
  ``image_size=(H, W)``).
- ``unclear``: any other exception (a MemoryError, a kill or a timeout under the memory guard
  included), a message not naming the thing, a traceback on the command line, a data set crashing
  mid-iteration, a right result that no docstring promises.
- ``silent``: no error and a wrong result: a non-finite output, a bad value accepted, a bad record
  used or dropped without a report, temporary or half-written files left behind.

A robust test computes an :class:`Outcome` and passes it to :func:`expect` with the category it
must have: ``clear`` or ``ok``, or, for an outcome accepted as it is, ``unclear`` / ``silent`` with
the reason (``because``). :func:`expect` counts every outcome; the session fails when a category
other than clear / ok holds more outcomes than :data:`DOCUMENTED` says (tests/conftest.py's hooks),
and the counts are printed in the terminal summary.

Inputs that may allocate without bound (memory bombs: a small pickle that expands through shared
references, an npz whose header claims 80 GB, a config of absurd sizes) run through
:func:`guarded`: a child forked from a fresh interpreter (a forkserver) under ``RLIMIT_AS`` = its
size + 2 GiB and a time limit, so they can never exhaust the machine.

Fixtures are written in the released file formats by :mod:`kinediff.testing` (:class:`Fixtures`).
"""

from __future__ import annotations

import contextlib
import errno
import io
import multiprocessing
import os
import pickle
import re
import resource
import shutil
import struct
import subprocess
import tempfile
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

CLEAR, OK, UNCLEAR, SILENT = "clear", "ok", "unclear", "silent"
STATUSES = (CLEAR, OK, UNCLEAR, SILENT)
#: The number of robust outcomes accepted in each category other than clear / ok; each is asserted
#: by its test with the reason it is accepted (``expect(..., because=...)``). More fails the session.
DOCUMENTED = {UNCLEAR: 0, SILENT: 2}
USER_ERRORS = (ValueError, TypeError, OSError, pickle.UnpicklingError)
#: The memory a guarded child may allocate beyond its size at the fork, in GiB.
GUARD_GIB = 2
NAN, INF = float("nan"), float("inf")


@dataclass(frozen=True)
class Outcome:
    """What a bad input led to: one of :data:`STATUSES` and why."""

    status: str
    reason: str


# -- counting ---------------------------------------------------------------------------------------

#: (test id, status) of every outcome :func:`expect` was given this session.
RESULTS: list[tuple[str, str]] = []


def expect(outcome: Outcome, status: str = CLEAR, because: str | None = None) -> None:
    """Count ``outcome`` and assert that it is ``status``. An ``unclear`` or ``silent`` outcome is
    accepted only with ``because``, the reason it is accepted (and :data:`DOCUMENTED` counts it)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    if status in DOCUMENTED and not because:
        raise ValueError(f"an accepted {status} outcome needs the reason it is accepted (because=...)")
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    RESULTS.append((test, outcome.status))
    assert outcome.status == status, f"expected {status}, got {outcome.status}: {outcome.reason}"


def counts() -> Counter:
    """How many outcomes of each category this session has seen."""
    return Counter(status for _, status in RESULTS)


def over_documented() -> dict[str, int]:
    """The categories (other than clear / ok) holding more outcomes than :data:`DOCUMENTED`."""
    seen = counts()
    return {s: seen[s] for s, limit in DOCUMENTED.items() if seen[s] > limit}


def terminal_summary(reporter: Any) -> None:
    """The counts of the session's robust outcomes, and what exceeds :data:`DOCUMENTED` (for
    ``pytest_terminal_summary``)."""
    if not RESULTS:
        return
    seen = counts()
    reporter.section("robust outcomes")
    reporter.line("  ".join(f"{s} {seen[s]}" + (f" (documented: {DOCUMENTED[s]})" if s in DOCUMENTED else "")
                            for s in STATUSES) + f"  of {len(RESULTS)}")
    for status, count in over_documented().items():
        reporter.line(f"FAILED: {count} robust outcomes are {status}, {DOCUMENTED[status]} documented "
                      f"(tests/robust.py DOCUMENTED):", red=True)
        for test, s in RESULTS:
            if s == status:
                reporter.line(f"  {test}", red=True)


# -- classification --------------------------------------------------------------------------------

#: What a message must name: each entry a str / Path, or a tuple of alternatives.
Names = Sequence[Any]


def short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {short(str(err))}"


def _mentions(text: str, name: Any) -> bool:
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
    alternatives; a Path matches by its full path or its file name; a name of one or two letters
    only as a key: quoted, dotted, bracketed, ``k=`` or ``k must ...``)."""
    out = []
    for entry in names:
        options = entry if isinstance(entry, tuple) else (entry,)
        if not any(_mentions(text, o) for o in options):
            out.append("/".join(o.name if isinstance(o, Path) else str(o) for o in options))
    return out


def user_error(err: BaseException) -> bool:
    """Whether ``err`` is of a type that tells a user what they gave wrong (:data:`USER_ERRORS` or
    kinediff's own; never KeyError / IndexError)."""
    if isinstance(err, KeyError | IndexError):
        return False
    return isinstance(err, USER_ERRORS) or type(err).__module__.startswith("kinediff")


def verdict_error(err: BaseException, names: Names) -> Outcome:
    """An exception: ``clear`` for a user-error type naming ``names``, else ``unclear``."""
    if not user_error(err):
        return Outcome(UNCLEAR, describe(err))
    text = str(err) + " " + str(getattr(err, "filename", "") or "")
    missing = missing_names(text, names)
    if missing:
        return Outcome(UNCLEAR, f"does not name {', '.join(missing)}: {describe(err)}")
    return Outcome(CLEAR, describe(err))


def refusal(call: Callable[[], Any], names: Names,
            accept: Callable[[Any], Outcome] | None = None) -> Outcome:
    """Run ``call``: an exception is judged by :func:`verdict_error`; a return value by ``accept``
    (default: ``silent``, the bad input was accepted)."""
    try:
        value = call()
    except Exception as err:  # noqa: BLE001 - any exception is judged
        return verdict_error(err, names)
    if accept is None:
        return Outcome(SILENT, f"accepted without an error; output {'finite' if all_finite(value) else 'NON-FINITE'}")
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
    """Whether every floating-point tensor or array in ``value`` is finite."""
    return all(bool(torch.isfinite(t).all()) for t in tensors_of(value)
               if t.is_floating_point() or t.is_complex())


def documented(fn: Any, *words: str) -> bool:
    """Whether ``fn``'s docstring holds any of ``words`` (case-insensitive)."""
    doc = (getattr(fn, "__doc__", None) or "").lower()
    return any(w.lower() in doc for w in words)


def accepted_if_documented(fn: Any, words: Sequence[str], right: bool, what: str) -> Outcome:
    """An input accepted without an error: ``ok`` when the result is ``right`` and ``fn``'s
    docstring documents the acceptance (holds one of ``words``), ``unclear`` when right but
    undocumented, ``silent`` when wrong."""
    if not right:
        return Outcome(SILENT, f"{what} accepted: wrong result")
    if documented(fn, *words):
        return Outcome(OK, f"{what} accepted and right (documented)")
    return Outcome(UNCLEAR, f"{what} accepted and right, but undocumented")


# -- data sets -------------------------------------------------------------------------------------

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
                    report_names: Names | None = None) -> Outcome:
    """Build a data set and read every item. ``clear``: an error naming ``names``, or every bad
    record (``is_bad``) left out, the report naming ``report_names`` (default ``names``) and the
    rest loading; ``silent``: a bad record used, a non-finite sample, a bad record left out without
    a report; ``unclear``: another error, a crash while reading items."""
    try:
        ds = build()
    except Exception as err:  # noqa: BLE001 - any exception is judged
        return verdict_error(err, names)
    records = list(getattr(ds, "records", []))
    bad = {i for i, r in enumerate(records) if is_bad(r)}
    used, nonfinite, seen = set(), set(), set()
    for i in range(len(ds)):
        try:
            sample = ds[i]
        except Exception as err:  # noqa: BLE001 - any exception is judged
            return Outcome(UNCLEAR, f"crash reading item {i} of {len(ds)}: {describe(err)}")
        j = int(sample.get("index", i)) if isinstance(sample, dict) else i
        seen.add(j)
        if j in bad:
            used.add(j)
        if not all_finite(sample):
            nonfinite.add(j)
    if used:
        finite = "a NON-FINITE sample" if used & nonfinite else "a finite but wrong sample"
        return Outcome(SILENT, f"bad record used: {finite} (records {sorted(used)} of {len(records)})")
    if nonfinite:
        return Outcome(SILENT, f"non-finite samples from records {sorted(nonfinite)}")
    if not seen:
        return Outcome(UNCLEAR, "no item could be read")
    report = report_text(ds)
    missing = missing_names(report, report_names if report_names is not None else names)
    how = "skipped while reading" if bad else "left out when built"
    if not report.strip():
        return Outcome(SILENT, f"bad record {how} without a report")
    if missing:
        return Outcome(UNCLEAR, f"bad record {how}; the report does not name {', '.join(missing)}: "
                                f"{short(report)}")
    return Outcome(CLEAR, f"bad record {how} and reported: {short(report)}")


# -- the command line ------------------------------------------------------------------------------

#: torch's advice to load a refused file unsafely, and its internal wording: never passed on.
UNSAFE_ADVICE = ("weights_only=False", "set to `False`", "Re-running `torch.load`", "add_safe_globals")
TORCH_NOISE = ("internal miniz error", "enforce fail", "Weights only load failed")


def run_cli(argv: Sequence[Any]) -> tuple[int, str, str]:
    """``kinediff.cli.main(argv)`` in this process: (exit code, stdout, stderr); an exception that
    escapes ``main`` is what the process would print: a traceback, exit 1."""
    from kinediff.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                err.write(exc.code + "\n")
        except Exception:  # noqa: BLE001 - the interpreter would print this and exit 1
            err.write(traceback.format_exc())
            code = 1
    return int(code or 0), out.getvalue(), err.getvalue()


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def cli_verdict(code: int, out: str, err: str, names: Names,
                accept: Callable[[str, str], Outcome] | None = None) -> Outcome:
    """A command's exit: ``clear`` for a non-zero exit whose output names ``names``, without a
    traceback; ``unclear`` for a traceback or a message not naming them; exit 0 is judged by
    ``accept`` (default: ``silent``)."""
    if "Traceback (most recent call last)" in err:
        return Outcome(UNCLEAR, f"exit {code} with a traceback: {short(last_line(err))}")
    if code == 0:
        return accept(out, err) if accept else Outcome(SILENT, f"exit 0: {short(last_line(out) or 'no output')}")
    missing = missing_names(err + out, names)
    if missing:
        return Outcome(UNCLEAR, f"exit {code}; does not name {', '.join(missing)}: {short(last_line(err))}")
    return Outcome(CLEAR, f"exit {code}: {short(last_line(err))}")


def cli_outcome(argv: Sequence[Any], names: Names) -> Outcome:
    """:func:`cli_verdict` of ``kinediff argv`` run in this process."""
    return cli_verdict(*run_cli(argv), names)


def assert_clean(message: str) -> None:
    """``message`` is one line that neither advises an unsafe load nor repeats torch's internals."""
    assert not any(a in message for a in UNSAFE_ADVICE), message
    assert not any(n in message for n in TORCH_NOISE), message
    assert "\n" not in message.strip(), message


def one_error_line(err: str, *expected: str) -> str:
    """The command's stderr ``err`` is one clean line ``kinediff: error: ...`` holding each of
    ``expected``; returns it."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("kinediff: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert_clean(lines[0])
    return lines[0]


# -- faults ----------------------------------------------------------------------------------------

class Evil:
    """Unpickling it would create the folder ``marker``: a weights-only or restricted load must
    refuse it (check afterwards that ``marker`` does not exist)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A PNG of a few hundred bytes whose header claims ``width`` x ``height`` RGB pixels (a
    decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + _png_chunk(b"IEND", b""))


#: Damaged image files, each made from a good file's bytes (None: a folder in its place).
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
    """Replace the image ``path`` by :data:`IMAGE_FAULTS` ``[fault]``."""
    data = path.read_bytes() if path.is_file() else b""
    out = IMAGE_FAULTS[fault](data)
    path.unlink(missing_ok=True)
    if out is None:
        path.mkdir()
    else:
        path.write_bytes(out)


def truncate(path: Path, fraction: float = 0.5) -> None:
    """Cut the file ``path`` to ``fraction`` of its length."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def with_value(a: Any, index: tuple, value: float) -> np.ndarray:
    """A float64 copy of ``a`` with ``a[index] = value``."""
    a = np.array(a, dtype=np.float64)
    a[index] = value
    return a


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """The header of a .npy file claiming an array of ``shape`` (version 1.0)."""
    text = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def write_npz_header_bomb(path: Path, key: str, shape: tuple[int, ...]) -> None:
    """Rewrite the npz ``path`` with member ``key`` replaced by a header claiming ``shape`` and a
    few bytes of data."""
    import zipfile

    with np.load(path) as data:
        arrays = dict(data)
    with zipfile.ZipFile(path, "w") as zf:
        for name, value in arrays.items():
            buf = io.BytesIO()
            np.save(buf, value)
            zf.writestr(f"{name}.npy", npy_header(shape) + b"\x00" * 64 if name == key else buf.getvalue())


def enospc(*args: Any, **kwargs: Any) -> OSError:
    """The error of a full disk."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def partial_write(target: Any, data: bytes = b"PK\x03\x04 half a file") -> None:
    """A writer's first bytes, to a file object or a path (what a full disk leaves)."""
    if hasattr(target, "write"):
        target.write(data)
    else:
        with open(target, "wb") as fh:
            fh.write(data)


def write_fault_verdict(folder: Path, target: Path, call: Callable[[], Any]) -> Outcome:
    """``call`` meets a failing write of ``target`` (in ``folder``). ``clear``: an OSError naming
    the file, nothing left behind, the files already there unchanged; ``silent``: no error, or
    files left behind or changed."""
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    dirs_before = {p for p in folder.rglob("*") if p.is_dir()}
    raised: BaseException | None = None
    try:
        call()
    except Exception as err:  # noqa: BLE001 - any exception is judged
        raised = err
    after = {p for p in folder.rglob("*") if p.is_file()}
    left = sorted(str(p.relative_to(folder)) for p in after - set(before))
    left += sorted(str(p.relative_to(folder)) + "/" for p in
                   {p for p in folder.rglob("*") if p.is_dir()} - dirs_before)
    changed = [str(p.relative_to(folder)) for p in before if p.is_file() and p.read_bytes() != before[p]]
    if raised is None:
        return Outcome(SILENT, f"no error for a failed write; left {left or 'nothing'}")
    if left or changed:
        return Outcome(SILENT, f"{type(raised).__name__} raised, but left {left} behind"
                               + (f" and changed {changed}" if changed else ""))
    return verdict_error(raised, [(target, folder)])


# -- the memory guard ------------------------------------------------------------------------------

def vm_bytes() -> int:
    """This process's virtual memory size."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _guarded_child(conn: Any, probe: Callable[..., Outcome], args: tuple, env: dict[str, str],
                   gib: int) -> None:
    os.environ.update(env)
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (gib << 30),
                                            resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        outcome = probe(*args)
        answer = (outcome.status, outcome.reason)
    except MemoryError as err:
        answer = (UNCLEAR, f"MemoryError under the {gib} GiB guard: {short(str(err))}")
    except BaseException:  # noqa: BLE001 - the probe itself failed: the parent raises it
        answer = ("error", traceback.format_exc())
    conn.send(answer)
    conn.close()


def guarded(probe: Callable[..., Outcome], *args: Any, timeout: float = 60.0, gib: int = GUARD_GIB
            ) -> Outcome:
    """``probe(*args)`` in a child process limited to its size + ``gib`` GiB of address space
    (``RLIMIT_AS``) and ``timeout`` seconds: a MemoryError, a kill or a timeout is ``unclear``.

    The child is forked from a forkserver, a fresh interpreter that has imported kinediff but run
    no parallel torch / OpenMP region (forking a process that has aborts the child). ``probe`` and
    ``args`` must pickle: a module-level function and paths or numbers."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["robust", "kinediff.cli", "kinediff.apps.jobs", "kinediff.apps.predict",
                                      "kinediff.data", "kinediff.posturehmr"])
    env = {k: v for k, v in os.environ.items() if k.startswith("KINEDIFF_")}
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_guarded_child, args=(send, probe, args, env, gib), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            child.kill()
            child.join()
            return Outcome(UNCLEAR, f"no answer within {timeout:.0f} s under the {gib} GiB memory guard "
                                    f"(killed): unbounded work or memory on a small input")
        try:
            status, reason = receive.recv()
        except EOFError:
            child.join()
            return Outcome(UNCLEAR, f"the guarded child died without an answer (exit code "
                                    f"{child.exitcode}) under the {gib} GiB guard")
    finally:
        receive.close()
    child.join()
    if status == "error":
        raise RuntimeError(f"the guarded probe {probe.__qualname__} failed to run:\n{reason}")
    return Outcome(status, reason)


# -- fixtures in the released file formats ---------------------------------------------------------

GOOD_SEQ, BAD_SEQ = "a_good_00", "b_bad_00"
#: data-set samples small and cheap: 32-pixel crops, the ~108-vertex coarse mesh
SMALL = {"image_size": 32, "mesh_factors": (4, 4, 4)}


def load_pkl(path: Path) -> Any:
    return pickle.loads(path.read_bytes(), encoding="latin1")


def save_pkl(path: Path, data: Any) -> None:
    path.write_bytes(pickle.dumps(data, protocol=2))


class Fixtures:
    """The robust tests' fixtures, each built on first use under ``work``: a body, the tiny model
    and its saved folder, and small data sets written by :mod:`kinediff.testing` (3DPW with two
    sequences, ``a_good_00`` and ``b_bad_00``, the one a test spoils; Human3.6M; SURREAL; COCO;
    UP-3D). A test that damages one works on :meth:`copy_of` it."""

    def __init__(self, work: Path, body: Any, cache: Path) -> None:
        self.work, self.body, self.cache = work, body, cache
        self._count = 0

    def fresh(self, label: str) -> Path:
        """A new empty folder."""
        self._count += 1
        (self.work / "cases").mkdir(parents=True, exist_ok=True)
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:60]
        return Path(tempfile.mkdtemp(prefix=f"{self._count:04d}_{label}_", dir=self.work / "cases"))

    def copy_of(self, src: Path, label: str) -> Path:
        """A copy of the folder ``src`` in a :meth:`fresh` folder."""
        dst = self.fresh(label) / src.name
        shutil.copytree(src, dst)
        return dst

    def _built(self, name: str, build: Callable[[Path], Any]) -> Path:
        path = self.work / "fixtures" / name
        path.mkdir(parents=True)
        build(path)
        return path

    # the tiny model -------------------------------------------------------------------------------

    @cached_property
    def model(self):
        from kinediff import PostureHMR, PostureHMRConfig

        return PostureHMR(PostureHMRConfig.tiny(), self.body).eval()

    @cached_property
    def model_dir(self) -> Path:
        return self.model.save_pretrained(self.work / "fixtures" / "model")

    @cached_property
    def checkpoint(self) -> Path:
        """A checkpoint of the tiny model, as ``kinediff train`` writes (stage and config)."""
        from kinediff.training import save_checkpoint

        path = self.work / "fixtures" / "checkpoint" / "3d_last.pt"
        save_checkpoint(path, self.model, stage="3d", config=self.model.config.to_json())
        return path

    @cached_property
    def synthetic_pkl(self) -> Path:
        """The synthetic body's model file in the cache (an SMPL pickle)."""
        from kinediff.body import synthetic_model_path

        return Path(synthetic_model_path(0, self.cache))

    # data sets ------------------------------------------------------------------------------------

    @cached_property
    def pw3d(self) -> Path:
        """3DPW raw (two sequences of three frames), its COCO-style file and a SPIN-style npz."""
        return self._built("pw3d", self._write_pw3d)

    def _write_pw3d(self, root: Path) -> None:
        from kinediff.data import PW3D, convert_3dpw
        from kinediff.testing import write_3dpw_raw

        write_3dpw_raw(root, self.body, frames=3, sequence=GOOD_SEQ)
        seq_dir = root / "sequenceFiles" / "test"
        data = load_pkl(seq_dir / f"{GOOD_SEQ}.pkl")
        data["sequence"] = BAD_SEQ
        save_pkl(seq_dir / f"{BAD_SEQ}.pkl", data)
        shutil.copytree(root / "imageFiles" / GOOD_SEQ, root / "imageFiles" / BAD_SEQ)
        convert_3dpw(root, root, "test", body=self.body)
        records = PW3D(root, "test", body=self.body, **SMALL).records
        boxes = [r.box for r in records]
        np.savez(root / "spin_test.npz", imgname=np.array([str(r.image.relative_to(root)) for r in records]),
                 center=np.array([[b[0] + b[2] / 2, b[1] + b[3] / 2] for b in boxes]),
                 scale=np.array([max(b[2], b[3]) * 1.2 / 200 for b in boxes]),
                 pose=np.stack([r.pose for r in records]), shape=np.stack([r.betas for r in records]),
                 gender=np.array(["f"] * len(records)))

    @cached_property
    def pw3d_records(self) -> list:
        from kinediff.data import PW3D

        return PW3D(self.pw3d, "test", body=self.body, **SMALL).records

    @cached_property
    def good_image(self) -> Path:
        return self.pw3d / "imageFiles" / GOOD_SEQ / "image_00000.jpg"

    @cached_property
    def h36m(self) -> Path:
        from kinediff.testing import write_h36m

        return self._built("h36m", lambda root: write_h36m(root, self.body))

    @cached_property
    def surreal(self) -> Path:
        from kinediff.testing import write_surreal_raw

        return self._built("surreal", lambda root: write_surreal_raw(root, self.body, clips=2, frames=2))

    @cached_property
    def coco(self) -> Path:
        from kinediff.testing import write_coco

        return self._built("coco", lambda root: write_coco(root, self.body))

    @cached_property
    def up3d(self) -> Path:
        from kinediff.testing import write_up3d

        return self._built("up3d", lambda root: write_up3d(root, self.body))

    # folders nobody can write into ----------------------------------------------------------------

    @contextlib.contextmanager
    def unwritable_dir(self, label: str) -> Iterator[Path]:
        """An existing folder nobody can write into: chmod 0o555 for a user, ``chattr +i`` for
        root (permissions do not bind root); where neither holds, the write test every output
        check makes (``tempfile.mkstemp`` in the folder) fails there with EACCES, as the file system
        would."""
        path = self.fresh(label) / "locked"
        path.mkdir()
        root = os.geteuid() == 0
        if root:
            subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        else:
            path.chmod(0o555)
        try:
            try:
                (path / ".probe").write_text("x")
            except OSError:
                yield path
            else:
                (path / ".probe").unlink()
                with _refusing_writes_in(path):
                    yield path
        finally:
            if root:
                subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
            path.chmod(0o755)


@contextlib.contextmanager
def _refusing_writes_in(folder: Path) -> Iterator[None]:
    original = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any):
        where = kwargs.get("dir", args[2] if len(args) > 2 else None)
        if where is not None and Path(where) == folder:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
        return original(*args, **kwargs)

    with mock.patch.object(tempfile, "mkstemp", mkstemp):
        yield
