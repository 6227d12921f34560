"""The thread policy (issue 27, item 1; measurements in benchmarks/threads.py, never timed here): 1 torch
thread unless ``threads=`` / ``--threads`` / ``METARTT_THREADS`` says otherwise, and OpenMP's passive wait
set before torch loads, unless the user set it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metartt_lite import cli, make_tracker
from metartt_lite.core.threads import DEFAULT_THREADS, configure_threads, resolve_threads
from metartt_lite.core.utils import MetaRTTError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    monkeypatch.delenv("METARTT_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_resolve_order_and_errors(monkeypatch):
    assert DEFAULT_THREADS == 1 and resolve_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own OpenMP setting, e.g. under torchrun
    assert resolve_threads() == 3
    monkeypatch.setenv("METARTT_THREADS", "2")
    assert resolve_threads() == 2 and resolve_threads(3) == 3 and resolve_threads("4") == 4
    for bad in ("0", "-1", "two"):
        with pytest.raises(MetaRTTError, match="threads"):
            resolve_threads(bad)
    monkeypatch.setenv("METARTT_THREADS", "x")
    with pytest.raises(MetaRTTError, match="METARTT_THREADS"):
        resolve_threads()


def test_make_tracker_applies_the_policy(monkeypatch):
    torch.set_num_threads(2)
    make_tracker("kcf")
    assert torch.get_num_threads() == 1  # the default
    make_tracker("kcf", threads=2)
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("METARTT_THREADS", "1")
    make_tracker("kcf")
    assert torch.get_num_threads() == 1
    assert configure_threads(2) == 2 and torch.get_num_threads() == 2


def test_every_torch_command_takes_threads(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        opts = {o for a in p._actions for o in a.option_strings}
        if "--device" in opts or name in ("demo", "track", "evaluate", "pick-box"):
            assert "--threads" in opts, name
    rc = cli.main(["pick-box", "--seq", "nowhere.mp4", "--threads", "0"])
    _, err = capsys.readouterr()
    assert rc == 2 and err.strip() == "error: threads must be at least 1, got 0"


def test_passive_wait_is_set_before_torch_loads_unless_given():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(REPO)
    code = "import metartt_lite, os, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "PASSIVE", r.stderr
    r = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True,
                       text=True, timeout=300)
    assert r.stdout.strip() == "ACTIVE"
    # torch first: too late for OpenMP, so the package leaves the environment alone
    r = subprocess.run([sys.executable, "-c", "import torch, metartt_lite, os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == "None"
