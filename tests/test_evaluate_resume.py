"""A killed ``evaluate`` continues where it stopped (issue 27, item 6): each finished sequence × tracker × seed
is written at once under ``OUT/runs/``; the process is SIGKILLed after the first of them (a real subprocess,
a real kill), the same command run again reuses what was finished, prints one line per finished
sequence under ``-q``, and its ``results.json`` equals an uninterrupted run's in everything but the timings.
(``reproduce`` evaluates through the same ``evaluate`` call; its training steps resumed already.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metartt_lite.data.samples import make_sample, write_sample_as_otb
from metartt_lite.evaluation.ope import RunStore

REPO = Path(__file__).resolve().parents[1]
TIMING = {"fps", "fps_with_init", "fps_e2e", "init_time", "update_time", "decode_time", "decode_time_updates",
          "wall_time", "created"}
SEQS = {"seqA": ("translation", 0), "seqB": ("scale", 1), "seqC": ("occlusion", 2)}
RUNS = len(SEQS) * (1 + 2)  # kcf once (deterministic), rtmdnet-k5 with seeds 0 and 1


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("resume_data")
    for name, (preset, seed) in SEQS.items():
        write_sample_as_otb(make_sample(preset, seed=seed, n_frames=16, size=(160, 120)), r / name)
    return r


def _cmd(root: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "metartt_lite", "evaluate", "--data", str(root), "--trackers", "kcf,rtmdnet-k5",
            "--seeds", "0,1", "--out", str(out), "-q", "--device", "cpu"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "METARTT_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _strip(x):
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in TIMING}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def test_killed_evaluate_resumes_and_equals_a_straight_run(root, tmp_path):
    straight = tmp_path / "straight"
    r = subprocess.run(_cmd(root, straight), env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] for ln in lines] == ["[1/3", "[2/3", "[3/3"], r.stderr  # -q: one line per sequence
    assert "AUC kcf" in lines[0] and "rtmdnet-k5" in lines[0]
    assert not (straight / "runs").exists()  # finished: the partial runs are gone

    out = tmp_path / "killed"
    p = subprocess.Popen(_cmd(root, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    try:
        while time.time() - t0 < 300:
            done = list((out / "runs").glob("*/*.json")) if (out / "runs").exists() else []
            if done:
                break
            if p.poll() is not None:
                pytest.fail("evaluate ended before it could be killed")
            time.sleep(0.02)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert not (out / "results.json").exists(), "the kill came too late: nothing left to resume"
    saved = list((out / "runs").glob("*/*.json"))
    assert 1 <= len(saved) < RUNS
    # every saved file is complete (atomic writes): it loads
    store = RunStore(saved[0].parent)
    for f in saved:
        seq, tracker, seed = f.stem.split("__")
        assert store.load(seq, tracker, int(seed)) is not None, f

    r = subprocess.run(_cmd(root, out), env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "resumed" in r.stderr, r.stderr
    a = json.loads((straight / "results.json").read_text())
    b = json.loads((out / "results.json").read_text())
    assert _strip(a["trackers"]) == _strip(b["trackers"])
    assert _strip(a["config"]) == {**_strip(b["config"]), "out": a["config"]["out"]}
    assert not (out / "runs").exists()
