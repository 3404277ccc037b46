"""The image: `make image` builds the Dockerfile with a container engine, and what runs in it is
what the Kubeflow steps and Beam's workers need.

Skips, saying why, where no engine runs (a docker CLI without a daemon, as on CI's machines) or
where neither the Dockerfile's base images nor local stand-ins for them
(scripts/image-standin-bases, for machines without a container registry) are there and pulling
fails. When it runs it needs PyPI and Debian's packages (the build installs the lock): about
10 minutes on a cold build, about 2 with the engine's layer cache (docs/image.md).
CONTAINER_ENGINE=podman uses podman.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = os.environ.get("CONTAINER_ENGINE", "docker")
WORKDIR = "/opt/csv2model"
pytestmark = pytest.mark.e2e


def engine(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([ENGINE, *args], capture_output=True, text=True, timeout=timeout)


def base_images() -> dict[str, str]:
    """The Dockerfile's ARG defaults: BASE_IMAGE and BEAM_SDK_IMAGE."""
    text = (REPO / "Dockerfile").read_text()
    return dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", text, re.MULTILINE))


def standin_images() -> dict[str, str]:
    beam = re.search(r"^apache-beam==(\S+)$", (REPO / "requirements/lock.txt").read_text(),
                     re.MULTILINE).group(1)
    return {"BASE_IMAGE": "csv2model-standin/python:3.10-bookworm",
            "BEAM_SDK_IMAGE": f"csv2model-standin/beam_python3.10_sdk:{beam}"}


def have(images: dict[str, str]) -> bool:
    return all(engine("image", "inspect", name).returncode == 0 for name in images.values())


@pytest.fixture(scope="module")
def image():
    try:
        info = engine("info", timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"no container engine ({ENGINE}): {error}")
    if info.returncode != 0:
        pytest.skip(f"no container engine runs here: `{ENGINE} info` says "
                    f"{(info.stderr or info.stdout).strip().splitlines()[-1]}")
    official, build_args = base_images(), ""
    if not have(official):
        if have(standin_images()):
            build_args = " ".join(f"--build-arg {k}={v}" for k, v in standin_images().items())
        else:
            pulled = engine("pull", official["BASE_IMAGE"], timeout=300)
            if pulled.returncode != 0:
                pytest.skip(f"the base image {official['BASE_IMAGE']} cannot be pulled "
                            f"({pulled.stderr.strip()[-200:]}) and there are no local stand-ins "
                            "(scripts/image-standin-bases builds them)")
    tag = f"csv2model-test:{uuid.uuid4().hex[:8]}"
    build = subprocess.run(["make", "image", f"IMAGE={tag}", f"CONTAINER_ENGINE={ENGINE}",
                            f"IMAGE_BUILD_ARGS={build_args}"], cwd=REPO, capture_output=True,
                           text=True, timeout=3600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        yield tag
    finally:
        # Beam stops its worker containers but does not remove them; then the image can go.
        stopped = engine("ps", "-a", "-q", "--filter", f"ancestor={tag}").stdout.split()
        if stopped:
            engine("rm", "-f", *stopped)
        # Its own layers (a rebuilt code layer; all of them when the cache missed) go with it.
        engine("rmi", tag, timeout=900)


def in_image(tag: str, entrypoint: str, *args: str) -> subprocess.CompletedProcess:
    return engine("run", "--rm", "--network=none", "--entrypoint", entrypoint, tag, *args,
                  timeout=600)


def test_the_image_holds_the_locked_venv_and_the_repository(image):
    checked = in_image(image, "scripts/install-venv", "--check", ".venv")
    assert checked.returncode == 0, checked.stderr
    assert f"{WORKDIR}/.venv: " in checked.stdout and "pip check passes" in checked.stdout
    # A Kubeflow step: `python -m <TFX's entry point>` from the working dir, with the project's
    # modules (the components' executors, the dataset specs under data/).
    probe = in_image(image, "python", "-c", (
        "import os, sys; import tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor;"
        " import components, pipeline.definition.builder;"
        " print(os.getcwd(), sys.prefix, os.path.isfile('data/penguins/spec.yaml'))"))
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.split()[-3:] == [WORKDIR, f"{WORKDIR}/.venv", "True"]
    entrypoint = engine("image", "inspect", "--format", "{{json .Config.Entrypoint}}", image)
    assert entrypoint.stdout.strip() == '["/opt/apache/beam/boot"]'


def test_the_pipeline_runs_in_the_image_without_network(image, tmp_path):
    """Everything a step needs is in the image: the whole penguins pipeline, no network, into a
    mounted output root (about 35 s)."""
    done = engine("run", "--rm", "--network=none", "-v", f"{tmp_path}:/out", "--entrypoint",
                  "python", image, "-m", "pipeline", "run", "--dataset", "penguins",
                  "--output-root", "/out", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"Evaluator .* blessed yes", done.stdout), done.stdout
    assert list((tmp_path / "penguins" / "serving").glob("*/saved_model.pb"))


_BEAM_PROBE = """
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

def where(x):
    import os, sys
    import tfx  # the image's TFX, not only Beam
    return x * x, sys.prefix, os.getcwd()

options = PipelineOptions(["--runner=PortableRunner", "--job_endpoint=embed",
                           "--environment_type=DOCKER", "--environment_config=" + sys.argv[1]])
with beam.Pipeline(options=options) as p:
    rows = p | beam.Create([1, 2, 3]) | beam.Map(where)
    assert_that(rows, equal_to([(n * n, sys.argv[2] + "/.venv", sys.argv[2]) for n in (1, 2, 3)]))
"""


def test_beam_starts_its_sdk_workers_in_the_image(image, tmp_path):
    """What Flink and Spark do with --environment_type=DOCKER, here through Beam's own portable
    runner: `docker run <image> --id=... --control_endpoint=...` starts Beam's boot program, whose
    SDK harness runs the transforms with the image's venv (the assertion runs in the workers)."""
    done = subprocess.run([sys.executable, "-c", _BEAM_PROBE, image, WORKDIR], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
