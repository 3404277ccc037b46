"""Command line: `python -m pipeline run|schema [options]`; `--help` lists every setting."""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from pipeline import settings as settings_lib
from pipeline.dataset_spec import SpecError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="CSV to a validated, trained, evaluated and exported Keras model (TFX).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "run the whole pipeline on a dataset"),
        ("schema", "draft a schema with SchemaGen, for review before committing it"),
    ):
        settings_lib.add_arguments(commands.add_parser(name, help=help_text,
                                                       description=help_text))
    return parser


def _root_cause(error: BaseException) -> BaseException:
    """TFX wraps executor errors; show the user the one that says what went wrong."""
    from components.data_gate import DataValidationError

    seen = error
    while seen is not None:
        if isinstance(seen, (DataValidationError, SpecError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return error


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings_lib.from_args(args)
    # tf.Transform and TFMA need Keras 2 (tf_keras); decide it before TensorFlow is imported.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    # google-api-core warns once per module on Python 3.10; the stack is pinned to 3.10 on purpose.
    warnings.filterwarnings("ignore", category=FutureWarning)
    from pipeline import local_runner

    try:
        if args.command == "run":
            local_runner.run_pipeline(settings)
        else:
            local_runner.draft_schema(settings)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every failure becomes one readable message
        cause = _root_cause(e)
        print(f"error: {cause}\n  full log: {settings.log_path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
