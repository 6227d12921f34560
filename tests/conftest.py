"""Shared pytest fixtures."""
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
