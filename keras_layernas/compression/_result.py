"""What a compression produced: the model plus everything needed to trust it.

:class:`CompressionResult` holds the slim model, the chosen architecture, the
search history and Pareto front, and a per-layer before/after table; it prints
as a summary, saves as ``report.json`` and plots as ``pareto.png``.

The report stays small whatever the trial count (the complete data-free search
over MobileNetV2 tells some 22,500 trials, 21.8 MB of JSON when the report held
them): every trial goes to a gzip-compressed JSON-lines file beside it,
``report.history.jsonl.gz`` for ``report.json``, and the report keeps the
Pareto front, the trial count and that file's name.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from keras_layernas._io import atomic_path, write_atomically

from keras_layernas.surgery.importance import named_layers
from keras_layernas.profiling import profile
from keras_layernas.surgery.space import Arch, SearchSpace, encode_option


def _option_fields(option: Any) -> tuple[int | None, int | None]:
    """``(width, kernel)`` of an option value (None where it does not set one)."""
    if hasattr(option, "kernel") and hasattr(option, "width"):
        return int(option.width), int(option.kernel)
    return int(option), None


def layer_table(
    space: SearchSpace,
    arch: Arch,
    base_model: keras.Model,
    slim_model: keras.Model,
    input_shape: tuple | None = None,
) -> list[dict]:
    """One row per searchable layer: base vs slim width/kernel and MAdds.

    A row's MAdds are those of the model layers whose channels it sets
    (producers and per-channel followers, not the layers reading them), so
    every model layer counts in one row at most and the shares add up to at
    most 100% (the rest are layers no option changes). ``input_shape`` sizes a
    base model whose spatial size is unknown.
    """
    base_costs = _madds_by_layer(base_model, input_shape)
    slim_costs = _madds_by_layer(slim_model)
    base_layers = named_layers(base_model)
    slim_total = max(sum(slim_costs.values()), 1)
    rows = []
    for layer, base_option, option in zip(space.layers, space.base_arch, arch):
        base_width, base_kernel = _option_fields(base_option)
        width, kernel = _option_fields(option)
        if layer.kind == "kernel":
            base_width, base_kernel, width, kernel = None, base_width, None, width
        names = [n for n in layer.owners if n in base_layers]
        slim = sum(slim_costs.get(n, 0) for n in names)
        rows.append({
            "layer": layer.name,
            "kind": layer.kind,
            "base_width": base_width,
            "base_kernel": base_kernel,
            "width": width,
            "kernel": kernel,
            "base_madds": sum(base_costs.get(n, 0) for n in names),
            "madds": slim,
            "madds_share": slim / slim_total,
        })
    return rows


def _madds_by_layer(model: keras.Model, input_shape: tuple | None = None) -> dict[str, int]:
    costs: dict[str, int] = {}
    for row in profile(model, input_shape).layers:
        name = row.name.split("#")[0]  # every call of a shared layer counts for it
        costs[name] = costs.get(name, 0) + row.madds
    return costs


def history_path(report_path: str | os.PathLike) -> Path:
    """Where the trials of the report at ``report_path`` go: ``NAME.history.jsonl.gz`` beside it."""
    report_path = Path(report_path)
    return report_path.with_name(report_path.stem + ".history.jsonl.gz")


@dataclass
class CompressionResult:
    """The outcome of :meth:`keras_layernas.CompressionSearch.run`.

    Attributes:
        model: the slim Keras model (weights inherited from the base model).
        arch: ``{searchable layer: chosen option}``.
        target: ``(low, high)`` range of the search's cost the model lies in
            (MAdds, or predicted ms when ``cost == "latency"``).
        base_madds, madds: MAdds per sample before/after.
        base_params, params: parameter counts before/after.
        score_name: what ``score`` measures (``"retained_importance"`` without
            data, else the objective, e.g. ``"val_accuracy"``).
        score: the chosen model's score (after final fine-tuning with data).
        base_score: the base model's score by the same measure.
        completed: True when the greedy completion (not a searched candidate)
            chose the model: always when the trial budget ended before an
            in-target candidate, and data-free when it scored higher.
        trials: number of evaluated candidates.
        search_seconds: wall time of the search (completion and final
            fine-tuning included).
        history: every trial: ``{"id", "layer", "madds", "score", "arch"}``,
            plus ``"latency_ms"`` (predicted) when searched under latency;
            saved beside the report, not in it (:meth:`save_report`).
        pareto_front: best candidate per cost bucket of the last layer (with
            ``start="greedy"``: the trained models no cheaper one outscores).
        layers: the per-layer table (see :func:`layer_table`).
        cost: what the search minimized towards the target: ``"madds"`` or
            ``"latency"``.
        latency: with ``cost == "latency"``: ``predicted_ms`` and
            ``measured_ms`` of the result, ``base_predicted_ms`` and
            ``base_measured_ms``, the fit (``weights``, ``intercept_ms``) and
            its calibration (``calibration_archs``, ``calibration_seconds``,
            ``calibration_median_abs_error``); None otherwise.
    """

    model: keras.Model
    arch: dict[str, Any]
    target: tuple[float, float]
    base_madds: int
    madds: int
    base_params: int
    params: int
    score_name: str
    score: float | None
    base_score: float | None
    completed: bool
    trials: int
    search_seconds: float
    history: list[dict] = field(default_factory=list)
    pareto_front: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    cost: str = "madds"
    latency: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model and the history, JSON-ready; ``history_trials`` counts the history."""
        return {
            "arch": {k: encode_option(v) for k, v in self.arch.items()},
            "target": list(self.target),
            "base_madds": self.base_madds,
            "madds": self.madds,
            "base_params": self.base_params,
            "params": self.params,
            "score_name": self.score_name,
            "score": self.score,
            "base_score": self.base_score,
            "completed": self.completed,
            "trials": self.trials,
            "search_seconds": self.search_seconds,
            "cost": self.cost,
            "latency": self.latency,
            "layers": self.layers,
            "pareto_front": self.pareto_front,
            "history_trials": len(self.history),
        }

    def save_report(self, path: str | os.PathLike) -> None:
        """Write the history beside ``path``, then :meth:`to_dict` as JSON at ``path``.

        Both atomically, the report last: a reader that finds the report finds
        its whole history (:meth:`read_report`).
        """
        history = history_path(path)
        lines = "".join(json.dumps(trial) + "\n" for trial in self.history)
        write_atomically(history, gzip.compress(lines.encode("utf-8"), mtime=0))
        write_atomically(path, json.dumps({**self.to_dict(), "history_file": history.name}, indent=1))

    @staticmethod
    def read_report(path: str | os.PathLike) -> dict[str, Any]:
        """A saved report with its ``history`` read back from the file beside it."""
        with open(path) as f:
            report = json.load(f)
        with gzip.open(Path(path).with_name(report.pop("history_file")), "rt", encoding="utf-8") as f:
            report["history"] = [json.loads(line) for line in f]
        return report

    def plot_pareto(self, path: str) -> None:
        """MAdds vs score of every trial, Pareto front, target band, chosen model."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        # The x axis is the search's own cost, the one the target range is in.
        key, scale, label = ("madds", 1e6, "MAdds (millions)")
        chosen = self.madds
        if self.cost == "latency":
            key, scale, label = ("latency_ms", 1.0, "predicted TFLite latency (ms)")
            chosen = self.latency["predicted_ms"]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        scored = [h for h in self.history if h["score"] is not None]
        ax.scatter([h[key] / scale for h in scored], [h["score"] for h in scored],
                   s=4, c="0.7", label=f"trials ({len(self.history)})")
        front = sorted(self.pareto_front, key=lambda p: p[key])
        if front:
            ax.plot([p[key] / scale for p in front], [p["score"] for p in front],
                    "-o", ms=3, c="tab:blue", label="Pareto front (last layer)")
        ax.axvspan(self.target[0] / scale, self.target[1] / scale, color="tab:green",
                   alpha=0.15, label="target range")
        if self.score is not None:
            ax.plot([chosen / scale], [self.score], "*", ms=14, c="tab:red",
                    label="chosen" + (" (completed)" if self.completed else ""))
        ax.set_xlabel(label)
        ax.set_ylabel(self.score_name)
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        try:
            with atomic_path(path, suffix=".png") as temporary:
                fig.savefig(temporary, dpi=120)
        finally:
            plt.close(fig)

    def summary(self) -> str:
        """A readable table: each layer's base and slim width/kernel, MAdds share."""
        def shape(width: int | None, kernel: int | None) -> str:
            parts = ([str(width)] if width is not None else []) + ([f"k{kernel}"] if kernel else [])
            return " ".join(parts) or "-"

        header = ("Layer", "Kind", "Base", "Slim", "MAdds (M)", "Share")
        rows = [
            (r["layer"], r["kind"], shape(r["base_width"], r["base_kernel"]),
             shape(r["width"], r["kernel"]), f"{r['madds'] / 1e6:.2f}", f"{r['madds_share']:.1%}")
            for r in self.layers
        ]
        widths = [max(len(str(c[i])) for c in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
                 for cells in [header, *rows]]
        lines.insert(1, "-" * len(lines[0]))
        base = "n/a" if self.base_score is None else f"{self.base_score:.4f}"
        score = "n/a" if self.score is None else f"{self.score:.4f}"
        other = 1 - sum(r["madds_share"] for r in self.layers)
        if self.cost == "madds":
            madds_target = f" (target {self.target[0] / 1e6:.2f}-{self.target[1] / 1e6:.2f} M)"
        else:
            madds_target = ""
        lines += [
            f"(layers no option changes: {other:.1%} of the slim MAdds)",
            "",
            f"MAdds:  {self.base_madds / 1e6:.2f} M -> {self.madds / 1e6:.2f} M{madds_target}",
            f"Params: {self.base_params / 1e6:.3f} M -> {self.params / 1e6:.3f} M",
            f"{self.score_name}: {base} -> {score}",
            f"{self.trials} trials in {self.search_seconds:.1f} s"
            + ("; chosen by greedy completion to the target" if self.completed else ""),
        ]
        if self.latency is not None:
            lat = self.latency
            lines[-3:-3] = [
                f"Latency (TFLite float32, 1 thread, best of 5 medians): {lat['base_measured_ms']:.2f} ms -> "
                f"{lat['measured_ms']:.2f} ms measured, {lat['predicted_ms']:.2f} ms predicted "
                f"(target {self.target[0]:.2f}-{self.target[1]:.2f} ms)",
                f"Latency model: {lat['calibration_archs']} architectures measured in "
                f"{lat['calibration_seconds']:.0f} s, median error "
                f"{lat['calibration_median_abs_error']:.1%} on them",
            ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
