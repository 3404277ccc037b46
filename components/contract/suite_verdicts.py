"""Great Expectations' verdict on a suite, remembered, so a run whose suite GX accepted before
does not import GX to hear it again.

Checking a suite (suite_loading.parse_suite) asks GX two things: how each expectation's batch
results combine (its class in GX's registry) and whether GX builds the suite at all. Importing
GX for that was ~2.2 s of every run's set-up, before TFX, even when the contract stage then came
from the cache and nothing else in the run needed GX. The answers depend only on the suite's
text, GX's version and the checking code, so an accepted suite's answers are kept under
`.cache/suite-verdicts/`, keyed by all three: an edited suite, another GX or a change to
suite_loading.py asks GX again. A refused suite is never remembered (it is refused each time,
by GX itself). The checks against the spec (columns, severities) do not use GX and always run.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.config.settings import REPO_ROOT

CACHE_DIR = REPO_ROOT / ".cache" / "suite-verdicts"
_CHECKING_CODE = Path(__file__).with_name("suite_loading.py")


@functools.lru_cache(maxsize=None)
def _checker(code_path: Path) -> bytes | None:
    """GX's version and the checking code, read once per process (a run checks its suite in
    the preflight, in the builder and in the contract stage); None when either is missing."""
    try:
        return metadata.version("great_expectations").encode() + b"\0" + code_path.read_bytes()
    except (metadata.PackageNotFoundError, OSError):
        return None


def _key(raw: Any) -> str | None:
    checker = _checker(_CHECKING_CODE)
    if checker is None:
        return None
    text = json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode() + b"\0" + checker).hexdigest()


def kinds(raw: Any, cache_dir: Path | None = None) -> list[str] | None:
    """The kinds GX's registry gave this suite's expectations when GX accepted it, or None
    when it has not (yet) been accepted under this GX and this code."""
    key = _key(raw)
    if key is None:
        return None
    try:
        remembered = json.loads(((cache_dir or CACHE_DIR) / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    found = remembered.get("kinds") if isinstance(remembered, dict) else None
    expectations = raw.get("expectations") if isinstance(raw, dict) else None
    if not isinstance(found, list) or not isinstance(expectations, list) \
            or len(found) != len(expectations):
        return None
    return found


def remember(raw: Any, accepted_kinds: list[str], cache_dir: Path | None = None) -> None:
    """Keep GX's acceptance of `raw`. Best effort: a read-only checkout just asks GX again."""
    key = _key(raw)
    if key is None:
        return
    cache_dir = cache_dir or CACHE_DIR
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".verdict-")
        with os.fdopen(fd, "w") as f:
            json.dump({"kinds": accepted_kinds}, f)
        os.replace(tmp, cache_dir / f"{key}.json")  # whole or absent, for a concurrent reader
    except OSError:
        pass
