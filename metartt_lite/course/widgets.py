"""The notebooks' widgets and their static companions.

Every widget here is a thin shell (sliders, a dropdown, a Play button, an ``Output``) around a **plain
function** that takes ordinary values and returns numbers or a figure. The notebooks show the widget for
a reader with a kernel *and* the static companion (a matplotlib figure or a plotly figure, which render
in a saved notebook or an HTML export without any kernel); the tests call the plain functions directly.

Widget (needs a kernel) → the plain function it calls → its static companion:

* :func:`learning_rate_widget` → :func:`plot_learning_rates` (:func:`lr_summary` for the numbers)
  → :func:`learning_rate_figure`
* :func:`episode_widget` → the notebook's ``show(episode, seed)`` → :func:`episode_overview`,
  :func:`episode_grid`
* :func:`triplet_widget` → the notebook's ``show(gamma, xi)`` → :func:`unit_circle_grid`
* :func:`mask_threshold_widget` → :func:`mask_threshold_effect`, :func:`plot_mask_threshold` → the same
  plot for every τ
* :func:`tracking_player` → :func:`draw_boxes` → :func:`tracking_strip`
* :func:`upload_widget` → :func:`track_uploaded` → :func:`tracking_strip`

Static figures without a widget: :func:`architecture_figure` / :func:`algorithm1_markdown` (01, from the
package's own network and configuration), :func:`episode_figures` (01), :func:`inner_loop_figure` (02),
:func:`online_loop_figure` (06), :func:`seeds_per_video_figure`, :func:`per_sequence_figure`,
:func:`ci_width_figure`, :func:`bootstrap_figure` (07). Each notebook's figures live in their own module
(``common``, ``nb01_episodes`` … ``nb07_evaluation``); this module re-exports them all.

Conventions: steps ``k`` are **1-based** as in the paper's Eqs. 2–3 (``rates[k - 1]`` is α^k); boxes are
0-based ``[x, y, w, h]``; frames uint8 RGB. Nothing in the package imports this module; ipywidgets is
imported lazily, so the plain functions work without it (as are IPython, matplotlib and plotly: optional
notebook extras, lazy on purpose).
"""
from __future__ import annotations

from .common import *  # noqa: F401,F403
from .common import __all__ as _all_common
from .common import _callback_figures, _color, _hex, _png, _show  # noqa: F401  (used by notebooks and tests)
from .nb01_episodes import *  # noqa: F401,F403
from .nb01_episodes import __all__ as _all_nb01_episodes
from .nb02_inner_loop import *  # noqa: F401,F403
from .nb02_inner_loop import __all__ as _all_nb02_inner_loop
from .nb03_triplet_loss import *  # noqa: F401,F403
from .nb03_triplet_loss import __all__ as _all_nb03_triplet_loss
from .nb05_pruning_masks import *  # noqa: F401,F403
from .nb05_pruning_masks import __all__ as _all_nb05_pruning_masks
from .nb06_tracking import *  # noqa: F401,F403
from .nb06_tracking import __all__ as _all_nb06_tracking
from .nb07_evaluation import *  # noqa: F401,F403
from .nb07_evaluation import __all__ as _all_nb07_evaluation

__all__ = [*_all_common, *_all_nb01_episodes, *_all_nb02_inner_loop, *_all_nb03_triplet_loss, *_all_nb05_pruning_masks, *_all_nb06_tracking, *_all_nb07_evaluation,
           "SequenceView"]
from ..data.sequences import SequenceView  # noqa: E402,F401  (as before the split)
