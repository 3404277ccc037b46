# The csv2model image: this repository installed from requirements/lock.txt by scripts/install-venv,
# the same recipe as `make venv`, on Python 3.10. `make image` builds it; docs/image.md says what
# it is for and how to push it. One image serves:
#  - Kubeflow Pipelines v2 / Vertex AI (`make compile-kfp`, --cluster-image): each step's command
#    is `python -m tfx...`, which replaces the entry point; `python` is the venv's (PATH below),
#    and the working dir is the repository, where data/<dataset>/spec.yaml is found.
#  - Beam's SDK workers on Flink and Spark (--environment_type=DOCKER) and Dataflow
#    (--sdk_container_image): the runner starts the container with Beam's boot flags, so the entry
#    point is Beam's boot program, copied from Beam's own SDK image of the same Beam version.
# BASE_IMAGE must have Python 3.10 (TFX 1.16); BEAM_SDK_IMAGE's Beam must match the lock's.
ARG BASE_IMAGE=python:3.10-slim-bookworm
ARG BEAM_SDK_IMAGE=apache/beam_python3.10_sdk:2.59.0

FROM ${BEAM_SDK_IMAGE} AS beam_sdk

FROM ${BASE_IMAGE}
# Beam's documented pattern for custom containers: its boot program and what it ships beside it.
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam

WORKDIR /opt/csv2model
# The dependencies first, in a layer of their own: an edit to the code rebuilds only the small
# layer below, not the ~3.5 GB of TFX, TensorFlow, Beam and MLflow.
COPY requirements/lock.txt requirements/kfp-lock.txt requirements/
COPY pyproject.toml ./
# Only the two scripts the install runs: an edit to any other script must not rebuild this layer.
COPY scripts/install-venv scripts/find-python310 scripts/
# No pip cache in the image (it would only add size), no pip upgrade notices in the build log.
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Two pins of the lock (crcmod, pyfarmhash) ship no wheel and compile C/C++: g++ is there for the
# install only. kfp-lock.txt (kfp-pipeline-spec, as `make compile-kfp` adds to .venv): TFX's
# Kubeflow v2 step entry point imports it in every step.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ \
 && scripts/install-venv --no-project .venv \
 && LOCK=requirements/kfp-lock.txt scripts/install-venv --no-project .venv \
 && apt-get purge -y --auto-remove g++ \
 && rm -rf /var/lib/apt/lists/*

COPY . .
# The same script again: the locks are already satisfied, so this installs the repository itself
# (editable, as `make venv` does) and writes the stamp, so `make` inside the image reuses .venv.
RUN scripts/install-venv .venv && scripts/install-venv --check .venv \
 && LOCK=requirements/kfp-lock.txt scripts/install-venv --check .venv

# The venv's python first on PATH, for the Kubeflow steps' `python -m ...` and for Beam's boot.
# RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT: Beam's boot would otherwise make a venv of its own with
# --system-site-packages of the *base* Python, which does not see this venv's packages.
ENV VIRTUAL_ENV=/opt/csv2model/.venv \
    PATH=/opt/csv2model/.venv/bin:$PATH \
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1 \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/apache/beam/boot"]
