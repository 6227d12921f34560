"""Small shared helpers: the one device() switch, seeding, atomic writes, the user-facing error type."""
from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


from .errors import MetaRTTError  # defined without torch (core/threads.py loads before torch); re-exported


def parse_device(name: str | torch.device) -> torch.device:
    """``name`` ('cpu', 'cuda', 'cuda:1', 'mps', ...) as a torch.device that exists on this machine;
    anything else is a one-line :class:`MetaRTTError` (the ``--device`` options and ``METARTT_DEVICE``)."""
    if isinstance(name, torch.device):
        dev = name
    else:
        try:
            dev = torch.device(str(name).strip())
        except (RuntimeError, ValueError):
            raise MetaRTTError(f"device {name!r} is not a device name; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise MetaRTTError(f"device {name!r}: CUDA is not available here (torch {torch.__version__}); use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise MetaRTTError(f"device {name!r}: there are only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise MetaRTTError(f"device {name!r}: MPS is not available here; use cpu")
    return dev


def device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``prefer`` if given, else ``METARTT_DEVICE`` if set, else CUDA when present,
    else CPU. A name that is not a device on this machine raises :class:`MetaRTTError`."""
    name = prefer or os.environ.get("METARTT_DEVICE")
    if name:
        return parse_device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


DEVICE_HELP = "cpu, cuda, cuda:N or mps (default: $METARTT_DEVICE, else cuda when available, else cpu)"


def add_device_argument(parser: Any) -> None:
    """The ``--device`` option of the commands that build networks (the CLI sets ``METARTT_DEVICE`` from it)."""
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    add_threads_argument(parser)


def add_threads_argument(parser: Any) -> None:
    """The ``--threads`` option (torch CPU threads; the CLI applies it, see ``core/threads.py``)."""
    parser.add_argument("--threads", default=None,
                        help="torch CPU threads (default $METARTT_THREADS, else 1: fastest on a busy machine; "
                             "see the README, 'Threads')")


def dist_backend(dev: torch.device) -> str:
    """The torch.distributed backend for a process computing on ``dev``: NCCL only for CUDA, else Gloo."""
    return "nccl" if torch.device(dev).type == "cuda" else "gloo"


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a NumPy Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def cache_dir() -> Path:
    """The project's cache folder (``METARTT_CACHE`` or ``~/.cache/metartt_lite``); never beside the data."""
    path = Path(os.environ.get("METARTT_CACHE", Path.home() / ".cache" / "metartt_lite"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse an output folder that cannot be one (it, or its nearest existing parent, is a file), before
    any work is done: otherwise the first checkpoint write fails only after training."""
    p = Path(path).expanduser()
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise MetaRTTError(f"{what} {p}: {q} exists and is not a folder")
            break
    return p


def fmt_value(v: Any, spec: str = ".3f") -> str:
    """``format(v, spec)``, or ``n/a`` for a missing (None) value: the tables' and summaries' numbers."""
    return "n/a" if v is None else format(v, spec)


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete the temp files an interrupted :func:`atomic_write` of ``path`` left behind
    (``.NAME.*.tmp`` beside it); returns how many were removed."""
    path = Path(path)
    n = 0
    for tmp in path.parent.glob(f".{path.name}.*.tmp") if path.parent.is_dir() else []:
        tmp.unlink(missing_ok=True)
        n += 1
    return n


def atomic_write(path: str | os.PathLike, writer: Callable[[str], Any]) -> Path:
    """Call ``writer(tmp_path)`` then rename onto ``path``: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
    return atomic_write(path, _w)


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def git_commit() -> str:
    """The current git commit of the project, or 'unknown'."""
    import subprocess
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def git_dirty() -> bool | None:
    """True when the project's work tree has uncommitted changes to tracked files (None: not a git checkout)."""
    import subprocess
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return bool(out.stdout.strip()) if out.returncode == 0 else None
    except Exception:
        return None


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-4`` -> a list of distinct ints."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                seeds += list(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise MetaRTTError(f"seeds {text!r}: expected comma-separated integers, e.g. 0,1,2 or 0-2") from None
    if not seeds:
        raise MetaRTTError(f"seeds {text!r}: no seed given")
    if len(set(seeds)) != len(seeds):
        raise MetaRTTError(f"seeds {text!r}: a seed is listed twice")
    return seeds
