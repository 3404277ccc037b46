"""Beam's SDK worker pool (`--environment_type=EXTERNAL`) for a local Flink cluster: Beam's own
pool service (apache_beam.runners.worker.worker_pool_main) with three things fixed that only
show on a cluster:

- Beam starts each SDK worker as `python -c ...`, the first `python` on PATH: on these machines
  that is not this virtualenv's (pyenv's 3.11 shim, without Beam, TFX or this project). Workers
  here run sys.executable, this virtualenv's interpreter, which has the project installed
  (`pip install -e .`), so `components` and the stages' module code import in the workers.
- Beam binds the pool to every interface ([::]); anyone who reaches the port can make it start
  a worker that runs code sent by a control endpoint of their choosing. Here: 127.0.0.1 only.
- Beam pipes each worker's stdout and never reads it: a worker that prints 64 KB blocks. Here
  workers write to the pool's log.

Run: python -m pipeline.cluster.worker_pool --service_port=N (`make flink` does).
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import traceback

_LOGGER = logging.getLogger(__name__)
HOST = "127.0.0.1"


def worker_environment(environ=None) -> dict[str, str]:
    """What the SDK workers need in their environment: Keras 2 for tf.Transform and TFMA
    (pipeline/cli/main.py sets it before TensorFlow loads; the workers load TensorFlow on
    their own), TensorFlow's log level, and this virtualenv's bin first on PATH (any `python`
    a library starts is this one)."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("TF_USE_LEGACY_KERAS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def _servicer_class():
    from apache_beam.portability.api import beam_fn_api_pb2
    from apache_beam.runners.worker import worker_pool_main

    class LoopbackWorkerPool(worker_pool_main.BeamFnExternalWorkerPoolServicer):
        """Process-mode workers on this interpreter, output to the pool's own stdout."""

        def StartWorker(self, request, unused_context):  # noqa: N802 - gRPC method name
            command = [sys.executable, "-c",
                       "from apache_beam.runners.worker.sdk_worker import SdkHarness; "
                       f"SdkHarness({request.control_endpoint.url!r}, "
                       f"worker_id={request.worker_id!r}, "
                       f"state_cache_size={self._state_cache_size}, "
                       f"data_buffer_time_limit_ms={self._data_buffer_time_limit_ms}).run()"]
            try:
                _LOGGER.info("starting SDK worker %s", request.worker_id)
                self._worker_processes[request.worker_id] = subprocess.Popen(
                    command, stdout=sys.stdout, stderr=sys.stderr, close_fds=True)
                return beam_fn_api_pb2.StartWorkerResponse()
            except Exception:  # noqa: BLE001 - the error goes back to the runner, as in Beam
                return beam_fn_api_pb2.StartWorkerResponse(error=traceback.format_exc())

    return LoopbackWorkerPool


def serve(port: int):
    """The pool's gRPC server on 127.0.0.1:port, started; returns it."""
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.utils import thread_pool_executor

    server = grpc.server(thread_pool_executor.shared_unbounded_instance(),
                         options=[("grpc.http2.max_pings_without_data", 0),
                                  ("grpc.http2.max_ping_strikes", 0)])
    bound = server.add_insecure_port(f"{HOST}:{port}")
    if not bound:
        raise OSError(f"the worker pool cannot listen on {HOST}:{port}")
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(
        _servicer_class()(use_process=True), server)
    server.start()
    _LOGGER.info("Beam worker pool listening on %s:%d", HOST, bound)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service_port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.update(worker_environment())
    server = serve(args.service_port)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
