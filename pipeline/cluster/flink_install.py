"""Where scripts/install-flink put Flink's distribution and Beam's Flink job server (set-up time:
nothing here downloads), and what is missing from it."""
from __future__ import annotations

from pathlib import Path

from pipeline.config.settings import FLINK_JOB_SERVER_JAR, REPO_ROOT

FLINK_VERSION = "1.18.1"
CACHE_DIR = REPO_ROOT / ".cache" / "flink"
FLINK_HOME = CACHE_DIR / f"flink-{FLINK_VERSION}"
INSTALL_HINT = "make flink-install (scripts/install-flink)"


def dist_jar(home: Path = FLINK_HOME) -> Path:
    return home / "lib" / f"flink-dist-{FLINK_VERSION}.jar"


def classpath(home: Path = FLINK_HOME) -> str:
    """lib/*.jar with flink-dist last, as Flink's own bin/config.sh orders it (its classes must
    not shadow a connector's or log4j's)."""
    jars = sorted(p for p in (home / "lib").glob("*.jar") if p != dist_jar(home))
    return ":".join(str(p) for p in [*jars, dist_jar(home)])


def missing_flink(home: Path = FLINK_HOME) -> str | None:
    """Why Flink cannot start from `home`, or None."""
    if not dist_jar(home).is_file() or not (home / "bin" / "bash-java-utils.jar").is_file():
        return f"Flink {FLINK_VERSION} is not installed in {home}: {INSTALL_HINT}"
    return None


def missing_job_server(jar: Path = FLINK_JOB_SERVER_JAR) -> str | None:
    """Why Beam cannot submit to Flink with `jar`, or None."""
    if Path(jar).is_file():
        return None
    return (f"Beam's Flink job server is not installed ({jar} is missing): {INSTALL_HINT} "
            "fetches org.apache.beam:beam-runners-flink-1.18-job-server:2.59.0 from Maven "
            "Central, which the registry of this machine does not serve (docs/cluster.md)")
