"""Shared test set-up: quiet TF, the TF backend, and the offline reference data."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# ../shared beside the checkout holds reference tables and offline data for
# tests and benchmarks; the product itself never reads it.
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} is absent (it ships beside the checkout)")
    return SHARED
