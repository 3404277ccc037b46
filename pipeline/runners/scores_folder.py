"""Where `make score` puts a scored file: outputs/<dataset>/scores/<timestamp>/predictions.csv.

Published only after the whole scoring run succeeded, by moving a complete folder into place
(a rename), so a reader never sees half a file and a run stopped by bad input, a gate or a
failure leaves nothing under scores/. The PredictionsWriter's artifact in the pipeline root
keeps its own copy (TFX's record of the run; a cached re-run publishes it again): the published
file is a hard link to it when the file system allows, else a copy.
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
        target = staging / PREDICTIONS_FILE
        try:
            os.link(scored_csv, target)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(scored_csv, target)
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
