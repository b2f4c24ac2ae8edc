"""The ask/tell contract shared by every searcher: candidates, bookkeeping, state.

A searcher proposes architectures (``ask``), learns their scores (``tell``) and
can be saved to JSON and restored mid-search. Everything that is the same for
LayerNAS and the baselines lives here, so the three only differ in *which*
architecture they propose next (``_propose``) and what they learn from a score
(``_observe``).
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from keras_layernas.search._target import Target

Arch = tuple
CostFn = Callable[[Arch], float]

STATE_FORMAT = "keras_layernas.search/1"


@dataclass(frozen=True)
class Candidate:
    """One architecture handed out by ``ask()``.

    Attributes:
        id: unique within the search; ``tell`` accepts it in place of the
            candidate (a tuner keeps trial id -> candidate id).
        arch: one option value per layer.
        indices: the position of each value in its layer's option list.
        layer: the layer this candidate was proposed for (LayerNAS: the last
            layer whose option it chose; later layers hold the base choice).
            The baselines choose every layer at once and report the last.
        cost: ``cost_fn(arch)``.
    """

    id: int
    arch: Arch
    indices: tuple
    layer: int
    cost: float


@dataclass(frozen=True)
class TrialRecord:
    """A told candidate: what was tried, what it cost and how it scored.

    Attributes:
        id: the candidate id.
        arch: one option value per layer.
        layer: the candidate's search layer.
        cost: ``cost_fn(arch)``.
        score: the told score; None when the trial failed.
    """

    id: int
    arch: Arch
    layer: int
    cost: float
    score: float | None


# ----------------------------------------------------------------- JSON values
def encode_value(value: Any) -> Any:
    """Encode an option value so that JSON gives back an equal, same-typed value.

    JSON has no tuples and turns every number into int or float, so tuples are
    tagged; other containers are refused rather than silently changed.

    Raises:
        TypeError: the value is not a str, int, float, bool, None or tuple.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        return {"tuple": [encode_value(v) for v in value]}
    raise TypeError(
        "Option values must be str, int, float, bool, None or tuples of those to be "
        f"saved as JSON. Received: {value!r} of type {type(value).__name__}. "
        "Use one of those types (e.g. a string label) as the option value."
    )


def decode_value(encoded: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(encoded, dict):
        return tuple(decode_value(v) for v in encoded["tuple"])
    return encoded


# ------------------------------------------------------------------ validation
def validate_options(options: Any) -> tuple:
    """Check the option lists and freeze them into a tuple of tuples.

    Raises:
        ValueError: no layers, a layer without options, or a repeated option
            (two equal options would make "never hand out twice" ambiguous).
    """
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise ValueError(
            "`options` must be a list with one list of option values per layer. "
            f"Received: options={options!r}"
        )
    if len(options) == 0:
        raise ValueError(
            "`options` is empty: the search needs at least one layer. "
            "Received: options=[]"
        )
    frozen = []
    for i, layer in enumerate(options):
        if isinstance(layer, (str, bytes)) or not isinstance(layer, Sequence):
            raise ValueError(
                f"`options[{i}]` must be a list of option values. Received: {layer!r}"
            )
        if len(layer) == 0:
            raise ValueError(
                f"`options[{i}]` is empty: every layer needs at least one option "
                f"(its first is the base model's choice). Received: options[{i}]=[]"
            )
        for value in layer:
            if not isinstance(value, Hashable):
                raise ValueError(
                    f"Option values must be hashable. Received: {value!r} in options[{i}]."
                )
        if len(set(layer)) != len(layer):
            raise ValueError(
                f"`options[{i}]` repeats a value; each option must be distinct. "
                f"Received: options[{i}]={list(layer)!r}"
            )
        frozen.append(tuple(layer))
    return tuple(frozen)


def as_maximized(score: float | None, direction: str) -> float | None:
    """``score`` in the searchers' higher-is-better direction; its own inverse.

    Searchers maximize; an objective with ``direction="min"`` (a loss) is
    negated on the way in and negated back on the way out, here only.

    Example:
        >>> as_maximized(0.3, "min"), as_maximized(0.3, "max"), as_maximized(None, "min")
        (-0.3, 0.3, None)
    """
    if score is None or direction == "max":
        return score
    return -score


def validate_positive_int(name: str, value: Any, allow_none: bool = False) -> Any:
    """Check a count argument such as ``num_buckets``.

    Raises:
        ValueError: not a positive integer (or None where allowed).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return int(value)


# ---------------------------------------------------------------------- base
class BaseSearch:
    """Ask/tell bookkeeping, cost cache, best-so-far and JSON state.

    Subclasses implement ``_propose`` (indices and layer of the next
    architecture, or None), ``_observe`` (learn from a told score) and the
    ``_state``/``_restore`` pair for their own fields.

    Args:
        options: ``options[i]`` lists layer i's option values; ``options[i][0]``
            is the base model's choice.
        cost_fn: cost of a whole architecture (tuple of option values); only
            assumed monotone in each layer's option.
        target: ``(low, high)``; the result must cost within it.
        seed: seed of the searcher's random generator.
        max_trials: stop handing out candidates after this many; None = no cap.

    Raises:
        ValueError: bad options, target, counts, a cost_fn that returns no
            finite number, or a target no architecture can reach.
    """

    def __init__(
        self,
        options: Sequence[Sequence[Hashable]],
        cost_fn: CostFn,
        target: tuple,
        seed: int = 0,
        max_trials: int | None = None,
    ):
        self.options = validate_options(options)
        if not callable(cost_fn):
            raise ValueError(
                f"`cost_fn` must be callable (arch tuple -> cost). Received: {cost_fn!r}"
            )
        self.cost_fn = cost_fn
        self.target = Target.of(target)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
        self.seed = int(seed)
        self.max_trials = validate_positive_int("max_trials", max_trials, allow_none=True)
        self.num_layers = len(self.options)
        self._rng = np.random.default_rng(self.seed)
        self._costs: dict[tuple, float] = {}
        self._records: dict[int, dict] = {}  # id -> candidate fields + score/status
        self._pending: dict[int, Candidate] = {}
        self._told: list[int] = []
        self._seen: set[tuple] = set()
        self._next_id = 0
        self.base_indices = (0,) * self.num_layers
        self._find_extreme_options()
        self._check_target_reachable()

    # ------------------------------------------------------------- cost
    def cost_of(self, indices: tuple) -> float:
        """Cost of the architecture at ``indices`` (cached: cost_fn may be slow).

        Raises:
            ValueError: cost_fn returned something that is not a finite number.
        """
        cost = self._costs.get(indices)
        if cost is None:
            arch = self.arch_of(indices)
            raw = self.cost_fn(arch)
            try:
                cost = float(raw)
            except (TypeError, ValueError):
                cost = math.nan
            if not math.isfinite(cost):
                raise ValueError(
                    "`cost_fn` must return a finite number for every architecture. "
                    f"Received: cost_fn({arch!r}) = {raw!r}"
                )
            self._costs[indices] = cost
        return cost

    def arch_of(self, indices: tuple) -> Arch:
        """Option values for option indices (the state stores indices only)."""
        return tuple(layer[i] for layer, i in zip(self.options, indices))

    def _find_extreme_options(self) -> None:
        """Find each layer's cheapest and dearest option with the others at base.

        Cost need not be a sum over layers, but it is monotone in each layer's
        option, so the option order found at the base holds everywhere.
        """
        self.cheapest, self.dearest = [], []
        for layer, values in enumerate(self.options):
            costs = []
            for index in range(len(values)):
                indices = list(self.base_indices)
                indices[layer] = index
                costs.append(self.cost_of(tuple(indices)))
            self.cheapest.append(int(np.argmin(costs)))
            self.dearest.append(int(np.argmax(costs)))
        self.cheapest, self.dearest = tuple(self.cheapest), tuple(self.dearest)

    def reachable(self, indices: tuple, layer: int) -> tuple:
        """Cost range over all completions of ``indices[:layer + 1]``."""
        head = indices[: layer + 1]
        return (
            self.cost_of(head + self.cheapest[layer + 1 :]),
            self.cost_of(head + self.dearest[layer + 1 :]),
        )

    def can_reach_target(self, indices: tuple, layer: int) -> bool:
        """Whether some completion of layers after ``layer`` may land in target.

        An interval test: exact for the last layer, and for earlier layers it
        can only err towards keeping a candidate (a completion with a cost gap
        exactly over the target), never towards dropping a useful one.
        """
        if layer >= self.num_layers - 1:
            return self.target.contains(self.cost_of(indices))
        cheapest, dearest = self.reachable(indices, layer)
        return self.target.overlaps(cheapest, dearest)

    def in_target(self, cost: float) -> bool:
        """Whether ``cost`` lies in the target range (both ends included)."""
        return self.target.contains(cost)

    def _check_target_reachable(self) -> None:
        cheapest = self.cost_of(self.cheapest)
        dearest = self.cost_of(self.dearest)
        low, high = self.target
        if high < cheapest or low > dearest:
            raise ValueError(
                f"The target cost range {tuple(self.target)} is outside the reachable range "
                f"[{cheapest:g}, {dearest:g}] of this search space. Pick a target that "
                "overlaps it (the smallest architecture costs the low end, the base-sized "
                f"one the high end). Received: target={tuple(self.target)}"
            )

    # ---------------------------------------------------------- ask/tell
    def ask(self) -> Candidate | None:
        """The next architecture to evaluate.

        Returns:
            A new Candidate, or None when nothing can be proposed right now
            (wait for pending tells, or check ``finished``).
        """
        if self.max_trials is not None and self._next_id >= self.max_trials:
            return None
        proposal = self._propose()
        if proposal is None:
            return None
        indices, layer = proposal
        candidate = Candidate(
            id=self._next_id,
            arch=self.arch_of(indices),
            indices=indices,
            layer=layer,
            cost=self.cost_of(indices),
        )
        self._next_id += 1
        self._seen.add(indices)
        self._pending[candidate.id] = candidate
        self._records[candidate.id] = {"indices": indices, "layer": layer, "score": None}
        return candidate

    def tell(self, candidate: Candidate | int, score: float | None) -> None:
        """Report the score of a pending candidate (higher is better).

        Args:
            candidate: the Candidate from ``ask()`` or its id.
            score: the score; None or NaN marks the trial failed (it is never
                kept as a parent nor returned as best).

        Raises:
            ValueError: the candidate was never asked, was already told, has
                the wrong number of layers, or the score is not a number.
        """
        cand_id = candidate.id if isinstance(candidate, Candidate) else candidate
        if isinstance(cand_id, bool) or not isinstance(cand_id, numbers.Integral):
            raise ValueError(
                "`tell` needs a Candidate from ask() or its integer id. "
                f"Received: {candidate!r}"
            )
        cand_id = int(cand_id)
        if isinstance(candidate, Candidate) and len(candidate.arch) != self.num_layers:
            raise ValueError(
                f"The candidate's arch has {len(candidate.arch)} values but this search has "
                f"{self.num_layers} layers; tell candidates of this search only. "
                f"Received: arch={candidate.arch!r}"
            )
        if cand_id not in self._pending:
            state = "was already told" if cand_id in self._records else "was never asked"
            raise ValueError(
                f"Candidate id {cand_id} {state}; tell each asked candidate exactly "
                f"once. Pending ids: {sorted(self._pending)[:20]}"
            )
        if isinstance(candidate, Candidate) and candidate != self._pending[cand_id]:
            raise ValueError(
                f"Candidate {candidate!r} does not match the one handed out with "
                f"id {cand_id}: {self._pending[cand_id]!r}."
            )
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, numbers.Real):
                raise ValueError(
                    "`score` must be a real number, or None/NaN for a failed trial. "
                    f"Received: score={score!r}"
                )
            score = float(score)
            if math.isnan(score):
                score = None
            elif math.isinf(score):
                raise ValueError(
                    f"`score` must be finite (or None/NaN for a failure). Received: {score}"
                )
        self._pending.pop(cand_id)
        self._records[cand_id]["score"] = score
        self._told.append(cand_id)
        self._observe(cand_id)

    # ------------------------------------------------------------ views
    @property
    def pending(self) -> list[Candidate]:
        """Candidates asked but not yet told, oldest first."""
        return list(self._pending.values())

    @property
    def num_told(self) -> int:
        """Number of tells so far (failed trials included)."""
        return len(self._told)

    @property
    def history(self) -> list[TrialRecord]:
        """Told candidates in tell order."""
        return [self.record(cand_id) for cand_id in self._told]

    def record(self, cand_id: int) -> TrialRecord:
        """The TrialRecord of an asked candidate (score None until told or if failed)."""
        fields = self._records[cand_id]
        return TrialRecord(
            id=cand_id,
            arch=self.arch_of(fields["indices"]),
            layer=fields["layer"],
            cost=self.cost_of(fields["indices"]),
            score=fields["score"],
        )

    def score_of(self, cand_id: int) -> float | None:
        """The told score of a candidate; None if failed or not told yet."""
        return self._records[cand_id]["score"]

    def best(self) -> tuple | None:
        """``(arch, score)`` of the best told candidate inside target, or None.

        Ties go to the cheaper, then the earlier-told candidate, so the answer
        is deterministic.
        """
        best_key, best_id = None, None
        for order, cand_id in enumerate(self._told):
            score = self._records[cand_id]["score"]
            cost = self.cost_of(self._records[cand_id]["indices"])
            if score is None or not self.in_target(cost):
                continue
            key = (-score, cost, order)
            if best_key is None or key < best_key:
                best_key, best_id = key, cand_id
        if best_id is None:
            return None
        return self.arch_of(self._records[best_id]["indices"]), self._records[best_id]["score"]

    @property
    def finished(self) -> bool:
        """True when nothing is pending and nothing is left to propose."""
        if self._pending:
            return False
        if self.max_trials is not None and self._next_id >= self.max_trials:
            return True
        return self._exhausted()

    # ------------------------------------------------------------- state
    def to_json(self) -> str:
        """The whole search state as JSON: from_json continues exactly here."""
        state = {
            "format": STATE_FORMAT,
            "class": type(self).__name__,
            "options": [[encode_value(v) for v in layer] for layer in self.options],
            "target": self.target.encode(),
            "seed": self.seed,
            "max_trials": self.max_trials,
            "config": self._config(),
            "next_id": self._next_id,
            # candidates in id order: [id, option indices, layer, score]
            "candidates": [
                [cid, list(r["indices"]), r["layer"], r["score"]]
                for cid, r in sorted(self._records.items())
            ],
            "told": list(self._told),
            "costs": [[cid, self.cost_of(r["indices"])] for cid, r in sorted(self._records.items())],
            "rng": self._rng.bit_generator.state,
            "searcher": self._state(),
        }
        return json.dumps(state)

    @classmethod
    def from_json(cls, text: str, cost_fn: CostFn, **kwargs: Any):
        """Restore a search saved with ``to_json``.

        Args:
            text: the JSON from ``to_json``.
            cost_fn: the same cost function (functions are not serialisable).
            **kwargs: non-serialisable constructor arguments of the subclass
                (e.g. a custom ``bucket_key``), or ``max_trials``: a new cap
                (a resumed search may run longer); by default the saved one.

        Raises:
            ValueError: not a saved state of this class, or cost_fn disagrees
                with the costs recorded in it.
        """
        try:
            state = json.loads(text)
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"Not a JSON search state: {error}. Received: {text!r:.80}") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(
                f"Not a search state in format {STATE_FORMAT!r}. Received: {text!r:.80}"
            )
        if state["class"] != cls.__name__:
            raise ValueError(
                f"This state was saved by {state['class']}; restore it with "
                f"{state['class']}.from_json, not {cls.__name__}.from_json."
            )
        options = [[decode_value(v) for v in layer] for layer in state["options"]]
        search = cls(
            options,
            cost_fn,
            target=Target.of(state["target"]),
            seed=state["seed"],
            max_trials=kwargs.pop("max_trials", state["max_trials"]),
            **{**state["config"], **kwargs},
        )
        saved_costs = dict((cid, cost) for cid, cost in state["costs"])
        for cid, indices, layer, score in state["candidates"]:
            indices = tuple(indices)
            cost = search.cost_of(indices)
            if not math.isclose(cost, saved_costs[cid], rel_tol=1e-9, abs_tol=1e-12):
                raise ValueError(
                    f"`cost_fn` disagrees with the saved state: candidate {cid} "
                    f"{search.arch_of(indices)!r} was saved with cost {saved_costs[cid]} "
                    f"but cost_fn now gives {cost}. Restore with the original cost_fn."
                )
            search._records[cid] = {"indices": indices, "layer": layer, "score": score}
            search._seen.add(indices)
        search._next_id = state["next_id"]
        search._told = list(state["told"])
        told = set(search._told)
        for cid in sorted(search._records):
            if cid not in told:
                search._pending[cid] = search._candidate(cid)
        search._rng.bit_generator.state = state["rng"]
        search._restore(state["searcher"])
        return search

    def _candidate(self, cand_id: int) -> Candidate:
        fields = self._records[cand_id]
        return Candidate(
            id=cand_id,
            arch=self.arch_of(fields["indices"]),
            indices=fields["indices"],
            layer=fields["layer"],
            cost=self.cost_of(fields["indices"]),
        )

    # ------------------------------------------------------ subclass API
    def _propose(self) -> tuple | None:
        """``(indices, layer)`` of the next architecture, or None."""
        raise NotImplementedError

    def _observe(self, cand_id: int) -> None:
        """Learn from the score just told for ``cand_id``."""
        raise NotImplementedError

    def _exhausted(self) -> bool:
        """True when no architecture will ever be proposed again."""
        raise NotImplementedError

    def _config(self) -> dict:
        """JSON-able constructor arguments beyond the shared ones."""
        return {}

    def _state(self) -> dict:
        """JSON-able searcher-specific state."""
        return {}

    def _restore(self, state: dict) -> None:
        """Rebuild searcher-specific state after the shared records are back."""
