"""A library's module-level function or class attribute replaced for the length of a block (the
Beam levers in beam_state_cache.py, beam_dofn_specs.py and beam_option_views.py). It only
reaches callers that look the name up at each call; each lever's test in tests/upgrading checks
that its callers still do."""
from __future__ import annotations

import contextlib
import importlib
from typing import Any, Iterator


@contextlib.contextmanager
def replaced(module_name: str, attribute: str, replacement: Any) -> Iterator[None]:
    """Within the block, module_name.attribute is `replacement`; the original afterwards.
    attribute may name a class's attribute (`Class.method`). When the module cannot be imported
    (a task whose stage blocks the library, stage_imports.py), the block runs as it is."""
    try:
        owner = importlib.import_module(module_name)
    except ImportError:
        yield
        return
    *path, attribute = attribute.split(".")
    for name in path:
        owner = getattr(owner, name)
    original = owner.__dict__[attribute] if isinstance(owner, type) else getattr(owner, attribute)
    setattr(owner, attribute, replacement)
    try:
        yield
    finally:
        setattr(owner, attribute, original)
