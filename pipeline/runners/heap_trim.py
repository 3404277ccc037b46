"""Hand the memory a finished stage freed back to the operating system before the next starts.

Every stage of a local run runs in one process. What a stage frees (the Trainer's in-memory
split, a Beam stage's batches) goes back to glibc's heap, not to the system: glibc returns only
the free memory at the top of its main heap, so the process keeps it resident and the next
stage's peak is counted on top of it. `malloc_trim(0)` releases the free pages of every heap.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Return freed heap pages to the system; False where that is not available."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
