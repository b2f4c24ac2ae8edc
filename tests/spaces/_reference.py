"""Test helpers: the paper's reference tables in ../shared."""
from __future__ import annotations

import json
from pathlib import Path

from keras_layernas.spaces import BneckChoice

# The reference files name spaces by target MAdds.
SPACE_OF = {
    "60M": "mobilenet_v3_small_60m",
    "220M": "mobilenet_v3_large_220m",
    "300M": "mobilenet_v2_300m",
    "600M": "mobilenet_v2_1.4x_600m",
}


def reference(shared_dir: Path, file_name: str) -> dict:
    return json.loads((shared_dir / "reference" / file_name).read_text())


def paper_model(shared_dir: Path, target: str) -> dict:
    models = reference(shared_dir, "layernas_paper_models.json")["models"]
    return next(model for model in models if model["name"] == target)


def paper_space_rows(shared_dir: Path, target: str) -> dict:
    spaces = reference(shared_dir, "layernas_paper_spaces.json")["spaces"]
    return next(space for space in spaces if space["name"] == target)


def arch_of(model: dict) -> tuple:
    """A discovered model's LayerNAS encoding as option values, unchecked."""
    values = []
    for entry in model["encoding"]:
        if "kernel" in entry:
            values.append(BneckChoice(entry["kernel"], entry["expanded"], entry.get("output")))
        else:
            values.append(entry["output"])
    return tuple(values)
