"""`python -m pipeline <command>`: the command line lives in pipeline/cli/main.py."""
import logging
import os
import sys

from pipeline.cli.main import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
logging.shutdown()
# Skip the interpreter's teardown: with TensorFlow, TFX and Great Expectations loaded it takes
# ~4 s of the user's time after the summary is printed (measured), and nothing is left to do: runs
# are logged synchronously and every file is flushed above.
os._exit(code)
