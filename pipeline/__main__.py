"""`python -m pipeline <command>`: the command line lives in pipeline/cli/main.py."""
import sys

from pipeline.cli.main import main

sys.exit(main())
