"""How a change in row count between two training drops is written (drift.py's row-count line,
the DriftGate's summary line). No TFX import: the summary reads it."""
from __future__ import annotations

from typing import Optional


def change_text(change: float, allowed: Optional[float] = None) -> str:
    """A change in rows as a signed percentage to one decimal (`-50.3%`), with more digits where
    one would print a change out of bounds as the bound itself (`-50.04%` against ±50%): a count
    refused must not read as allowed (`{:+.0%}` printed -50.3% as -50%, against ±50%)."""
    digits = 1
    while (allowed is not None and digits < 4 and abs(change) > allowed
           and round(abs(change) * 100, digits) <= round(allowed * 100, digits)):
        digits += 1
    return f"{change:+.{digits}%}"
