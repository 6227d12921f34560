"""The network: trunk + shared conv + RoIAlign + fc4–fc6 (:mod:`.net`, re-exported here), the pruning
network ψ (:mod:`.pruning_net`) and channel surgery for pruning (:mod:`.surgery`)."""
from .net import *  # noqa: F401,F403  (the package's main module; see its __all__)
