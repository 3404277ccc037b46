"""Shared fixtures. Every test writes under tmp_path; nothing touches outputs/ or data/."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# tf.Transform and TFMA need Keras 2; decide before any test imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture
def repo() -> Path:
    return REPO


def write_csv_sample(source: Path, target: Path, rows: int) -> Path:
    """The header and the first `rows` rows of a shipped CSV (the shipped file is not touched)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open() as src, target.open("w") as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)
    return target


def pipeline_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]
