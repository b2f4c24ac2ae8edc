"""LayerNAS (Algorithm 1 with Eq. 4 cost buckets) as an ask/tell searcher.

Layer l's candidates are ``(s_1..s_l, o_{l+1..L})``: the options chosen so far
with the base model's choices after them. A told candidate is kept in the
bucket table of every layer >= its own (its later layers are still at base, so
it *is* a candidate of those layers too; this is what makes the search space
complete, paper Appendix E.1). Expanding a kept layer-l candidate proposes all
its layer-(l+1) options whose cost can still reach the target. Each bucket
keeps the best ``per_bucket`` scores and may be expanded at most
``per_bucket`` times, which bounds the evaluations by
``num_buckets * per_bucket * sum(|S_i|)`` (the paper's O(H|S|L)).
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable, Hashable, Sequence

from keras_layernas.search._base import (
    Arch,
    BaseSearch,
    CostFn,
    TrialRecord,
    validate_positive_int,
)
from keras_layernas.search._policy import Parent, SelectionPolicy, get_policy

BucketKey = Callable[[int, Arch, float], Hashable]


class LayerNAS(BaseSearch):
    """Layer-wise search in polynomial time for the best model inside a cost range.

    Args:
        options: ``options[i]`` lists layer i's option values; ``options[i][0]``
            is the base model's choice (in size search, the dearest).
        cost_fn: cost of a whole architecture; only monotone per layer.
        target: ``(low, high)`` cost range of the result.
        num_buckets: H of Eq. 4, buckets per layer.
        per_bucket: candidates kept (and expanded) per bucket; k > 1 guards
            against a lucky noisy score (paper Appendix F).
        seed: seed of the policy's exploration.
        max_trials: stop handing out candidates after this many.
        policy: how to pick the next parent: a SelectionPolicy, ``"best_first"``
            (default) or ``"random"``, or a saved policy config.
        bucket_key: ``(layer, arch, cost) -> hashable`` grouping candidates of a
            layer (e.g. by topology features); default: Eq. 4 on cost.

    Raises:
        ValueError: any argument out of range (see BaseSearch), or a target no
            architecture can reach.

    Example:
        >>> options = [[4, 3, 2, 1]] * 3          # option value = its cost
        >>> search = LayerNAS(options, cost_fn=sum, target=(8, 9),
        ...                   num_buckets=4, per_bucket=2)
        >>> while (cand := search.ask()) is not None:
        ...     search.tell(cand, score=cand.arch[0] + cand.arch[1] / 10)
        >>> search.best()
        ((4, 4, 1), 4.4)
        >>> search.num_told, search.finished    # of 64 architectures
        (19, True)
    """

    def __init__(
        self,
        options: Sequence[Sequence[Hashable]],
        cost_fn: CostFn,
        target: tuple,
        num_buckets: int = 100,
        per_bucket: int = 3,
        seed: int = 0,
        max_trials: int | None = None,
        policy: SelectionPolicy | str | dict = "best_first",
        bucket_key: BucketKey | None = None,
    ):
        super().__init__(options, cost_fn, target, seed=seed, max_trials=max_trials)
        self.num_buckets = validate_positive_int("num_buckets", num_buckets)
        self.per_bucket = validate_positive_int("per_bucket", per_bucket)
        self.policy = get_policy(policy)
        if bucket_key is not None and not callable(bucket_key):
            raise ValueError(
                "`bucket_key` must be callable (layer, arch, cost) -> hashable, or None "
                f"for Eq. 4 cost buckets. Received: bucket_key={bucket_key!r}"
            )
        self._custom_key = bucket_key
        # Eq. 4's min/max cost of layer-l candidates: layers <= l at their
        # cheapest/dearest, later layers at base.
        base = self.base_indices
        self._bucket_range = [
            (
                self.cost_of(self.cheapest[: l + 1] + base[l + 1 :]),
                self.cost_of(self.dearest[: l + 1] + base[l + 1 :]),
            )
            for l in range(self.num_layers)
        ]
        # tables[l]: bucket key -> kept candidate ids, best score first.
        self._tables: list[dict[Hashable, list[int]]] = [{} for _ in range(self.num_layers)]
        self._expanded: set[tuple] = set()  # (layer, id)
        self._expansions: list[tuple] = []  # (layer, id, had_children) in order
        self._budget_used: dict[tuple, int] = {}  # (layer, bucket) -> expansions
        self._visit_layer = 0
        self._visit_count = 0
        # Layer 0's candidates come from a virtual root: every option of layer 0
        # (the base model included) that can still reach the target.
        self._queue: deque = deque(
            ((index,) + base[1:], 0)
            for index in range(len(self.options[0]))
            if self.can_reach_target((index,) + base[1:], 0)
        )

    # ---------------------------------------------------------- buckets
    def bucket_of(self, layer: int, indices: tuple) -> Hashable:
        """The bucket of a layer-``layer`` candidate (Eq. 4 unless customised)."""
        cost = self.cost_of(indices)
        if self._custom_key is not None:
            return self._custom_key(layer, self.arch_of(indices), cost)
        low, high = self._bucket_range[layer]
        if high <= low:
            return 0
        index = math.floor((cost - low) / (high - low) * self.num_buckets)
        # Eq. 4 maps the dearest candidate to H itself: clamp it into the last
        # bucket (this reproduces every bucket layout printed in Appendix I).
        return min(max(index, 0), self.num_buckets - 1)

    def _insert(self, layer: int, cand_id: int) -> None:
        """Keep ``cand_id`` in its bucket if it is among the best per_bucket."""
        indices = self._records[cand_id]["indices"]
        members = self._tables[layer].setdefault(self.bucket_of(layer, indices), [])
        score = self.score_of(cand_id)
        # After equal scores: on ties the earlier-told candidate stays.
        position = len(members)
        for i, other in enumerate(members):
            if score > self.score_of(other):
                position = i
                break
        members.insert(position, cand_id)
        del members[self.per_bucket :]

    def _observe(self, cand_id: int) -> None:
        if self.score_of(cand_id) is None:
            return
        indices = self._records[cand_id]["indices"]
        for layer in range(self._records[cand_id]["layer"], self.num_layers):
            # Later layers only narrow the reachable range, so once the target
            # is out of reach it stays out of reach.
            if not self.can_reach_target(indices, layer):
                break
            self._insert(layer, cand_id)

    # -------------------------------------------------------- proposing
    def _parents(self, layer: int) -> list[Parent]:
        """Kept, unexpanded candidates of a layer whose bucket has budget left."""
        parents = []
        for bucket, members in self._tables[layer].items():
            if self._budget_used.get((layer, bucket), 0) >= self.per_bucket:
                continue
            for rank, cand_id in enumerate(members):
                if (layer, cand_id) not in self._expanded:
                    parents.append(
                        Parent(
                            id=cand_id,
                            cost=self.cost_of(self._records[cand_id]["indices"]),
                            score=self.score_of(cand_id),
                            bucket=bucket,
                            rank=rank,
                        )
                    )
        return parents

    def _children(self, layer: int, cand_id: int) -> list[tuple]:
        """Unseen layer-(layer + 1) children of a kept candidate that can reach target."""
        indices = self._records[cand_id]["indices"]
        child_layer = layer + 1
        children = []
        for option in range(len(self.options[child_layer])):
            if option == indices[child_layer]:
                continue  # that child is the parent itself
            child = indices[:child_layer] + (option,) + indices[child_layer + 1 :]
            if child not in self._seen and self.can_reach_target(child, child_layer):
                children.append(child)
        return children

    def _advance_visit(self) -> None:
        # The last layer's table holds results only; it is never expanded.
        self._visit_layer = (self._visit_layer + 1) % max(self.num_layers - 1, 1)
        self._visit_count = 0

    def _expand(self, layer: int, parent: Parent) -> bool:
        children = self._children(layer, parent.id)
        self._mark_expanded(layer, parent.id, parent.bucket, bool(children))
        self._queue.extend((child, layer + 1) for child in children)
        return bool(children)

    def _mark_expanded(self, layer: int, cand_id: int, bucket: Hashable, had_children: bool) -> None:
        self._expanded.add((layer, cand_id))
        self._expansions.append((layer, cand_id, had_children))
        # An expansion that proposed nothing costs no evaluation, so it does
        # not use the bucket's budget.
        if had_children:
            key = (layer, bucket)
            self._budget_used[key] = self._budget_used.get(key, 0) + 1

    def _expand_next(self) -> bool:
        """Expand parents, cycling layers as Algorithm 1 does, until one has children.

        Returns:
            False when no layer has a parent to expand right now.
        """
        if self.num_layers == 1:
            return False
        for _ in range(self.num_layers):
            layer = self._visit_layer
            parents = self._parents(layer)
            while parents:
                parent = self.policy.select(parents, self._rng)
                if self._expand(layer, parent):
                    self._visit_count += 1
                    if self._visit_count >= self.policy.per_visit:
                        self._advance_visit()
                    return True
                parents = [p for p in parents if p.id != parent.id]
            self._advance_visit()
        return False

    def _propose(self) -> tuple | None:
        while True:
            while not self._queue:
                if not self._expand_next():
                    return None
            indices, layer = self._queue.popleft()
            if indices not in self._seen:
                return indices, layer

    def _exhausted(self) -> bool:
        if any(indices not in self._seen for indices, _ in self._queue):
            return False
        return not any(self._parents(layer) for layer in range(self.num_layers - 1))

    # ------------------------------------------------------------ views
    def bucket_table(self) -> list[dict]:
        """Per layer: bucket -> kept candidates (JSON-friendly, best first).

        Returns:
            One dict per layer mapping the bucket key to a list of
            ``{"id", "arch", "cost", "score", "expanded"}`` dicts.
        """
        tables = []
        for layer, table in enumerate(self._tables):
            tables.append(
                {
                    bucket: [
                        {
                            "id": cand_id,
                            "arch": list(self.arch_of(self._records[cand_id]["indices"])),
                            "cost": self.cost_of(self._records[cand_id]["indices"]),
                            "score": self.score_of(cand_id),
                            "expanded": (layer, cand_id) in self._expanded,
                        }
                        for cand_id in members
                    ]
                    for bucket, members in sorted(table.items(), key=lambda kv: str(kv[0]))
                }
            )
        return tables

    def pareto_front(self) -> list[TrialRecord]:
        """The best in-target candidate of each last-layer bucket, cheapest first."""
        best = [self.record(members[0]) for members in self._tables[-1].values() if members]
        return sorted(best, key=lambda r: (r.cost, -r.score, r.id))

    # ------------------------------------------------------------- state
    def _config(self) -> dict:
        return {
            "num_buckets": self.num_buckets,
            "per_bucket": self.per_bucket,
            "policy": self.policy.get_config(),
        }

    def _state(self) -> dict:
        return {
            "queue": [[list(indices), layer] for indices, layer in self._queue],
            "expansions": [list(e) for e in self._expansions],
            "visit": [self._visit_layer, self._visit_count],
        }

    def _restore(self, state: dict) -> None:
        # Bucket tables are a function of the tells in order: replay them.
        for cand_id in self._told:
            self._observe(cand_id)
        for layer, cand_id, had_children in state["expansions"]:
            indices = self._records[cand_id]["indices"]
            self._mark_expanded(layer, cand_id, self.bucket_of(layer, indices), had_children)
        self._queue = deque((tuple(indices), layer) for indices, layer in state["queue"])
        self._visit_layer, self._visit_count = state["visit"]

    @classmethod
    def from_json(cls, text: str, cost_fn: CostFn, **kwargs: Any) -> "LayerNAS":
        """Restore a saved LayerNAS; pass a custom ``bucket_key``/``policy`` again.

        Args:
            text: the JSON from ``to_json``.
            cost_fn: the same cost function.
            **kwargs: ``bucket_key`` (and a custom ``policy`` object) if used.

        Returns:
            The restored search; it proposes exactly what the saved one would.
        """
        return super().from_json(text, cost_fn, **kwargs)
