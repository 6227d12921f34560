"""The package's CPU thread policy: one torch thread, and OpenMP threads that sleep instead of spinning.

Measured on this project's 2-core machine (``benchmarks/threads.py``; ``docs/results/threads/``): while other
jobs use the cores, torch's default (2 threads, libgomp spinning while it waits) tracked 4.7 FPS where one
thread tracked 36 (``metartt-prune``); 2 spinning threads are the fastest only at a quiet moment (72 vs 56).
One thread has the best worst case, so it is the default; passive waiting keeps a user who asks for 2 threads
on a busy machine out of the stall.

* ``threads``: the ``threads=`` argument (``make_tracker``, ``--threads``), else ``METARTT_THREADS``, else
  ``OMP_NUM_THREADS`` (a user's own OpenMP setting, e.g. under torchrun), else :data:`DEFAULT_THREADS` (1).
  Applied with ``torch.set_num_threads``, which is process-wide.
* ``OMP_WAIT_POLICY=PASSIVE`` unless the variable is already set: OpenMP reads it once, when torch loads,
  so ``metartt_lite/__init__.py`` sets it before importing torch (:func:`default_wait_policy`); in a
  process that imported torch first it has no effect (set it in the shell then).
"""
from __future__ import annotations

import os
import sys

from .errors import MetaRTTError

__all__ = ["DEFAULT_THREADS", "THREADS_ENV", "default_wait_policy", "resolve_threads", "configure_threads"]

DEFAULT_THREADS = 1
THREADS_ENV = "METARTT_THREADS"


def default_wait_policy() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when unset and torch is not loaded yet; True when it was set here."""
    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def resolve_threads(threads: int | str | None = None) -> int:
    """The thread count to use: ``threads``, else ``$METARTT_THREADS``, else ``$OMP_NUM_THREADS``, else
    :data:`DEFAULT_THREADS`."""
    what = "threads"
    if threads is None or threads == "":
        threads = os.environ.get(THREADS_ENV) or None
        what = THREADS_ENV
    if threads is None and os.environ.get("OMP_NUM_THREADS"):  # the user's own OpenMP setting stands
        threads, what = os.environ["OMP_NUM_THREADS"], "OMP_NUM_THREADS"
    if threads is None:
        return DEFAULT_THREADS
    try:
        n = int(threads)
    except (TypeError, ValueError):
        raise MetaRTTError(f"{what} {threads!r} is not a whole number of threads") from None
    if n < 1:
        raise MetaRTTError(f"{what} must be at least 1, got {n}")
    return n


def configure_threads(threads: int | str | None = None) -> int:
    """Resolve the thread count (:func:`resolve_threads`) and apply it to torch (process-wide); returns it."""
    import torch
    n = resolve_threads(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
