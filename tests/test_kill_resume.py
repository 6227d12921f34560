"""Crash safety of training: a run killed with SIGKILL (a real subprocess, a real kill) and resumed with
``resume=True`` ends with exactly the parameters of an uninterrupted run, for ``meta.meta_train`` and
``prune.prune_train``; and the checkpoint left behind by the kill always loads (atomic writes).

Each trainer is killed twice: once at a random moment after its ``*_last.pt`` reached step k (k drawn
from a seeded RNG in [2, 6]), and once in the middle of a checkpoint write (the driver writes checkpoints
in two halves with a pause between them, so the kill lands while the temporary file is half-written;
the real checkpoint beside it must still be the previous, complete one). The pauses only widen the
windows; they change no number. Tiny model and episodes: the whole module takes ~40 s on one core.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from metartt_lite.core.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
EPISODES = 8
RNG_SEED = 20240611

# The driver: 3 sample videos (14 frames, 160x120), a tiny ModelConfig and the small MetaConfig of
# tests/test_meta.py (episodes 8, meta_batch 1, checkpoint_every 1). ``SLOW_EPISODE`` /
# ``SLOW_WRITE`` (seconds) slow each episode down and split each checkpoint write in two halves with a
# pause between them (still written through the package's atomic temp-file + rename).
DRIVER = textwrap.dedent('''
    import io, os, sys, time
    from pathlib import Path

    import torch
    from metartt_lite.core import checkpoint, utils
    from metartt_lite.train import meta, prune
    from metartt_lite.model import surgery, pruning_net
    from metartt_lite.track import pruned
    from metartt_lite.core.config import ModelConfig
    from metartt_lite.train.episodes import EpisodeConfig
    from metartt_lite.data.samples import make_sample

    torch.set_num_threads(1)
    mode, out, resume = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "resume"
    slow_ep = float(os.environ.get("SLOW_EPISODE", "0"))
    slow_write = float(os.environ.get("SLOW_WRITE", "0"))

    if slow_ep:
        real_episode_loss = meta.episode_loss
        def episode_loss(*a, **k):
            time.sleep(slow_ep)
            return real_episode_loss(*a, **k)
        meta.episode_loss = episode_loss  # meta_gradient and prune_train look it up at call time
    if slow_write:
        def atomic_torch_save(path, obj):
            buf = io.BytesIO()
            torch.save(obj, buf)
            data = buf.getvalue()
            def writer(tmp):
                with open(tmp, "wb") as f:
                    f.write(data[: len(data) // 2])
                    f.flush()
                    os.fsync(f.fileno())
                    time.sleep(slow_write)  # a slow disk: the kill lands here, mid-file
                    f.write(data[len(data) // 2:])
            return utils.atomic_write(path, writer)
        checkpoint.atomic_torch_save = atomic_torch_save  # used by save_checkpoint (not the feature cache)

    presets = ["translation", "scale", "distractor"]
    seqs = []
    for i in range(3):
        v = make_sample(presets[i], seed=i, n_frames=14, size=(160, 120))
        v.name = f"{presets[i]}{i}"
        seqs.append(v)
    model_cfg = ModelConfig(crop_size=128, target_size=40.0, shared_channels=4, fc_width=8)
    ep = EpisodeConfig(n_pos=8, n_neg=24, n_pos_on=4, n_neg_on=8, n_hard=8, hard_frames=4, n_candidates=32)
    cfg = meta.MetaConfig(episodes=EPISODES, meta_batch=1, k_init=2, k_on=2, batch_neg=12, init_rate=0.05,
                          checkpoint_every=1, episode=ep, cache=meta.CacheConfig(frame_step=1))
    cpu = torch.device("cpu")
    if mode == "meta":
        meta.meta_train(seqs, out, cfg, model_cfg=model_cfg, resume=resume, progress=False, dev=cpu)
    else:
        pc = prune.PruneConfig(episodes=EPISODES, checkpoint_every=1, hidden=16, lr=1e-2, min_keep=1, meta=cfg)
        prune.prune_train(seqs, out, sys.argv[4], pc, model_cfg=model_cfg, resume=resume, progress=False, dev=cpu)
    print("done")
''').replace("EPISODES", str(EPISODES))

KINDS = {"meta": ("meta_last.pt", "meta.pt"), "prune": ("prune_last.pt", "prune.pt")}


class Driver:
    def __init__(self, tmp: Path):
        self.script = tmp / "driver.py"
        self.script.write_text(DRIVER)
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "METARTT_DEVICE": "cpu",
                    "METARTT_CACHE": str(tmp / "cache"),
                    "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.env.pop("SLOW_EPISODE", None)
        self.env.pop("SLOW_WRITE", None)
        self.logs = tmp

    def start(self, mode: str, out: Path, resume: bool, meta_ckpt: Path | None, slow: bool) -> subprocess.Popen:
        env = dict(self.env)
        if slow:
            env.update(SLOW_EPISODE="0.15", SLOW_WRITE="0.3")
        argv = [sys.executable, str(self.script), mode, str(out), "resume" if resume else "fresh"]
        if meta_ckpt is not None:
            argv.append(str(meta_ckpt))
        log = open(self.logs / f"{mode}-{out.name}-{time.monotonic_ns()}.log", "w")
        p = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        p.log_path = log.name  # type: ignore[attr-defined]
        log.close()
        return p

    def run(self, mode: str, out: Path, resume: bool = False, meta_ckpt: Path | None = None) -> None:
        p = self.start(mode, out, resume, meta_ckpt, slow=False)
        rc = p.wait(timeout=120)
        assert rc == 0, Path(p.log_path).read_text()[-3000:]


def last_step(path: Path) -> int:
    """The step recorded in a ``*_last.pt`` (-1 if it does not exist yet)."""
    if not path.exists():
        return -1
    return int(torch.load(path, map_location="cpu", weights_only=True)["extra"]["step"])


def temp_files(out: Path, name: str) -> list[Path]:
    return sorted(out.glob(f".{name}.*.tmp")) if out.exists() else []


def wait_until(p: subprocess.Popen, cond, what: str, timeout: float = 60.0) -> None:
    t_end = time.monotonic() + timeout
    while not cond():
        if p.poll() is not None:
            pytest.fail(f"the run ended (rc {p.returncode}) before {what}:\n{Path(p.log_path).read_text()[-3000:]}")
        if time.monotonic() > t_end:
            p.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def sigkill(p: subprocess.Popen) -> None:
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=30) == -signal.SIGKILL  # it really died of the kill, not of its own accord


def check_survivor(path: Path, kind: str, lo: int, hi: int) -> int:
    """The checkpoint left by the kill loads cleanly (format, kind, every tensor finite) at a step in [lo, hi]."""
    obj = load_checkpoint(path, kind=kind)
    assert "optimizer" in obj["extra"]
    assert all(torch.isfinite(t.float()).all() for t in obj["tensors"].values())
    step = obj["extra"]["step"]
    assert lo <= step <= hi, (step, lo, hi)
    return step


def kill_twice_and_resume(drv: Driver, mode: str, out: Path, k: int, rng: np.random.Generator,
                          meta_ckpt: Path | None = None) -> tuple[Path, tuple[int, int]]:
    """Run ``mode`` in ``out``, SIGKILL it twice (random moment after step k; mid-write), resume to the end."""
    last_name, final_name = KINDS[mode]
    last = out / last_name
    # kill 1: at a random moment after step >= k
    p = drv.start(mode, out, resume=False, meta_ckpt=meta_ckpt, slow=True)
    wait_until(p, lambda: last_step(last) >= k, f"step {k}")
    time.sleep(float(rng.uniform(0.0, 0.45)))  # ~ one slowed step: anywhere in an episode or a write
    sigkill(p)
    assert not (out / final_name).exists(), "the run finished before the kill; slow it down"
    s1 = check_survivor(last, mode, k, EPISODES - 1)
    # kill 2: in the middle of writing a checkpoint (the temporary file is half-written)
    k2 = min(s1 + 1 + int(rng.integers(0, 2)), EPISODES - 1)
    before = set(temp_files(out, last_name))
    p = drv.start(mode, out, resume=True, meta_ckpt=meta_ckpt, slow=True)
    wait_until(p, lambda: last_step(last) >= k2 - 1 and set(temp_files(out, last_name)) - before,
               f"the checkpoint write after step {k2 - 1}")
    sigkill(p)
    half = set(temp_files(out, last_name)) - before
    assert half, "no temporary file left: the kill did not land inside the write"
    assert not (out / final_name).exists()
    s2 = check_survivor(last, mode, k2 - 1, EPISODES - 1)  # the previous, complete checkpoint
    with pytest.raises(Exception):  # the half-written temp file is indeed not loadable
        torch.load(next(iter(half)), map_location="cpu", weights_only=True)
    # resume to the end
    drv.run(mode, out, resume=True, meta_ckpt=meta_ckpt)
    assert load_checkpoint(out / final_name)["extra"]["step"] == EPISODES
    return out / final_name, (s1, s2)


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = load_checkpoint(a)["tensors"], load_checkpoint(b)["tensors"]
    assert ta.keys() == tb.keys()
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted meta-train and prune-train runs (the prune run uses the reference meta.pt)."""
    tmp = tmp_path_factory.mktemp("killresume")
    drv = Driver(tmp)
    drv.run("meta", tmp / "meta_ref")
    drv.run("prune", tmp / "prune_ref", meta_ckpt=tmp / "meta_ref" / "meta.pt")
    return tmp, drv


def test_meta_train_killed_and_resumed_equals_straight_run(reference):
    tmp, drv = reference
    rng = np.random.default_rng([RNG_SEED, 0])
    k = int(rng.integers(2, 7))
    final, steps = kill_twice_and_resume(drv, "meta", tmp / "meta_killed", k, rng)
    assert_same_tensors(tmp / "meta_ref" / "meta.pt", final)


def test_prune_train_killed_and_resumed_equals_straight_run(reference):
    tmp, drv = reference
    rng = np.random.default_rng([RNG_SEED, 1])
    k = int(rng.integers(2, 7))
    meta_ckpt = tmp / "meta_ref" / "meta.pt"
    final, steps = kill_twice_and_resume(drv, "prune", tmp / "prune_killed", k, rng, meta_ckpt=meta_ckpt)
    assert_same_tensors(tmp / "prune_ref" / "prune.pt", final)
