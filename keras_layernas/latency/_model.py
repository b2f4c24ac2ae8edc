"""A per-layer TFLite latency model of one search space, fitted on a few measurements.

Measuring an architecture for real (materialize, export to TFLite, time it
with LiteRT) takes seconds, while LayerNAS asks for the cost of thousands of
architectures. So a handful of calibration architectures is measured, and the
latency of any other one is predicted from cost features the space computes
without building a model (``SearchSpace.features``: MAdds of dense convs, of
depthwise convs and of Dense layers, and the elements those layers write)::

    latency_ms ~= intercept + sum_k weight_k * feature_k,  all weights >= 0

The fit minimizes the *relative* squared error, since the search compares
models of very different sizes. Measurements are cached per architecture in a
JSON file, so a resumed search never measures one twice.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from keras_layernas._io import write_atomically
from keras_layernas.surgery.space import Arch, SearchSpace

_CACHE_FORMAT = 1
# A calibration architecture the fit misses by more than this is timed once
# more: on a loaded machine a whole measurement can run slow (MobileNetV2's
# base once measured 14.8 ms, 6.9 ms a minute later).
_REMEASURE_ERROR = 0.25
# Fractions of each layer's option list (sorted by cost) that give the
# uniformly slimmed calibration architectures between base and cheapest.
_UNIFORM_FRACTIONS = (0.25, 0.5, 0.75)


def measure_model_latency(
    model: Any, runs: int = 20, warmup: int = 3, num_threads: int = 1, repeats: int = 5
) -> float:
    """Lowest of ``repeats`` median latencies (ms) of ``model`` as a float32 TFLite file.

    On a shared machine other processes can slow a whole block of runs, and
    then its median too; the fastest of several blocks is the least disturbed
    estimate. The model is exported once (:func:`keras_layernas.export_tflite`)
    and each block is one :func:`keras_layernas.measure_latency` call.

    Args:
        model: a built ``keras.Model`` with a fixed input size.
        runs: timed inferences per block.
        warmup: untimed inferences before each block.
        num_threads: interpreter threads.
        repeats: blocks (>= 1).

    Returns:
        Milliseconds per inference.
    """
    from keras_layernas.latency.export import _check_count, export_tflite, measure_latency

    _check_count("repeats", repeats, minimum=1)
    with tempfile.TemporaryDirectory(prefix="layernas_latency_") as folder:
        path = export_tflite(model, Path(folder) / "candidate.tflite")
        return min(
            measure_latency(path, runs=runs, warmup=warmup, num_threads=num_threads)
            for _ in range(repeats)
        )


def calibration_archs(space: SearchSpace, num_archs: int, seed: int = 0) -> list[Arch]:
    """Architectures that span the space: base, cheapest, uniform cuts, random.

    The base and the cheapest architecture pin both ends of the cost range,
    uniform cuts (every layer at the same position in its option list) fill the
    middle, and seeded random architectures mix cheap and dear layers so that
    the fit sees features that do not move together.

    Args:
        space: a search space with a cost.
        num_archs: how many architectures to return (fewer when the space
            has fewer distinct ones).
        seed: seed of the random architectures.

    Returns:
        Distinct architectures, base first.

    Example:
        >>> space = SearchSpace.from_options({"a": [4, 2, 1], "b": [8, 4]},
        ...                                  cost_fn=lambda v: v["a"] * v["b"])
        >>> calibration_archs(space, 4)
        [(4, 8), (1, 4), (2, 8), (2, 4)]
    """
    base = space.base_arch
    by_cost = []
    for index, layer in enumerate(space.layers):
        costs = {o: space.cost(base[:index] + (o,) + base[index + 1 :]) for o in layer.options}
        by_cost.append(sorted(layer.options, key=lambda o: costs[o], reverse=True))
    archs = [base, tuple(options[-1] for options in by_cost)]
    for fraction in _UNIFORM_FRACTIONS:
        archs.append(tuple(o[round(fraction * (len(o) - 1))] for o in by_cost))
    rng = random.Random(seed)
    attempts = 0
    unique = list(dict.fromkeys(archs))
    while len(unique) < num_archs and attempts < 100 * num_archs:
        attempts += 1
        arch = tuple(rng.choice(layer.options) for layer in space.layers)
        if arch not in unique:
            unique.append(arch)
    return unique[:num_archs]


def fit_nonnegative(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0, exact for a few columns.

    Every subset of columns is solved by ordinary least squares; the best
    solution whose coefficients are all non-negative wins (the optimum of a
    non-negative least-squares problem is the unconstrained optimum on its
    support). ``2**columns`` solves are cheap for the handful of latency
    features and need no scipy.

    Args:
        features: ``(rows, columns)`` design matrix, columns <= 12.
        targets: ``(rows,)`` values to fit.

    Returns:
        ``(columns,)`` non-negative coefficients.

    Raises:
        ValueError: mismatched shapes or too many columns.

    Example:
        >>> x = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
        >>> fit_nonnegative(x, np.array([3.0, 2.0, 1.0])).round(6).tolist()  # slope < 0 is cut
        [2.0, 0.0]
    """
    features = np.asarray(features, dtype=float)
    targets = np.asarray(targets, dtype=float)
    rows, columns = features.shape
    if targets.shape != (rows,) or not 0 < columns <= 12:
        raise ValueError(
            "fit_nonnegative needs a (rows, columns <= 12) matrix and (rows,) targets. "
            f"Received: features of shape {features.shape}, targets of shape {targets.shape}."
        )
    scale = np.abs(features).max(axis=0)
    scale[scale == 0] = 1.0  # an all-zero column gets weight 0 either way
    scaled = features / scale
    best, best_error = np.zeros(columns), float(np.sum(targets**2))
    for size in range(1, columns + 1):
        for support in itertools.combinations(range(columns), size):
            solution, *_ = np.linalg.lstsq(scaled[:, support], targets, rcond=None)
            if np.any(solution < 0):
                continue
            error = float(np.sum((scaled[:, support] @ solution - targets) ** 2))
            if error < best_error - 1e-12 * max(best_error, 1.0):
                best_error = error
                best = np.zeros(columns)
                best[list(support)] = solution
    return best / scale


class LatencyModel:
    """Predicted TFLite latency (ms) of a search space's architectures.

    Build one with :meth:`calibrate`, which measures a few architectures for
    real; :meth:`predict` then costs microseconds and never builds a model, so
    it can be the search's cost: ``space.with_cost(model.predict)``.

    Args:
        space: the space whose ``features`` the model reads.
        weights: ``{feature name: ms per unit}``, all >= 0.
        intercept: fixed ms per inference (interpreter overhead, frozen layers).
        measurements: the calibration records, ``{"arch", "latency_ms",
            "seconds"}`` each (``arch`` as ``space.encode`` values).
        settings: how they were timed (:func:`measure_model_latency`
            arguments); :meth:`measure` times other models the same way.

    Example:
        >>> from keras_layernas.surgery.space import SearchLayer
        >>> space = SearchSpace([SearchLayer("a", "width", (4, 2))], cost_fn=lambda arch: arch[0],
        ...                     features_fn=lambda arch: {"conv_madds": 10 * arch[0]})
        >>> model = LatencyModel(space, {"conv_madds": 0.05}, 0.5, [], {})
        >>> model.predict((4,)), model.predict((2,))
        (2.5, 1.5)
    """

    def __init__(
        self,
        space: SearchSpace,
        weights: dict[str, float],
        intercept: float,
        measurements: Sequence[dict],
        settings: dict[str, int],
    ):
        self.space = space
        self.weights = dict(weights)
        self.intercept = float(intercept)
        self.measurements = list(measurements)
        self.settings = dict(settings)
        self._weight_items = list(self.weights.items())

    def predict(self, arch: Sequence) -> float:
        """Predicted median latency of ``arch`` in ms (no model is built)."""
        features = self.space.features(arch)
        return self.intercept + sum(w * features[name] for name, w in self._weight_items)

    __call__ = predict

    def measure(self, model: Any) -> float:
        """Real latency (ms) of ``model``, timed like the calibration architectures."""
        return measure_model_latency(model, **self.settings)

    @property
    def calibration_seconds(self) -> float:
        """Export + timing seconds the calibration measurements took when taken."""
        return float(sum(m["seconds"] for m in self.measurements))

    def errors(self) -> list[float]:
        """Relative error ``predicted / measured - 1`` of each calibration arch."""
        return [
            self.predict(self.space.decode(dict(zip(self.space.names, m["arch"]))))
            / m["latency_ms"] - 1.0
            for m in self.measurements
        ]

    def to_dict(self) -> dict[str, Any]:
        """The fit and its calibration, JSON-ready (for reports)."""
        errors = self.errors()
        return {
            "weights": self.weights,
            "intercept_ms": self.intercept,
            "calibration_archs": len(self.measurements),
            "calibration_seconds": self.calibration_seconds,
            "calibration_median_abs_error": float(np.median(np.abs(errors))) if errors else None,
        }

    @classmethod
    def calibrate(
        cls,
        space: SearchSpace,
        num_archs: int = 12,
        runs: int = 20,
        warmup: int = 3,
        num_threads: int = 1,
        repeats: int = 5,
        cache: str | os.PathLike | None = None,
        seed: int = 0,
        verbose: int = 0,
    ) -> "LatencyModel":
        """Measure ``num_archs`` architectures of ``space`` and fit the model.

        Each architecture is materialized, exported to a float32 ``.tflite``
        file and timed with LiteRT (:func:`measure_model_latency`). Any the
        first fit misses by more than 25% is timed once more and the faster
        time kept, then the model is fitted again.

        Args:
            space: a space from ``SearchSpace.from_model`` (it needs
                ``features`` and ``materialize``).
            num_archs: calibration architectures (>= 3), see
                :func:`calibration_archs`; each costs one export (seconds).
            runs: timed inferences per architecture (the median is used).
            warmup: untimed inferences first.
            num_threads: interpreter threads; 1 keeps timings comparable on a
                busy machine.
            repeats: blocks of ``runs``; the fastest block's median counts.
            cache: JSON file of measurements, updated atomically after each
                one, so an interrupted or repeated calibration measures only
                what is missing; None keeps nothing.
            seed: seed of the random calibration architectures.
            verbose: 1 prints one line per measurement.

        Returns:
            The fitted ``LatencyModel``.

        Raises:
            ValueError: a bad count, a space without ``features``, or a cache
                file measured with other settings or for another space.
        """
        from keras_layernas.latency.export import _check_count

        _check_count("num_archs", num_archs, minimum=3)
        _check_count("num_threads", num_threads, minimum=1)
        _check_count("repeats", repeats, minimum=1)
        if not space.has_features:
            raise ValueError(
                "A latency model reads per-op cost features of the space, and this space "
                "has none. Received: a SearchSpace without features_fn; build it with "
                "SearchSpace.from_model(model)."
            )
        settings = {"runs": runs, "warmup": warmup, "num_threads": num_threads,
                    "repeats": repeats}
        store = _MeasurementStore(cache, settings, space.names)
        archs = calibration_archs(space, num_archs, seed)
        for number, arch in enumerate(archs, 1):
            key = space.encode(arch)
            if store.get(key) is None:
                started = time.perf_counter()
                latency = measure_model_latency(space.materialize(arch), **settings)
                store.put(key, {"arch": list(key.values()), "latency_ms": latency,
                                "seconds": time.perf_counter() - started, "remeasured": False})
                if verbose:
                    print(f"latency calibration {number}/{len(archs)}: {latency:.3f} ms")
        measurements = [store.get(space.encode(arch)) for arch in archs]
        model = cls.fit(space, measurements, settings)
        # Only a disturbed timing is too slow, so the faster of two counts; a
        # point the model truly misses measures the same again and stays.
        outliers = [
            arch for arch, error in zip(archs, model.errors())
            if abs(error) > _REMEASURE_ERROR and not store.get(space.encode(arch))["remeasured"]
        ]
        for arch in outliers:
            record = dict(store.get(space.encode(arch)))
            started = time.perf_counter()
            again = measure_model_latency(space.materialize(arch), **settings)
            if verbose:
                print(f"latency calibration: re-timed {record['latency_ms']:.3f} ms as {again:.3f} ms")
            record.update(latency_ms=min(record["latency_ms"], again), remeasured=True,
                          seconds=record["seconds"] + time.perf_counter() - started)
            store.put(space.encode(arch), record)
        if not outliers:
            return model
        return cls.fit(space, [store.get(space.encode(arch)) for arch in archs], settings)

    @classmethod
    def fit(cls, space: SearchSpace, measurements: Sequence[dict],
            settings: dict[str, int] | None = None) -> "LatencyModel":
        """Fit weights to measured latencies (relative squared error, weights >= 0).

        Args:
            space: the space the measured architectures belong to.
            measurements: ``{"arch": encoded values, "latency_ms", "seconds"}``
                records, as :meth:`calibrate` stores them.
            settings: :func:`measure_model_latency` arguments they were timed
                with (used by :meth:`measure`); None for its defaults.

        Returns:
            The fitted ``LatencyModel``.

        Raises:
            ValueError: fewer than 2 measurements.
        """
        if len(measurements) < 2:
            raise ValueError(
                "A latency fit needs at least 2 measured architectures. "
                f"Received: {len(measurements)}; raise num_archs."
            )
        archs = [space.decode(dict(zip(space.names, m["arch"]))) for m in measurements]
        rows = [space.features(arch) for arch in archs]
        names = sorted(rows[0])
        latencies = np.array([m["latency_ms"] for m in measurements], dtype=float)
        design = np.array([[1.0] + [row[n] for n in names] for row in rows])
        # Dividing each row by its latency turns the fit into relative error.
        coefficients = fit_nonnegative(design / latencies[:, None], np.ones(len(latencies)))
        weights = {n: float(w) for n, w in zip(names, coefficients[1:])}
        return cls(space, weights, float(coefficients[0]), measurements, settings or {})


class _MeasurementStore:
    """Measured latencies by architecture, mirrored to a JSON file if given."""

    def __init__(self, path: str | os.PathLike | None, settings: dict, names: list[str]):
        self.path = None if path is None else Path(path)
        self.settings = settings
        self.names = list(names)
        self.records: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(
                f"The latency cache '{self.path}' is unreadable ({error}). Delete it to "
                "measure again."
            ) from error
        if saved.get("format") != _CACHE_FORMAT or saved.get("settings") != self.settings or (
            saved.get("layers") != self.names
        ):
            raise ValueError(
                f"The latency cache '{self.path}' holds measurements of another space or "
                f"with other settings. Received: settings={saved.get('settings')} for "
                f"{len(saved.get('layers') or [])} layers; expected settings={self.settings} "
                f"for {len(self.names)} layers. Pass another cache path, or delete the file."
            )
        self.records = saved["measurements"]

    @staticmethod
    def _key(encoded: dict) -> str:
        return json.dumps(list(encoded.values()))

    def get(self, encoded: dict) -> dict | None:
        return self.records.get(self._key(encoded))

    def put(self, encoded: dict, record: dict) -> None:
        self.records[self._key(encoded)] = record
        if self.path is None:
            return
        payload = {"format": _CACHE_FORMAT, "settings": self.settings, "layers": self.names,
                   "measurements": self.records}
        write_atomically(self.path, json.dumps(payload, indent=1))
