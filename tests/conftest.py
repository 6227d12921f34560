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
