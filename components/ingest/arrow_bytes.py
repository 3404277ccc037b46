"""The bytes behind a pyarrow binary or string array, read from its buffers: what writing or
splitting a whole column needs without a Python object per value."""
from __future__ import annotations

import numpy as np
import pyarrow as pa


def offsets(array: pa.Array) -> np.ndarray:
    """Where each value starts in the data buffer, and where the last one ends (len + 1)."""
    wide = pa.types.is_large_binary(array.type) or pa.types.is_large_string(array.type)
    return np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32,
                         count=len(array) + 1, offset=array.offset * (8 if wide else 4))


def joined(array: pa.Array) -> memoryview:
    """Every value's bytes, one after the other, without a copy (nulls are left out)."""
    if not len(array):
        return memoryview(b"")
    ends = offsets(array)
    return memoryview(array.buffers()[2])[int(ends[0]):int(ends[-1])]
