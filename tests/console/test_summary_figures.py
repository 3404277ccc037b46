"""pipeline/console/summary_figures.py: how the summary lines write their figures."""
from __future__ import annotations

import pytest

from pipeline.console.summary_figures import unsigned_zero


@pytest.mark.parametrize("value, shown", [
    (-0.001, "0.00"), (-0.0049, "0.00"), (-0.0, "0.00"), (0.0, "0.00"),
    (-0.006, "-0.01"), (0.924, "0.92"), (-1.5, "-1.50"),
])
def test_a_figure_that_rounds_to_zero_has_no_sign(value, shown):
    """R² -0.001 read `R² -0.00`; a value that rounds to zero shows no sign, any other keeps
    its own."""
    assert unsigned_zero(value) == shown
