"""The benchmark scripts run: every one parses its arguments (imports included), and the success-rate
script measures real frames."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_help(script):
    r = _run([str(script), "--help"])
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout


@pytest.mark.shared
def test_success_rate_on_real_frames(shared_data):
    r = _run(["benchmarks/success_rate.py", "--trackers", "metartt,metartt-prune", "--sequences", "Boy",
              "--frames", "6"], env={"METARTT_DATA": str(shared_data)})
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[2:]}
    assert set(rows) == {"Boy", "mean"}
    rates = [float(v) for v in rows["Boy"]]
    assert len(rates) == 2 and all(0.0 <= v <= 1.0 for v in rates)
    # 5 update frames: each rate is a multiple of 1/5
    assert all(abs(v * 5 - round(v * 5)) < 0.011 for v in rates)
    assert rows["mean"] == rows["Boy"]
