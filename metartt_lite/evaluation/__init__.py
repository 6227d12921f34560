"""OPE evaluation (:mod:`.ope`, re-exported here), paired comparisons (:mod:`.compare`) and the
paper's tables (:mod:`.reproduce`)."""
from .ope import *  # noqa: F401,F403  (the package's main module; see its __all__)
