"""compress() as a KerasTuner chief or worker: who decides, and how workers learn it.

In KerasTuner's chief/worker mode the chief serves the oracle over gRPC and
trains nothing, and a worker's oracle is a gRPC client without the LayerNAS
engine. So the chief alone can choose the winner (from its engine, or by greedy
completion) and fine-tune it. It then publishes the result in the project
directory every process shares: the slim model's weights first, then the
trial history, ``report.json`` last, each written atomically, so a reader that sees the report finds the
weights complete. A worker, once the chief has told it the search is over,
waits for that report and rebuilds the same model with the same weights.
"""
from __future__ import annotations

import os
import time

from keras_tuner.src.distribute import utils as keras_tuner_distribute

from keras_layernas._io import atomic_path
from keras_layernas.compression._result import CompressionResult, history_path
from keras_layernas.surgery.space import Arch, SearchSpace

REPORT_FILE = "report.json"
WEIGHTS_FILE = "slim.weights.h5"
# The chief's final fine-tuning (finetune_epochs) has no bound a worker could
# know; a day covers long fine-tunings and still ends a worker whose chief died.
WORKER_WAIT_S = 24 * 3600.0
POLL_S = 1.0


def role() -> str:
    """``"chief"``, ``"worker"`` or ``"solo"``, from KerasTuner's environment variables.

    Raises:
        RuntimeError: ``KERASTUNER_ORACLE_IP`` is set without the port or the
            tuner id (KerasTuner's own check and message).
    """
    if not keras_tuner_distribute.has_chief_oracle():
        return "solo"
    return "chief" if keras_tuner_distribute.is_chief_oracle() else "worker"


def clear_result(project_dir: str) -> None:
    """Remove a result an earlier run published, before the chief serves trials.

    Workers read the result only after this chief told them the search is over,
    so whatever they find afterwards was published by this run.
    """
    report = os.path.join(project_dir, REPORT_FILE)
    for path in (report, os.path.join(project_dir, WEIGHTS_FILE), history_path(report)):
        if os.path.exists(path):
            os.remove(path)


def publish_result(project_dir: str, result: CompressionResult) -> None:
    """Write the slim model's weights, then the history and ``report.json``, for the workers."""
    os.makedirs(project_dir, exist_ok=True)
    # Keras insists on the ".weights.h5" suffix, so the temporary file keeps it.
    with atomic_path(os.path.join(project_dir, WEIGHTS_FILE), suffix=".weights.h5") as temporary:
        result.model.save_weights(str(temporary))
    result.save_report(os.path.join(project_dir, REPORT_FILE))


def _arch_of_report(space: SearchSpace, report_arch: dict[str, str], report_path: str) -> Arch:
    """The options the report holds, in the space's own encoding (``SearchLayer.encode``)."""
    arch = []
    for layer in space.layers:
        written = report_arch.get(layer.name)
        try:
            arch.append(layer.decode(written))
        except ValueError:
            raise ValueError(
                f"The result published at {report_path!r} names option {written!r} for layer "
                f"{layer.name!r}, which this process's search space lacks (options: "
                f"{[layer.encode(o) for o in layer.options]}): it was written with another model "
                "or other space arguments. In a distributed search, run the same script, model "
                "and space arguments on the chief and every worker; to resume a cut in steps, "
                "pass the arguments of the run that wrote it, or choose a new directory."
            ) from None
    return tuple(arch)


def wait_for_result(project_dir: str, space: SearchSpace, timeout_s: float = WORKER_WAIT_S,
                    poll_s: float = POLL_S) -> CompressionResult:
    """The chief's published result, with its model rebuilt in this process.

    Args:
        project_dir: the shared project directory.
        space: the search space this worker searched (the chief's, rebuilt
            from the same model and arguments).
        timeout_s: how long to wait for the chief's final fine-tuning.
        poll_s: seconds between two looks at the directory.

    Returns:
        The chief's result; ``model`` is ``space.materialize`` of the chosen
        architecture carrying the chief's final weights.

    Raises:
        TimeoutError: no report appeared within ``timeout_s``.
        ValueError: the report names an option this space does not have.
    """
    report_path = os.path.join(project_dir, REPORT_FILE)
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(report_path):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"The chief published no result at {report_path!r} within {timeout_s:.0f} s "
                "after the search ended. Check that the chief is alive and that every process "
                "uses the same shared `directory`."
            )
        time.sleep(poll_s)
    return read_result(project_dir, space)


def read_result(project_dir: str, space: SearchSpace) -> CompressionResult:
    """A result published in ``project_dir``, its model rebuilt from ``space`` with the
    published weights (what a worker returns, and a finished step of a cut in steps).

    Raises:
        ValueError: the report names an option this space does not have.
    """
    report_path = os.path.join(project_dir, REPORT_FILE)
    report = CompressionResult.read_report(report_path)
    arch = _arch_of_report(space, report["arch"], report_path)
    model = space.materialize(arch)
    model.load_weights(os.path.join(project_dir, WEIGHTS_FILE))
    fields = {k: v for k, v in report.items() if k not in ("arch", "history_trials")}
    fields["target"] = tuple(fields["target"])
    return CompressionResult(model=model, arch=space.as_dict(arch), **fields)
