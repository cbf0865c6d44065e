"""The robustness harness itself (tests/robust.py): how outcomes are classified, that an accepted
unclear or silent outcome needs its reason, that the session fails when a category holds more
outcomes than documented, and that the memory guard stops what allocates or runs without bound."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from types import SimpleNamespace

import conftest
import numpy as np
import pytest
import robust
from robust import CLEAR, OK, SILENT, UNCLEAR, Outcome, cli_verdict, expect, guarded, refusal, verdict_error

pytestmark = pytest.mark.robust


@pytest.mark.parametrize(("err", "names", "status"), [
    (ValueError("/data/x.json annotations[3]: key 'bbox' holds 1 NaN"), [Path("x.json"), ("bbox", "box")], CLEAR),
    (FileNotFoundError(2, "No such file", "/data/x.json"), [Path("x.json")], CLEAR),  # named by filename
    (pickle.UnpicklingError("refusing global 'os.system' in seq.pkl"), [Path("seq.pkl")], CLEAR),
    (ValueError("key 'bbox' holds 1 NaN"), [Path("x.json"), ("bbox",)], UNCLEAR),  # the file unnamed
    (ValueError("camera 4: key 'f' must hold positive focal lengths"), [("f",)], CLEAR),
    (ValueError("the focal lengths must be positive"), [("f",)], UNCLEAR),  # "f" only as a key
    (KeyError("bbox"), [("bbox",)], UNCLEAR),  # not a user error
    (RuntimeError("bbox is NaN"), [("bbox",)], UNCLEAR),
    (MemoryError("bbox"), [("bbox",)], UNCLEAR),
])
def test_an_error_is_clear_when_of_a_user_error_type_naming_the_thing(err, names, status):
    assert verdict_error(err, names).status == status


def test_an_accepted_input_is_silent_unless_judged():
    assert refusal(lambda: np.full(3, np.nan), []).status == SILENT
    assert "NON-FINITE" in refusal(lambda: np.full(3, np.nan), []).reason
    assert refusal(lambda: 1, [], lambda value: Outcome(OK, "documented")).status == OK


@pytest.mark.parametrize(("code", "err", "status"), [
    (2, "kinediff: error: /x/photo.jpg is not a readable image\n", CLEAR),
    (2, "kinediff: error: not a readable image\n", UNCLEAR),
    (1, "Traceback (most recent call last):\n  ...\nValueError: /x/photo.jpg\n", UNCLEAR),
    (0, "", SILENT),
])
def test_a_command_is_clear_when_it_fails_naming_the_thing_without_a_traceback(code, err, status):
    assert cli_verdict(code, "", err, [Path("photo.jpg")]).status == status


def test_expect_asserts_the_status_and_an_accepted_one_needs_its_reason(monkeypatch):
    monkeypatch.setattr(robust, "RESULTS", [])
    expect(Outcome(CLEAR, "named"))
    with pytest.raises(AssertionError, match="expected clear, got silent: wrong"):
        expect(Outcome(SILENT, "wrong"))
    with pytest.raises(ValueError, match="needs the reason it is accepted"):
        expect(Outcome(SILENT, "wrong"), SILENT)
    expect(Outcome(SILENT, "wrong"), SILENT, because="documented")
    assert [status for _, status in robust.RESULTS] == [CLEAR, SILENT, SILENT]  # every outcome counted


class Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, title: str) -> None:
        self.lines.append(f"== {title}")

    def line(self, text: str, **markup) -> None:
        self.lines.append(text)


def test_the_session_fails_when_a_category_holds_more_than_documented(monkeypatch):
    allowed = robust.DOCUMENTED[SILENT]
    monkeypatch.setattr(robust, "RESULTS", [("t::a", CLEAR)] + [(f"t::s{i}", SILENT) for i in range(allowed)])
    session = SimpleNamespace(exitstatus=pytest.ExitCode.OK)
    conftest.pytest_sessionfinish(session)
    assert session.exitstatus == pytest.ExitCode.OK and robust.over_documented() == {}
    robust.RESULTS.append(("t::one_more", SILENT))
    conftest.pytest_sessionfinish(session)
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert robust.over_documented() == {SILENT: allowed + 1}
    reporter = Reporter()
    robust.terminal_summary(reporter)
    assert reporter.lines[0] == "== robust outcomes"
    assert reporter.lines[1].startswith(f"clear 1  ok 0  unclear 0 (documented: 0)  silent {allowed + 1}")
    assert any(line.startswith(f"FAILED: {allowed + 1} robust outcomes are silent") for line in reporter.lines)
    assert "  t::one_more" in reporter.lines


def _allocate(gib: float) -> Outcome:
    a = np.ones(int(gib * (1 << 30)) // 8)
    return Outcome(CLEAR, f"allocated {a.nbytes} bytes")


def _sleep(seconds: float) -> Outcome:
    time.sleep(seconds)
    return Outcome(CLEAR, "slept")


def test_the_memory_guard_stops_what_allocates_or_runs_without_bound():
    assert guarded(_allocate, 0.25).status == CLEAR  # within the guard
    over = guarded(_allocate, robust.GUARD_GIB + 1.0)
    assert over.status == UNCLEAR and "MemoryError" in over.reason
    late = guarded(_sleep, 30.0, timeout=2.0)
    assert late.status == UNCLEAR and "no answer within 2 s" in late.reason
