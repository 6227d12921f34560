"""metartt_lite: a compact PyTorch implementation of MetaRTT (Jung et al., AAAI 2020).

Conventions used everywhere in the package:

* A frame is a ``numpy.ndarray`` of dtype uint8, shape (H, W, 3), RGB. Readers convert grayscale and
  RGBA input once, at the reader.
* A box is ``[x, y, w, h]`` in **0-based** pixel coordinates (top-left corner, width, height), float.
  OTB ground truth is 1-based; ``data.read_otb_groundtruth`` subtracts 1 once, and writers that emit
  OTB files add it back.
"""
__version__ = "0.1.0"

from .core.threads import configure_threads, default_wait_policy  # noqa: E402  (imports no torch)

default_wait_policy()  # OMP_WAIT_POLICY=PASSIVE before torch loads (core/threads.py says why)

from .core.utils import device, seed_everything, MetaRTTError  # noqa: E402
from .track.peers import Tracker  # noqa: E402
from .track.registry import list_trackers, make_tracker  # noqa: E402

__all__ = ["device", "seed_everything", "MetaRTTError", "__version__", "Tracker", "make_tracker", "list_trackers",
           "configure_threads"]
