"""A module whose import takes 20 s: a warm-up import the checks' process is still in when
the run fails before the checks may start (tests/runners/test_check_branch.py)."""
import time

time.sleep(20)
