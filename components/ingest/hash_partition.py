"""Which split a row goes to: TFX's hash partition, with copies of a row spread.

TFX's ExampleGen (_PartitionFn) puts a serialized tf.Example in the split of SHA-256(record)
mod the number of hash buckets: the same row always lands in the same split, in this run and
in the next drop of data. So every copy of a row lands there too. On a table of repeated rows
that leaves the splits nothing in common: R's Titanic table (COUNT package) has 1,316 rows but
20 distinct ones, and each (class, age, sex, survived) went whole to train or whole to eval. The
model was evaluated on people whose like it had never seen, and read AUC 0.17.

Here the first copy of a row is hashed as TFX hashes it (a table without repeated rows is split
exactly as TFX splits it), and its k-th later copy by SHA-256(the row's digest, k): spread over
the splits as distinct rows are. Copies are counted in file order within what one `Partition`
sees: the ExampleGen keeps one per byte range of the CSV (ranges depend on the file's bytes
alone, so the split does too), `make init` one for its sample.

Imports neither Beam nor TensorFlow: `make init` uses it too.
"""
from __future__ import annotations

import bisect
import hashlib
from typing import Iterable, Sequence


def split_of(record: bytes, bounds: Sequence[int]) -> int:
    """TFX's _PartitionFn for a serialized record without partition_feature_name: the split
    whose cumulative hash-bucket bound is the first above SHA-256(record) mod the total."""
    return _split(hashlib.sha256(record).digest(), bounds)


def _split(digest: bytes, bounds: Sequence[int]) -> int:
    return bisect.bisect(bounds, int.from_bytes(digest, "big") % bounds[-1])


class Partition:
    """Splits records in order, each later copy of a record hashed apart from the first."""

    def __init__(self, bounds: Sequence[int]):
        self.bounds = list(bounds)
        self._seen: dict[bytes, int] = {}  # digest -> copies so far (32 bytes a distinct row)

    def splits(self, records: Iterable[bytes]) -> list[int]:
        out = []
        for record in records:
            digest = hashlib.sha256(record).digest()
            copies = self._seen.get(digest, 0)
            self._seen[digest] = copies + 1
            if copies:
                digest = hashlib.sha256(digest + copies.to_bytes(8, "big")).digest()
            out.append(_split(digest, self.bounds))
        return out
