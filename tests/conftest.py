"""Shared pytest fixtures, and the CI rule: under ``CI=true`` a skipped test fails the run.

A skip hides a test that did not run (no browser, no ../shared/data, ...); locally that is a
convenience, in CI it would let a missing dependency pass unnoticed. So when the environment variable
``CI`` is ``true``, every skip (test or module level; not xfail) is listed with its reason at the end
and the exit status is 1."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (read-only): $METARTT_DATA or ../shared/data beside the repository."""
    env = os.environ.get("METARTT_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not (path / "sequences.json").is_file():
        pytest.skip("../shared/data not found: set METARTT_DATA")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread for the whole test run: on a shared 2-core machine OpenMP spin-waiting made
    two threads ~20x slower, and the tests' numbers do not depend on the thread count."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------------------ CI: skips fail the run
def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


_SKIPS: list[tuple[str, str]] = []


def _skip_reason(report) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:   # (file, line, "Skipped: reason")
        return f"{lr[2]} ({lr[0]}:{lr[1]})"
    return str(lr)


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPS.append((report.nodeid, _skip_reason(report)))


def pytest_collectreport(report):
    if report.skipped:
        _SKIPS.append((report.nodeid, _skip_reason(report)))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _ci() and _SKIPS and session.exitstatus in (0, 5):  # 5: nothing ran (all skipped at collection)
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _ci() and _SKIPS:
        terminalreporter.section("CI=true: skipped tests fail the run", sep="=", red=True, bold=True)
        for nodeid, reason in _SKIPS:
            terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
