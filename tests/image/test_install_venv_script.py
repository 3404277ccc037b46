"""scripts/install-venv, the one install recipe behind `make venv` and the Dockerfile.

Fast (about 5 s, no network): `--check` against the project's own venv and a lock it does not
match, and the install path on a fresh venv with a lock that needs no download (the pip that
ships with Python). The full install of requirements/lock.txt takes minutes and GBs: it is what
`make venv` and the image build (tests/image/test_image_build.py) do; docs/image.md has timings.
"""
from __future__ import annotations

import ensurepip
import os
import re
import subprocess
import sys
from pathlib import Path

from pipeline.config.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install-venv"
LOCK = REPO / "requirements" / "lock.txt"


def run(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def lock_pins(path: Path = LOCK) -> int:
    return sum(1 for line in path.read_text().splitlines() if "==" in line
               and not line.startswith("#"))


def test_check_passes_on_the_venv_running_the_tests():
    done = run("--check", sys.prefix)
    assert done.returncode == 0, done.stderr
    assert f"{lock_pins()} pins of lock.txt installed, pip check passes" in done.stdout
    assert f"csv2model editable from {REPO}" in done.stdout


def test_check_names_each_pin_the_venv_does_not_match(tmp_path):
    lock = tmp_path / "lock.txt"
    text = LOCK.read_text()
    beam = re.search(r"^apache-beam==(\S+)$", text, re.MULTILINE).group(1)
    lock.write_text(text.replace(f"apache-beam=={beam}\n", "apache-beam==0.0.1\n")
                    + "no-such-package-csv2model==1.0\n")
    # From another folder, with the venv named relatively: the script resolves both.
    done = run("--check", os.path.relpath(sys.prefix, tmp_path), env={"LOCK": str(lock)},
               cwd=tmp_path)
    assert done.returncode == 1
    assert f"apache-beam: lock 0.0.1, venv {beam}" in done.stderr
    assert "no-such-package-csv2model: lock 1.0, venv missing" in done.stderr
    assert "pins of" not in done.stdout


def test_install_creates_the_venv_and_fails_when_the_lock_cannot_be_installed(tmp_path):
    """A fresh venv from scripts/find-python310, then the lock; no index here, so the lock is the
    pip that Python ships (already there) and a failed pip upgrade must not stop the install."""
    venv = tmp_path / "venv"
    lock = tmp_path / "lock.txt"
    lock.write_text(f"# no download needed\npip=={ensurepip.version()}\n")
    offline = {"LOCK": str(lock), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    done = run("--no-project", str(venv), env=offline)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"Setting up {venv} (Python 3.10")
    assert subprocess.run([venv / "bin" / "python", "-c", "import sys; print(sys.version)"],
                          capture_output=True, text=True).stdout.startswith("3.10.")
    # --no-project (the Dockerfile's dependency layer): no project and no stamp yet, so make
    # would not take this venv for a finished one, and --check says what is missing.
    assert not (venv / ".installed").exists()
    check = run("--check", str(venv), env=offline)
    assert check.returncode == 1
    assert "csv2model: not installed editable" in check.stderr
    # A pin that cannot be installed fails the script (pip's exit status survives the filter).
    lock.write_text("pip==0.0.1\n")
    failed = run("--no-project", str(venv), env=offline)
    assert failed.returncode != 0
    assert "pip==0.0.1" in failed.stdout + failed.stderr


def test_make_venv_and_make_image_use_the_script_and_the_cluster_image_name(tmp_path):
    venv = tmp_path / "v"
    # --no-print-directory: under `make test` this make is a sub-make, which would print its
    # "Entering directory" lines around the recipe. Nor may the outer make's variables
    # (`make test IMAGE=...`, in MAKEFLAGS) reach it: the defaults are what is checked.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
           and k not in ("IMAGE", "CONTAINER_ENGINE", "IMAGE_BUILD_ARGS", "VENV")}
    dry = subprocess.run(["make", "--no-print-directory", "-n", "venv", f"VENV={venv}"],
                         cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert dry.stdout.strip() == f"scripts/install-venv {venv}", dry.stdout + dry.stderr
    image = subprocess.run(["make", "--no-print-directory", "-n", "image"], cwd=REPO,
                           capture_output=True, text=True, timeout=60, env=env)
    # The name `make compile-kfp` and the cluster runners use unless told otherwise.
    assert image.stdout.split()[:4] == ["docker", "build", "-t", Settings().cluster_image]
    # The image installs with the same script: the dependencies, then the project and a check.
    runs = [line for line in (REPO / "Dockerfile").read_text().splitlines()
            if "scripts/install-venv" in line and not line.lstrip().startswith("#")]
    assert any("--no-project .venv" in line for line in runs)
    assert any("install-venv .venv && scripts/install-venv --check .venv" in line
               for line in runs)
