"""What a warm worker's child runs in tests/runners/test_warm_worker.py, instead of `python -m
pipeline` (as `python -m tests.runners.warm_probe <what> ...`):

  report        prints a JSON line: argv, cwd, umask, pid, ppid, PROBE_VALUE and stdin's text;
                "to stderr" on stderr
  exit N        exits N
  sleep FILE    writes its pid to FILE, then sleeps (SIGTERM kills it: the default action)
  trap FILE N   writes its pid to FILE, then sleeps; SIGTERM makes it exit N
"""
import json
import os
import signal
import sys
import time


def _pid_file(path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    what = argv[0]
    if what == "report":
        umask = os.umask(0)
        print(json.dumps({"argv": argv, "cwd": os.getcwd(), "umask": umask, "pid": os.getpid(),
                          "ppid": os.getppid(), "value": os.environ.get("PROBE_VALUE"),
                          "stdin": sys.stdin.read()}))
        print("to stderr", file=sys.stderr)
        return 0
    if what == "exit":
        return int(argv[1])
    if what in ("sleep", "trap"):
        if what == "trap":
            signal.signal(signal.SIGTERM, lambda *_: os._exit(int(argv[2])))
        _pid_file(argv[1])
        time.sleep(120)
        return 0
    return 64


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
