"""SHA-256 of a file's bytes, read in 1 MiB blocks: the same data gives the same value wherever
it is copied. Used by the up-to-date check and by MLflow tracking; imports only the standard
library, so the no-op path stays free of TensorFlow and MLflow."""
from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
