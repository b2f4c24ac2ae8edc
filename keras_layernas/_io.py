"""Files the package writes: one atomic writer, one resume fingerprint.

Every state file, report, cache, model and plot goes through
:func:`atomic_path`, so a search killed mid-write leaves the old file or the
new one, never half of one, and every file gets the same handling: written
beside its destination, flushed to disk, then renamed over it, with the usual
umask permissions (``mkstemp``'s 0600 would survive the rename).
"""
from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    For writers that want a file name rather than bytes (``fig.savefig``,
    ``model.save_weights``). ``suffix`` ends the temporary name, for writers
    that insist on one (Keras wants ``.weights.h5``). On an error the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        yield temporary
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(path: str | os.PathLike, data: str | bytes) -> None:
    """Replace ``path`` by ``data`` in one step: a reader sees the old or the new file."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as temporary:
        with open(temporary, "xb") as file:
            file.write(payload)


def fingerprint(space: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """What must not change between a search and its resume: the options and the settings.

    ``space`` is a :class:`~keras_layernas.surgery.SearchSpace`; its options
    appear in the space's own encoding (``SearchLayer.encode``), the one the
    oracle's hyperparameters, the reports and the distributed hand-off use.
    ``max_trials`` is left out: it decides only when the search stops, so a
    resume may search longer (or stop sooner) than the run it continues.
    """
    return {"layers": {layer.name: [layer.encode(o) for o in layer.options]
                       for layer in space.layers},
            **{key: value for key, value in settings.items() if key != "max_trials"}}


def same_search(saved: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether a saved fingerprint is ``now``'s (one saved with ``max_trials``, before it was
    left out, still matches)."""
    saved = {key: value for key, value in saved.items() if key != "max_trials"}
    return saved == json.loads(json.dumps(now))
