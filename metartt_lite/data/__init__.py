"""Sequences: the OTB-layout readers and the Sequence view (:mod:`.sequences`, re-exported here), the embedded
sample videos (:mod:`.samples`) and GOTURN-style synthetic clips (:mod:`.synthetic`)."""
from .sequences import *  # noqa: F401,F403  (the package's main module; see its __all__)
