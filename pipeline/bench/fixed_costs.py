"""Where a run's seconds go, read off the times its summary lines arrived (issue 26).

A first run on a small CSV pays mostly for set-up, not for its data: this splits one measured
run (pipeline/bench/process.py records when each output line came) into

- imports: the command's start to its first line (Python, then the CLI's own imports);
- set-up: the first line to the first stage's start (the preflight, TFX, TensorFlow and Great
  Expectations imports, compiling the pipeline, ML Metadata);
- each stage: the seconds its summary line reports;
- between stages: what TFX's launcher spends outside the stages (resolving inputs, cache
  lookups, publishing to ML Metadata), the gaps the stage lines do not cover;
- stages beside each other: the checks run in a process of their own while the Transform runs
  (pipeline/runners/check_branch.py), so the stages' seconds add up to more than the time they
  took; this part (negative) is that excess, and the parts still add up to the wall time;
- MLflow logging: the last stage's line (the Pusher's) to the MLflow run's line (what logging
  still costs after the last stage);
- the rest: the MLflow line to the process's exit (registry line, "Done", interpreter exit).

Penguins' 344 rows make every stage almost all fixed cost; taxi's 15,002 rows beside it show
what grows with the data.
"""
from __future__ import annotations

import re

from pipeline.bench.process import STAGE_LINE

_MLFLOW = re.compile(r"^MLflow run ")
PUSHER = "Pusher"
MLFLOW_AFTER_PUSHER = f"MLflow logging after {PUSHER}"  # the part issue 26 gives a target


def parts(line_seconds: list[tuple[float, str]], wall_s: float) -> dict[str, float]:
    """{part: seconds} for one run, in the order above; the parts add up to wall_s. Stage
    parts are named by their stage; parts a run did not reach are left out."""
    if not line_seconds:
        return {"imports": wall_s}
    out: dict[str, float] = {"imports": line_seconds[0][0]}
    stages = [(at, m[1], float(m[3])) for at, line in line_seconds
              if (m := STAGE_LINE.match(line))]
    mlflow_at = next((at for at, line in line_seconds if _MLFLOW.match(line)), None)
    if not stages:
        out["set-up"] = (mlflow_at or wall_s) - out["imports"]
    else:
        spans = sorted((end - seconds, end) for end, _, seconds in stages)
        first_start = spans[0][0]
        out["set-up"] = max(first_start - out["imports"], 0.0)
        for _, name, seconds in stages:
            out[name] = seconds
        covered, reached = 0.0, first_start  # the union of the stages' spans
        for start, end in spans:
            covered += max(end - max(start, reached), 0.0)
            reached = max(reached, end)
        previous_end = reached
        out["between stages"] = max(previous_end - first_start - covered, 0.0)
        beside = sum(seconds for _, _, seconds in stages) - covered
        if beside > 0.05:
            out["stages beside each other"] = -beside
        if mlflow_at is not None and mlflow_at >= previous_end:
            after = PUSHER if stages[-1][1] == PUSHER else "the last stage"
            out[f"MLflow logging after {after}"] = mlflow_at - previous_end
            previous_end = mlflow_at
    out["the rest, to exit"] = max(wall_s - previous_end if stages else
                                   wall_s - (mlflow_at or wall_s), 0.0)
    return out


def first_line_s(line_seconds: list[tuple[float, str]]) -> float | None:
    return line_seconds[0][0] if line_seconds else None


def table(runs: dict[str, dict]) -> list[str]:
    """Markdown: one row per part, one column per run ({name: entry with `fixed_costs`})."""
    named = {name: entry["fixed_costs"] for name, entry in runs.items()
             if entry and entry.get("fixed_costs")}
    if not named:
        return []
    order: list[str] = []
    for costs in named.values():
        order += [part for part in costs if part not in order]
    lines = ["| part | " + " | ".join(f"{name} (s)" for name in named) + " |",
             "|---|" + "---:|" * len(named)]
    for part in order:
        cells = [f"{costs[part]:.1f}" if part in costs else "" for costs in named.values()]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    totals = [f"**{sum(costs.values()):.1f}**" for costs in named.values()]
    lines.append("| whole process | " + " | ".join(totals) + " |")
    return lines
