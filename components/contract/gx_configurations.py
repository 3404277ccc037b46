"""Each Great Expectations expectation builds its configuration once per validation, not at every
look.

GX 1.24's `Expectation.configuration` is a property that rebuilds the configuration at each
access: a pydantic `.dict()` of the expectation, then a new `ExpectationConfiguration`. A
validation reads it many times per expectation (its domain, success and runtime keyword
arguments each read it once per key, then its validation dependencies, its metrics check and
its result), and a suite of thousands of expectations pays that per expectation: on modeldata's
grants (4,517 expectations, 518 rows) about a third of the contract check's 88 s, py-spy.

Within the block, the first look builds it as GX does and later looks get that same object, for
as long as the expectation lives in the block. suite_validation.py opens one block per batch, so
what it holds is one batch's expectations (GX makes them afresh from the suite for each
validation). Nothing in the validation changes an expectation's fields after its configuration
is first read (tests/upgrading checks the property is still the rebuild it replaces).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator


@contextlib.contextmanager
def configurations_built_once() -> Iterator[None]:
    from great_expectations.expectations.expectation import Expectation

    rebuild = Expectation.__dict__["configuration"]
    # id -> (the expectation, kept alive so that its id is not reused; its configuration)
    built: dict[int, tuple[Any, Any]] = {}

    def configuration(self):
        entry = built.get(id(self))
        if entry is None:
            entry = built[id(self)] = (self, rebuild.fget(self))
        return entry[1]

    Expectation.configuration = property(configuration, doc=rebuild.__doc__)
    try:
        yield
    finally:
        Expectation.configuration = rebuild
        built.clear()
