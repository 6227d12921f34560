"""Long-run memory: tracking a long sequence keeps the sample memories at their bounds and the process's
resident memory flat (no tensors, graphs or per-frame records piling up).

``rtmdnet-k5-tuned`` (cheap first frame, ``long_interval`` 5 so a long-term update runs every 5th frame)
tracks a generated 300-frame video played forwards then backwards: 600 updates. RSS is read from
``/proc/self/status`` (VmRSS) after update 100 and after the last one, after ``gc.collect()`` and glibc's
``malloc_trim(0)`` (freed heap pages go back to the OS, so RSS follows live memory rather than the
allocator's cache; measured without the trim, RSS wanders by ±60 MB and then plateaus, with a constant
number of live tensors). The number of live torch tensors must not change either.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import time
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from metartt_lite.track import presets
from metartt_lite.data import samples
from metartt_lite.model.net import build_net
from metartt_lite.track.rtmdnet import RTMDNetTracker

CPU = torch.device("cpu")
CFG = replace(presets.RTMDNET_K5_TUNED, n_pos_init=100, n_neg_init=300, init_augment_crops=0, long_interval=5)
N_UPDATES = 600
RSS_GROWTH_LIMIT_MB = 50.0




def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


MALLOC_TRIM = _malloc_trim()


def rss_mb(trim: bool = True) -> float:
    """Resident set size of this process (MB), from /proc/self/status."""
    gc.collect()
    if trim and MALLOC_TRIM is not None:
        MALLOC_TRIM(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS line")


def live_tensors() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # touching some deprecated torch objects warns
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_long_sequence_memory_is_bounded():
    video = samples.make_sample("translation", seed=0, n_frames=300, size=(160, 120))
    frames = video.frames + video.frames[-2:0:-1]  # ping-pong: no jump at the turn
    frames = (frames * (-(-(N_UPDATES + 1) // len(frames))))[: N_UPDATES + 1]
    tracker = RTMDNetTracker(build_net(dev=CPU, seed=0), CFG, name="rtmdnet-k5-tuned", seed=0, dev=CPU)
    tracker.init(frames[0], video.init_box)
    t0 = time.perf_counter()
    rss, max_pos, max_neg, long_updates, successes = {}, 0, 0, 0, 0
    for i, f in enumerate(frames[1:], start=1):
        box, score = tracker.update(f)
        assert np.all(np.isfinite(box)) and np.isfinite(score)
        successes += score > CFG.success_thr
        long_updates += i % CFG.long_interval == 0
        max_pos, max_neg = max(max_pos, len(tracker.pos_mem)), max(max_neg, len(tracker.neg_mem))
        if i == 100:
            raw100, rss[100], tensors100 = rss_mb(trim=False), rss_mb(), live_tensors()
    raw_end, rss[N_UPDATES], tensors_end = rss_mb(trim=False), rss_mb(), live_tensors()
    elapsed = time.perf_counter() - t0
    print(f"\n{N_UPDATES} updates in {elapsed:.1f} s; successes {successes}; pos_mem max {max_pos}, "
          f"neg_mem max {max_neg}; RSS after update 100: {rss[100]:.1f} MB, after {N_UPDATES}: "
          f"{rss[N_UPDATES]:.1f} MB (delta {rss[N_UPDATES] - rss[100]:+.1f} MB; untrimmed {raw100:.1f} -> "
          f"{raw_end:.1f} MB); live tensors {tensors100} -> {tensors_end}")
    assert max_pos <= CFG.n_frames_long and max_neg <= CFG.n_frames_short
    # the bounds were reached, so they are what held the memories (not a lack of successful frames)
    assert len(tracker.pos_mem) == CFG.n_frames_long and len(tracker.neg_mem) == CFG.n_frames_short
    assert all(len(t) <= CFG.n_pos_update for t in list(tracker.pos_mem)[1:])
    assert all(len(t) <= CFG.n_neg_update for t in list(tracker.neg_mem)[1:])
    assert not any(t.requires_grad for t in list(tracker.pos_mem) + list(tracker.neg_mem))
    assert tensors_end <= tensors100, (tensors100, tensors_end)
    assert abs(rss[N_UPDATES] - rss[100]) < RSS_GROWTH_LIMIT_MB, rss
