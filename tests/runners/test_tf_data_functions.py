"""pipeline/runners/tf_data_functions.py: TensorFlow's runtime starts inside the runs' block
with Grappler off (what tf.data instantiates its functions with); the config that tf.function
calls and sessions read (tf.Transform's are made before the runtime starts) never has it. Each case in a fresh process (~5 s): a runtime
starts once per process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_SCRIPT = """
import json, sys
from tensorflow.python import pywrap_tfe
from tensorflow.python.eager import context
from tensorflow.core.protobuf import config_pb2
import tensorflow as tf

started_with = []
original = pywrap_tfe.TFE_ContextOptionsSetConfig
def recording(options, config):
    started_with.append(config_pb2.ConfigProto.FromString(config)
                        .graph_options.rewrite_options.disable_meta_optimizer)
    return original(options, config)
pywrap_tfe.TFE_ContextOptionsSetConfig = recording

case = sys.argv[1]
if case == "started before":
    tf.constant(1)
from pipeline.config.settings import Settings
from pipeline.runners.beam_in_process import levers_for_beam
def session_reads():  # what a session made now would read (tf.Transform's, before any op)
    return context.context().config.graph_options.rewrite_options.disable_meta_optimizer
with levers_for_beam(Settings(dataset="penguins", output_root=sys.argv[2])):
    before_start = session_reads()
    if case != "no TensorFlow in the block":
        values = [int(x) for x in tf.data.Dataset.range(3).map(lambda x: x + 1)]
        assert values == [1, 2, 3], values
    hook_left = "ensure_initialized" in vars(context.context())
    inside = session_reads()
print(json.dumps({"started_with": started_with, "before_start": before_start, "inside": inside,
                  "current": session_reads(), "hook_left": hook_left,
                  "hook_after": "ensure_initialized" in vars(context.context())}))
"""


def _run(case: str, tmp_path) -> dict:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, case, str(tmp_path)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.probe
@pytest.mark.parametrize("case, started_with, hook_left", [
    ("first use in the block", [True], False),
    ("started before", [False], False),
    # Waiting for a start inside the block, then gone after it.
    ("no TensorFlow in the block", [], True),
], ids=["started-in-the-block", "started-before", "no-start"])
def test_the_runtime_starts_without_grappler_only_in_the_block_and_the_config_is_left_as_it_was(
        case, started_with, hook_left, tmp_path):
    result = _run(case, tmp_path)
    assert result["started_with"] == started_with
    # tf.function calls and sessions, made before the runtime's start or after it: as before.
    assert result["before_start"] is result["inside"] is result["current"] is False
    assert result["hook_left"] is hook_left and not result["hook_after"]
