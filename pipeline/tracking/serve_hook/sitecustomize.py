"""Start-up hook of `make serve`'s model server: keeps TCP_NODELAY with `--workers` above 1.

`make serve` puts this folder first on PYTHONPATH for `mlflow models serve` and the processes it
starts, so Python imports this file when each of them starts (as it would any sitecustomize.py).
It acts only in the `uvicorn` process MLflow starts, and only to work around uvicorn's
https://github.com/Kludex/uvicorn/issues/3149 (open in uvicorn 0.54):

With more than one worker, uvicorn binds the listening socket itself (Config.bind_socket) without
naming the protocol, so the socket says proto 0, every accepted connection inherits that, and
asyncio only sets TCP_NODELAY on a connection whose socket says IPPROTO_TCP. Nagle's algorithm
then holds each response's body until the client acknowledges its headers, which a client does
after its delayed-ACK timer: every request on a kept-alive connection takes 40 ms or more
(measured: 48 ms p50 for a 5 ms single-row prediction, 20 requests/s from one client). Rebuilding
the bound socket's Python object with proto IPPROTO_TCP (same file descriptor, nothing re-bound)
lets asyncio set TCP_NODELAY again. A uvicorn that names the protocol itself is left alone.

This file imports nothing from this repository. Delete it, and the PYTHONPATH entry in
pipeline/tracking/mlflow_cli.py, once uvicorn ships the fix.
"""
from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import socket
import sys

_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def with_tcp_proto(sock: socket.socket) -> socket.socket:
    """A TCP socket whose Python object says proto 0 (uvicorn's bind_socket), as one that says
    IPPROTO_TCP; any other socket unchanged."""
    if sock.family not in _TCP_FAMILIES or sock.type != socket.SOCK_STREAM or sock.proto != 0:
        return sock
    inheritable = sock.get_inheritable()
    tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    tcp.set_inheritable(inheritable)  # uvicorn's workers inherit it
    return tcp


def keep_tcp_nodelay(config_class) -> None:
    """Wrap uvicorn's Config.bind_socket so the socket it returns says IPPROTO_TCP."""
    bind_socket = config_class.bind_socket
    if getattr(bind_socket, "keeps_tcp_nodelay", False):
        return

    @functools.wraps(bind_socket)
    def bind_tcp_socket(self):
        return with_tcp_proto(bind_socket(self))

    bind_tcp_socket.keeps_tcp_nodelay = True
    config_class.bind_socket = bind_tcp_socket


def _run_next_sitecustomize() -> None:
    """Python imports only the first sitecustomize on the path: run the one this file hides."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


if os.path.basename(sys.argv[0] if sys.argv else "") == "uvicorn":
    try:
        from uvicorn.config import Config
    except ImportError:  # not this uvicorn's layout: serve without the work-around
        pass
    else:
        keep_tcp_nodelay(Config)
_run_next_sitecustomize()
