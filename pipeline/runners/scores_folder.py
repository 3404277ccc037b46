"""Where `make score` puts a scored file: outputs/<dataset>/scores/<timestamp>/predictions.csv.

Published only after the whole scoring run succeeded, by moving a complete folder into place
(a rename), so a reader never sees half a file and a run stopped by bad input, a gate or a
failure leaves nothing under scores/. The PredictionsWriter's artifact in the pipeline root
keeps its own copy (TFX's record of the run; a cached re-run publishes it again). Each published
file is a copy of it, never a hard link: a user edits or appends to their predictions, and a
link would change the artifact and every other run's file with it (a cached re-run of the same
CSV publishes the same artifact again). The copy is the kernel's (shutil uses sendfile): a
1.5M-row file of ~100 MB takes a fraction of a second.
"""
from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

from pipeline.config.settings import Settings

SCORES_FOLDER = "scores"
PREDICTIONS_FILE = "predictions.csv"


def scores_dir(settings: Settings) -> Path:
    return settings.output_dir / SCORES_FOLDER


def publish(settings: Settings, scored_csv: Path, now: datetime.datetime | None = None) -> Path:
    """Put scored_csv under scores/<timestamp>/ (a new folder each time); returns its path."""
    stamp = (now or datetime.datetime.now()).strftime("%Y-%m-%dT%H-%M-%S")
    root = scores_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{stamp}.{os.getpid()}.incomplete"
    staging.mkdir()
    try:
        shutil.copyfile(scored_csv, staging / PREDICTIONS_FILE)
        folder, n = root / stamp, 1
        while True:
            try:
                os.rename(staging, folder)  # fails if the folder exists (not empty)
                break
            except OSError:
                if not folder.exists():
                    raise
                n += 1
                folder = root / f"{stamp}-{n}"
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder / PREDICTIONS_FILE
