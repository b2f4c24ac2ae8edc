"""LayerNAS search core in plain Python: no TensorFlow or Keras import.

Every searcher follows one ask/tell contract (see ``_base.BaseSearch``):
``ask()`` hands out a :class:`Candidate`, ``tell(candidate, score)`` reports its
score, ``best()`` gives the best in-target architecture, ``to_json()`` and
``from_json(text, cost_fn)`` save and restore the exact state.
"""
from __future__ import annotations

from keras_layernas.search._base import BaseSearch, Candidate, TrialRecord, as_maximized
from keras_layernas.search._evolution import RegularizedEvolution
from keras_layernas.search._layernas import LayerNAS
from keras_layernas.search._policy import BestFirst, Parent, RandomParent, SelectionPolicy
from keras_layernas.search._random import RandomSearch
from keras_layernas.search._target import Target, cheapest_arch

__all__ = [
    "BaseSearch",
    "BestFirst",
    "Candidate",
    "LayerNAS",
    "Parent",
    "RandomParent",
    "RandomSearch",
    "RegularizedEvolution",
    "SelectionPolicy",
    "Target",
    "TrialRecord",
    "as_maximized",
    "cheapest_arch",
]
