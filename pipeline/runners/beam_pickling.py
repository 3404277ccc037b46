"""Beam's pickling of a stage's functions, without work it repeats.

- cloudpickle's search for the submodules a pickled function uses, without a scan of every
  loaded module per function (submodules_listed_once).
- bz2, which Beam's pickler runs over every pickle at level 9 and back, once per distinct
  payload (compressed_once): a penguin run compressed 2,926 payloads, 864 of them distinct,
  in 0.41 s, and decompressed 3,681 (778 distinct) in 0.16 s; taxi 3,692 and 4,700, 0.54 and
  0.21 s. Beam converts the same transforms to its runner API more than once per stage. The
  answers are bz2's own (compression is deterministic), kept for the run up to MEMO_BYTES.
- no compression at all where every pickle is read back by this process (`in_process=True`:
  the DirectRunner in_memory or multi_threading). Beam compresses so that pipeline protos stay
  small on their way to remote workers; here the payloads never leave the process, and bz2's
  fixed cost per call (its 900 kB blocks set up for each payload, ~0.3 ms) was still, with the
  answers kept, 0.22-0.24 s of compress and 0.05-0.25 s of decompress in a penguin run's main
  process (738 and 671 distinct payloads, 1.2 MB) and 0.07 s in its checks' process; taxi's
  main process 0.32 and 0.08 s (measured in-process). Such a pickle is the raw bytes behind a
  marker no bz2 stream starts with, so Beam's own `loads` refuses one that got out of the
  block (OSError, "Invalid data stream") rather than misreading it; bz2 pickles made
  elsewhere still read. Payloads over RAW_MAX_BYTES are still compressed (protocol buffers'
  2 GB limit is Beam's other reason).

The submodule search:

Beam pickles each DoFn and function of a stage with cloudpickle, and for every function
cloudpickle looks for loaded submodules of each package the function's globals reference:
`_find_imported_submodules` walks all of `sys.modules` (~10,000 names in a run) once per such
package. Measured in a penguin run: 1,916 calls, 0.40 s. Within the block the names under a
package are listed once and listed again only after modules were imported or removed (the
count of `sys.modules` changed), and the function answers as cloudpickle's does: the same
modules, in `sys.modules`' order.
"""
from __future__ import annotations

import contextlib
import sys
import types
from typing import Iterator

from pipeline.runners.module_attribute import replaced

# cloudpickle_fast imports the function by name and calls it as its own global.
_CALLER = "cloudpickle.cloudpickle_fast"
# Beam's pickler calls bz2.compress and bz2.decompress through its module global `bz2`.
_PICKLER = "apache_beam.internal.cloudpickle_pickler"
MEMO_BYTES = 64 * 2**20  # payloads and results kept, at most (a run's are a few MB)
RAW_MAX_BYTES = 64 * 2**20  # in-process pickles left uncompressed up to this size
# Before a pickle left uncompressed; a bz2 stream starts with b"BZh".
RAW_MARK = b"csv2model-uncompressed-pickle\0"


def _submodule_finder():
    listed: dict[str, tuple[int, list[str]]] = {}  # package -> (len(sys.modules), names under it)

    def names_under(package: str) -> list[str]:
        count = len(sys.modules)
        found = listed.get(package)
        if found is None or found[0] != count:
            prefix = package + "."
            found = (count, [name for name in list(sys.modules)
                             if name is not None and name.startswith(prefix)])
            listed[package] = found
        return found[1]

    def find_imported_submodules(code, top_level_dependencies):
        subimports = []
        names = set(code.co_names)
        for x in top_level_dependencies:
            if (isinstance(x, types.ModuleType) and
                    hasattr(x, "__package__") and x.__package__):
                prefix = x.__name__ + "."
                for name in names_under(x.__name__):
                    # cloudpickle's test: every part of the submodule's name is a name the
                    # function's code uses.
                    if not set(name[len(prefix):].split(".")) - names and name in sys.modules:
                        subimports.append(sys.modules[name])
        return subimports

    return find_imported_submodules


@contextlib.contextmanager
def submodules_listed_once() -> Iterator[None]:
    with replaced(_CALLER, "_find_imported_submodules", _submodule_finder()):
        yield


class _Bz2Once:
    """bz2's compress and decompress, each answer kept for the same input."""

    def __init__(self, bz2_module, limit: int = MEMO_BYTES):
        self._bz2, self._limit, self._kept = bz2_module, limit, 0
        self._compressed: dict[tuple[bytes, int], bytes] = {}
        self._decompressed: dict[bytes, bytes] = {}

    def compress(self, data, compresslevel: int = 9) -> bytes:
        key = (bytes(data), compresslevel)
        found = self._compressed.get(key)
        if found is None:
            found = self._bz2.compress(data, compresslevel)
            if self._keep(len(key[0]) + len(found)):
                self._compressed[key] = found
        return found

    def decompress(self, data) -> bytes:
        key = bytes(data)
        found = self._decompressed.get(key)
        if found is None:
            found = self._bz2.decompress(data)
            if self._keep(len(key) + len(found)):
                self._decompressed[key] = found
        return found

    def _keep(self, size: int) -> bool:
        if self._kept + size > self._limit:
            return False
        self._kept += size
        return True


class _RawInProcess:
    """Pickles that stay in this process: the bytes as they are, behind RAW_MARK; anything
    else (a bz2 pickle, or a payload over raw_max) through bz2, once per payload."""

    def __init__(self, bz2_once: _Bz2Once, raw_max: int = RAW_MAX_BYTES):
        self._bz2, self._raw_max = bz2_once, raw_max

    def compress(self, data, compresslevel: int = 9) -> bytes:
        if len(data) > self._raw_max:
            return self._bz2.compress(data, compresslevel)
        return RAW_MARK + bytes(data)

    def decompress(self, data) -> bytes:
        if bytes(data[:len(RAW_MARK)]) == RAW_MARK:
            return bytes(data[len(RAW_MARK):])
        return self._bz2.decompress(data)


@contextlib.contextmanager
def compressed_once(in_process: bool = False) -> Iterator[None]:
    """Within the block Beam's pickles are bz2'd once per payload; with in_process (every
    pickle is read back by this process) not compressed at all."""
    import bz2

    codec = _Bz2Once(bz2)
    with replaced(_PICKLER, "bz2", _RawInProcess(codec) if in_process else codec):
        yield
