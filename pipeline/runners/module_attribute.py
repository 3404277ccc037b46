"""A library's module-level function replaced for the length of a block (the Beam levers in
beam_state_cache.py and beam_dofn_specs.py). It only reaches callers that look the name up on the
module at each call; each lever's test in tests/upgrading checks that its callers still do."""
from __future__ import annotations

import contextlib
import importlib
from typing import Any, Iterator


@contextlib.contextmanager
def replaced(module_name: str, attribute: str, replacement: Any) -> Iterator[None]:
    """Within the block, module_name.attribute is `replacement`; the original afterwards. When
    the module cannot be imported (a task whose stage blocks the library, stage_imports.py), the
    block runs as it is."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        yield
        return
    original = getattr(module, attribute)
    setattr(module, attribute, replacement)
    try:
        yield
    finally:
        setattr(module, attribute, original)
