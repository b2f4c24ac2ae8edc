"""The one atomic writer and the one resume fingerprint (keras_layernas._io)."""
from __future__ import annotations

import os

import pytest

from keras_layernas import _io
from keras_layernas.surgery import SearchSpace


def test_write_replaces_the_file_with_ordinary_permissions_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    _io.write_atomically(target, "new")
    _io.write_atomically(tmp_path / "model.bin", b"\x00\x01")
    assert target.read_text() == "new"
    assert (tmp_path / "model.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "state.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(_io.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        _io.write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]


def test_atomic_path_keeps_the_suffix_a_writer_insists_on_and_drops_it_on_error(tmp_path):
    seen = []
    with _io.atomic_path(tmp_path / "w.weights.h5", suffix=".weights.h5") as temporary:
        seen.append(temporary.name)
        temporary.write_bytes(b"w")
    assert seen[0].endswith(".weights.h5") and seen[0] != "w.weights.h5"
    assert (tmp_path / "w.weights.h5").read_bytes() == b"w"
    with pytest.raises(RuntimeError):
        with _io.atomic_path(tmp_path / "plot.png") as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("savefig failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.weights.h5"]


def test_fingerprint_holds_the_encoded_options_and_the_settings():
    space = SearchSpace.from_options({"a": [4, 2], "b": [3.5, 1.5]}, cost_fn=lambda v: v["a"])
    assert _io.fingerprint(space, {"seed": 1}) == {"layers": {"a": [4, 2], "b": [3.5, 1.5]}, "seed": 1}
    narrower = space.with_layers([space.layers[0].__class__("a", "option", (4,)), space.layers[1]])
    assert _io.fingerprint(narrower, {"seed": 1}) != _io.fingerprint(space, {"seed": 1})
