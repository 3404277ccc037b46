"""`python -m pipeline.bench` (`make bench`): see pipeline/bench/benchmark.py."""
from pipeline.bench.benchmark import main

raise SystemExit(main())
