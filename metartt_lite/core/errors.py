"""The user-facing error type, in a module that imports nothing (``core/threads.py`` runs before torch loads)."""
from __future__ import annotations

__all__ = ["MetaRTTError"]


class MetaRTTError(ValueError):
    """An error caused by the user's input (bad box, missing frame, corrupt checkpoint, ...).

    The CLI turns it into a one-line message and exit code 2.
    """
