"""A run's source in MLflow: this checkout, its branch and its commit (git is asked, not parsed)."""
from __future__ import annotations

import subprocess

from pipeline.config.settings import REPO_ROOT

# MLflow's own names, which its UI reads. It shows a run's Source (the base name of
# mlflow.source.name, with the branch and the first 7 digits of the commit beside it) only when
# mlflow.source.name is set.
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_DIRTY = "git.dirty"
SOURCE_TYPE = "LOCAL"  # mlflow.entities.SourceType.LOCAL: code run from a local checkout


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def git_commit() -> tuple[str, bool] | None:
    """(commit, has uncommitted changes to tracked files), or None outside a git checkout."""
    try:
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit, bool(status)


def source_tags() -> dict[str, str]:
    """Where the run's code came from, in the tags MLflow's UI shows as a run's Source: this
    checkout (the pipeline is the whole repository: its definition and module code), the branch
    and the commit. git.dirty says whether tracked files differed from the commit."""
    tags = {TAG_SOURCE_NAME: str(REPO_ROOT), TAG_SOURCE_TYPE: SOURCE_TYPE}
    commit = git_commit()
    if commit is not None:
        tags[TAG_GIT_COMMIT], tags[TAG_GIT_DIRTY] = commit[0], str(commit[1]).lower()
        try:
            branch = _git("rev-parse", "--abbrev-ref", "HEAD")
        except (OSError, subprocess.CalledProcessError):
            branch = ""
        if branch and branch != "HEAD":  # HEAD: a detached checkout has no branch
            tags[TAG_GIT_BRANCH] = branch
    return tags
