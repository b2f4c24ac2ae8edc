"""Other data-free scores (issue 13 item 4), ranked on the rank study's candidates.

Reads what ``compression_quality --stage rank`` measured (fine-tuned accuracies in
``results/compression_quality.json``, architectures in its ``rank_pool``) and
ranks, against that accuracy, data-free scores compress() could use instead of its default
(retained L1 importance, layers weighted equally):

- ``retained_layers``: the same, layers weighted by the kernels they slice (``"layers"``);
- ``bn_folded_*``: L1 importance of kernels with each BatchNorm's |gamma|/sigma folded in;
- ``madds_weighted``: each layer's log-retention weighted by the MAdds it can remove;
- ``weakest_layer``: the lowest single-layer retention (a bottleneck score).

Writes ``results/data_free_scores.json``; a target whose pool is not in the results file
(measured before pools were kept there) keeps its rows from the previous run. Run after the
rank stage:
    python -m benchmarks.data_free_scores
"""
from __future__ import annotations

import json
import math

import keras
import numpy as np

import keras_layernas as layernas
from benchmarks._rank import kendall_tau, tau_with_interval
from benchmarks._report import write_json
from benchmarks.compression_quality import NAME, RESULTS, load_base


def bn_folded(model: keras.Model) -> keras.Model:
    """A copy whose conv kernels carry the next BatchNorm's |gamma| / sqrt(var + eps)."""
    folded = keras.models.clone_model(model)
    folded.set_weights(model.get_weights())
    for norm in folded.layers:
        if not isinstance(norm, keras.layers.BatchNormalization):
            continue
        producer = norm.input._keras_history.operation
        gamma = norm.gamma.numpy() if norm.gamma is not None else 1.0
        scale = np.abs(gamma / np.sqrt(norm.moving_variance.numpy() + norm.epsilon))
        if isinstance(producer, keras.layers.DepthwiseConv2D):
            producer.kernel.assign(producer.kernel.numpy() * scale.reshape(1, 1, -1, 1))
        elif isinstance(producer, keras.layers.Conv2D):
            producer.kernel.assign(producer.kernel.numpy() * scale.reshape(1, 1, 1, -1))
    return folded


def scorers(base: keras.Model, space: layernas.SearchSpace) -> dict:
    folded = bn_folded(base)
    folded_space = layernas.SearchSpace.from_model(folded)
    retained = {w: layernas.compression.RetainedImportance(space, base, w) for w in ("equal", "layers")}
    base_arch, base_cost = space.base_arch, space.cost(space.base_arch)

    def cut_alone(layer: int) -> float:  # MAdds removed by this layer at its cheapest option
        costs = [space.cost(base_arch[:layer] + (o,) + base_arch[layer + 1:]) for o in space.layers[layer].options]
        return base_cost - min(costs)

    weights = np.array([cut_alone(i) for i in range(len(space.layers))])
    weights = weights / weights.mean()
    equal = retained["equal"]
    return {
        "retained_equal": equal,
        "retained_layers": retained["layers"],
        "bn_folded_equal": layernas.compression.RetainedImportance(folded_space, folded, "equal"),
        "bn_folded_layers": layernas.compression.RetainedImportance(folded_space, folded, "layers"),
        "madds_weighted": lambda arch: math.exp(sum(
            w * equal.log_term(i, o) for i, (w, o) in enumerate(zip(weights, arch))) / len(weights)),
        "weakest_layer": lambda arch: min(equal.log_term(i, o) for i, o in enumerate(arch)),
    }


def main() -> None:
    base = load_base()
    space = layernas.SearchSpace.from_model(base)
    score = scorers(base, space)
    quality = json.loads((RESULTS / f"{NAME}.json").read_text())
    measured, pools = quality["rank_candidates"], quality.get("rank_pool", {})
    previous = RESULTS / "data_free_scores.json"
    rows = [row for row in (json.loads(previous.read_text())["rows"] if previous.exists() else [])
            if str(row["target"]) not in pools]
    for target in sorted({m["target"] for m in measured if str(m["target"]) in pools}, reverse=True):
        candidates = pools[str(target)]
        entries = [m for m in measured if m["target"] == target and m["source"] == "layernas"]
        archs = [space.decode(candidates[m["index"]]["arch"]) for m in entries]
        for name, scorer in score.items():
            values = [scorer(arch) for arch in archs]
            tau, ci90 = tau_with_interval(values, [m["test_acc"] for m in entries])
            tau_val = kendall_tau(values, [m["val_acc"] for m in entries])
            # a score equal on every candidate orders nothing
            tau, tau_val = (None if math.isnan(t) else t for t in (tau, tau_val))
            rows.append({"target": target, "score": name, "n": len(values), "kendall_tau": tau, "ci90": ci90,
                         "kendall_tau_val": tau_val, "default": name == "retained_equal"})
            signed = lambda value: "-" if value is None else f"{value:+.2f}"
            print(f"{target:.0%} {name:18s} n={len(values)} tau val {signed(tau_val)} test {signed(tau)} "
                  f"({signed(ci90[0])} to {signed(ci90[1])})")
    write_json("data_free_scores", {"rows": rows})


if __name__ == "__main__":
    main()
