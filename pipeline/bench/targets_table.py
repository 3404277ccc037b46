"""The speed-targets table of `make bench` (targets.py measures, this draws): one row per
target with its goal, the measured figure and pass/fail, then each first run's stages."""
from __future__ import annotations

from pipeline.bench import fixed_costs
from pipeline.bench.targets import (
    AIRFLOW_NOOP_S,
    BREAST_CANCER_TRANSFORM_S,
    CONTRACT_S,
    EPOCHS_RERUN_RATIO,
    FIRST_LINE_S,
    MLFLOW_AFTER_PUSHER_S,
    PENGUINS_ACCURACY,
    PENGUINS_FIRST_S,
    REFERENCE_RATIO,
    TAXI_AUC,
    TAXI_AUC_TOLERANCE,
    TAXI_FIRST_S,
    UP_TO_DATE_S,
)
from pipeline.config import stage_names

# ---- the table ---------------------------------------------------------------------------------

PASS, FAIL, NOT_MEASURED, INFO = "pass", "**FAIL**", "not measured", ""


def _seconds(entry: dict | None) -> float | None:
    """The wall time of a run that succeeded; None when it did not run or failed."""
    if not entry or entry.get("returncode") != 0:
        return None
    return entry.get("wall_s")


def _within(value: float | None, limit: float) -> str:
    if value is None:
        return NOT_MEASURED
    return PASS if value <= limit else FAIL


def _why(entry: dict | None) -> str:
    if not entry:
        return "not run"
    return entry.get("error") or (f"exit {entry['returncode']}" if entry.get("returncode")
                                  else "")


def rows(t: dict) -> list[tuple[str, str, str, str, str]]:
    """(#, target, goal, measured, result) per row; result is pass, FAIL, not measured or ''
    (reported, no target)."""
    out = []

    def timed(number: str, name: str, key: str, limit: float) -> None:
        entry = t.get(key)
        value = _seconds(entry)
        measured = f"{value:.1f} s" if value is not None else _why(entry)
        out.append((number, name, f"<= {limit:g} s", measured, _within(value, limit)))

    timed("1", "taxi first run, whole process", "taxi_first", TAXI_FIRST_S)
    timed("2", "penguins first run, whole process", "penguins_first", PENGUINS_FIRST_S)

    rerun = t.get("taxi_rerun") or {}
    value = _seconds(rerun)
    if value is None:
        out.append(("3", "taxi re-run, nothing changed", f"<= {UP_TO_DATE_S:g} s",
                    _why(rerun), NOT_MEASURED))
    else:
        how = "Up to date, no TFX" if rerun.get("up_to_date") else "went through TFX"
        result = PASS if value <= UP_TO_DATE_S and rerun.get("up_to_date") else FAIL
        out.append(("3", "taxi re-run, nothing changed", f"<= {UP_TO_DATE_S:g} s",
                    f"{value:.1f} s ({how})", result))
    force = t.get("taxi_force") or {}
    value = _seconds(force)
    if value is None:
        out.append(("3b", "taxi `--force` re-run (through TFX)", "reported", _why(force), INFO))
    else:
        counts = _counts(list(force.get("states", {}).values()))
        out.append(("3b", "taxi `--force` re-run (through TFX)", "reported",
                    f"{value:.1f} s ({counts or 'no stage lines'})", INFO))

    contract = t.get("contract") or {}
    if "wall_s" not in contract:
        out.append(("4", "contract-breaking taxi CSV refused", f"<= {CONTRACT_S:g} s, exit 1",
                    _why(contract), NOT_MEASURED))
    else:
        ok = contract.get("returncode") == 1 and contract.get("refused")
        said = "\"data contract broken\"" if contract.get("refused") else "other message"
        out.append(("4", "contract-breaking taxi CSV refused", f"<= {CONTRACT_S:g} s, exit 1",
                    f"{contract['wall_s']:.1f} s, exit {contract.get('returncode')}, {said}",
                    PASS if ok and contract["wall_s"] <= CONTRACT_S else FAIL))

    bc = t.get("breast_cancer") or {}
    transform = (bc.get("stages", {}).get(stage_names.TRANSFORM) if bc.get("returncode") == 0
                 else None)
    out.append(("5", "breast cancer (32 numeric columns, 569 rows): Transform",
                f"<= {BREAST_CANCER_TRANSFORM_S:g} s",
                f"{transform:.1f} s" if transform is not None else _why(bc),
                _within(transform, BREAST_CANCER_TRANSFORM_S)))
    value = _seconds(bc)
    out.append(("5b", "breast cancer first run, whole process", "reported",
                f"{value:.1f} s (drafts: schema {bc.get('schema_draft_s', 0):.1f} s, suite "
                f"{bc.get('suite_draft_s', 0):.1f} s)" if value is not None else _why(bc), INFO))

    taxi = t.get("taxi_first") or {}
    auc = taxi.get("auc")
    if auc is None or _seconds(taxi) is None:
        out.append(("6a", "taxi eval AUC, blessed", f"{TAXI_AUC} +- {TAXI_AUC_TOLERANCE}, yes",
                    _why(taxi) or "no AUC", NOT_MEASURED))
    else:
        ok = abs(auc - TAXI_AUC) <= TAXI_AUC_TOLERANCE + 1e-12 and taxi.get("blessed")
        out.append(("6a", "taxi eval AUC, blessed", f"{TAXI_AUC} +- {TAXI_AUC_TOLERANCE}, yes",
                    f"{auc:.4f}, {'yes' if taxi.get('blessed') else 'no'}", PASS if ok else FAIL))
    peng = t.get("penguins_first") or {}
    accuracy = peng.get("accuracy")
    if accuracy is None or _seconds(peng) is None:
        out.append(("6b", "penguins eval accuracy, blessed", f">= {PENGUINS_ACCURACY:g}, yes",
                    _why(peng) or "no accuracy", NOT_MEASURED))
    else:
        ok = accuracy >= PENGUINS_ACCURACY - 1e-9 and peng.get("blessed")
        out.append(("6b", "penguins eval accuracy, blessed", f">= {PENGUINS_ACCURACY:g}, yes",
                    f"{accuracy:.4f}, {'yes' if peng.get('blessed') else 'no'}",
                    PASS if ok else FAIL))

    ref = t.get("reference") or {}
    ours, theirs = _seconds(peng), _seconds(ref)
    if ours is None or theirs is None:
        out.append(("7", "penguins first run, ours / TFX reference", f"<= {REFERENCE_RATIO:g}",
                    _why(ref) if theirs is None else _why(peng), NOT_MEASURED))
    else:
        ratio = ours / theirs
        out.append(("7", "penguins first run, ours / TFX reference", f"<= {REFERENCE_RATIO:g}",
                    f"{ratio:.2f} ({ours:.1f} s / {theirs:.1f} s)",
                    PASS if ratio <= REFERENCE_RATIO else FAIL))
    out.append(_airflow_row(t.get("airflow_noop")))
    out += _fixed_cost_rows(t)
    return out


def _fixed_cost_rows(t: dict) -> list[tuple[str, str, str, str, str]]:
    """Rows 9-11 (issue 26): MLflow logging after the Pusher and the first line, both of the
    taxi first run; the --epochs re-run against the seed-style script."""
    taxi = t.get("taxi_first") or {}
    ok = _seconds(taxi) is not None
    logging = (taxi.get("fixed_costs") or {}).get(fixed_costs.MLFLOW_AFTER_PUSHER)
    out = [("9", "taxi first run: MLflow logging after the Pusher",
            f"<= {MLFLOW_AFTER_PUSHER_S:g} s",
            f"{logging:.1f} s" if ok and logging is not None else _why(taxi) or "no MLflow line",
            _within(logging if ok else None, MLFLOW_AFTER_PUSHER_S))]
    first = taxi.get("first_line_s")
    out.append(("10", "taxi first run: first line after the command started",
                f"<= {FIRST_LINE_S:g} s",
                f"{first:.1f} s" if first is not None else _why(taxi) or "no output line",
                _within(first, FIRST_LINE_S)))
    epochs, seed = t.get("taxi_epochs") or {}, t.get("seed_script") or {}
    ours, theirs = _seconds(epochs), _seconds(seed)
    name = "taxi re-run, only `--epochs` changed / seed-style plain Keras script"
    goal = f"<= {EPOCHS_RERUN_RATIO:g}"
    if ours is None or theirs is None:
        out.append(("11", name, goal, _why(epochs) if ours is None else _why(seed),
                    NOT_MEASURED))
    else:
        ratio = ours / theirs
        counts = _counts(list(epochs.get("states", {}).values()))
        warm = " in the warm worker" if epochs.get("warm") else ""
        out.append(("11", name, goal, f"{ratio:.2f} ({ours:.1f} s{warm} / {theirs:.1f} s, "
                    f"{seed.get('epochs')} epochs; {counts})",
                    PASS if ratio <= EPOCHS_RERUN_RATIO else FAIL))
    cold = t.get("taxi_epochs_cold") or {}
    if _seconds(cold) is not None and theirs is not None:
        out.append(("11b", "the same re-run without the warm worker (CSV2MODEL_WARM_RERUNS=0)",
                    "reported", f"{_seconds(cold) / theirs:.2f} ({_seconds(cold):.1f} s / "
                    f"{theirs:.1f} s)", ""))
    return out


def _counts(states: list[str]) -> str:
    return ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))


def _airflow_row(entry: dict | None) -> tuple[str, str, str, str, str]:
    """Row 8: passes when the whole `airflow dags test` took at most 60 s, the DAG run
    succeeded, check_inputs was skipped because the inputs are up to date, and every other task
    (every stage, and the tracking) was skipped after it."""
    name = "scheduled Airflow run, nothing changed: whole DAG (`airflow dags test`)"
    goal = f"<= {AIRFLOW_NOOP_S:g} s, every task skipped"
    entry = entry or {}
    if "wall_s" not in entry:
        return ("8", name, goal, entry.get("missing") or _why(entry), NOT_MEASURED)
    tasks: dict = entry.get("tasks") or {}
    check_task = entry.get("check_task", "check_inputs")
    check, said = tasks.get(check_task), entry.get("check_said", "")
    up_to_date = check == "skipped" and said.startswith("Up to date")
    others = [state for task, state in tasks.items() if task != check_task]
    all_skipped = up_to_date and bool(others) and set(others) == {"skipped"}
    if not tasks:
        how = entry.get("states_error") or "no DAG run in Airflow's DB"
    elif all_skipped:
        how = f"{_counts(list(tasks.values()))}; {check_task}: up to date"
    else:
        how = (f"{_counts(list(tasks.values()))}; {check_task} {check or 'not run'}"
               + (f": {said}" if said else ""))
    measured = f"{entry['wall_s']:.1f} s ({how})"
    if entry.get("returncode"):
        measured += f", exit {entry['returncode']}"
    ok = (all_skipped and entry.get("returncode") == 0 and entry.get("run_state") == "success"
          and entry["wall_s"] <= AIRFLOW_NOOP_S)
    return ("8", name, goal, measured, PASS if ok else FAIL)


def _stage_table(t: dict) -> list[str]:
    """Stage seconds of each first run side by side (ours as the summary prints them, the
    reference's from its ML Metadata)."""
    runs = [(name, t.get(key) or {}) for name, key in (
        ("taxi", "taxi_first"), ("penguins", "penguins_first"),
        ("TFX reference (penguins)", "reference"), ("breast cancer", "breast_cancer"))]
    runs = [(n, e) for n, e in runs if e.get("stages")]
    if not runs:
        return []
    stages: list[str] = []
    for _, entry in runs:
        stages += [s for s in entry["stages"] if s not in stages]
    lines = ["", "| stage | " + " | ".join(n for n, _ in runs) + " |",
             "|---|" + "---:|" * len(runs)]
    for stage in stages:
        cells = [entry["stages"].get(stage) for _, entry in runs]
        if all(c is None or c < 0.05 for c in cells):
            continue
        lines.append(f"| {stage} | " + " | ".join("" if c is None else f"{c:.1f}"
                                                  for c in cells) + " |")
    lines.append("| **whole process** | " + " | ".join(
        f"{e['wall_s']:.1f}" if e.get("wall_s") is not None else "" for _, e in runs) + " |")
    return lines


def _cell(text: str, limit: int = 200) -> str:
    """One Markdown table cell: an error's message on one line, pipes escaped, cut short."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text.replace("|", "\\|")


def _warm_up_note(t: dict) -> str:
    seconds = t.get("page_cache_warm_up_s")
    if seconds is None:
        return ""
    return (f" Before the first, one untimed process imported what a run imports ({seconds} s), "
            "so that it reads them from memory as the later runs do (bench/process.py: this "
            "machine pages out files left unread for a minute).")


def markdown(t: dict) -> str:
    """The speed-targets table, then the first runs' stages and the details behind each row."""
    lines = ["## Speed targets", "",
             f"Whole-process wall time of each command, measured around the subprocess in this "
             f"invocation ({t.get('cores', '?')} cores); ratios against baselines run in the "
             f"same invocation.{_warm_up_note(t)}", "",
             "| # | target | goal | measured | result |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows(t)]
    lines += _stage_table(t)
    costs = fixed_costs.table({name: t.get(key) or {} for name, key in (
        ("taxi first run", "taxi_first"), ("penguins first run", "penguins_first"),
        ("taxi, --epochs changed", "taxi_epochs"),
        ("the same, no warm worker", "taxi_epochs_cold"))})
    if costs:
        lines += ["", "Where each run's seconds went (pipeline/bench/fixed_costs.py: from the times "
                  "its summary lines arrived; penguins' 344 rows make its stages almost all fixed "
                  "cost):", ""] + costs
    notes = []
    for key, name in (("taxi_first", "taxi"), ("penguins_first", "penguins"),
                      ("breast_cancer", "breast cancer")):
        entry = t.get(key) or {}
        if entry.get("beam"):
            notes.append(f"- {name}: Beam {entry['beam']}; the CLI's own \"Done in\" said "
                         f"{entry.get('done_in_s')} s; peak RSS {entry.get('peak_rss_mb', 0):,.0f}"
                         f" MB.")
    contract = t.get("contract") or {}
    if contract.get("variant"):
        v = contract["variant"]
        notes.append(f"- contract CSV: {v['changed']:,} of {v['rows']:,} rows with a negative "
                     f"{v['column']}, {v['share_out_of_range']:.1%} out of range where "
                     f"{v['expectation']} allows {v['allowed']:.1%}; it said: "
                     f"`{contract.get('error', '')}`")
    ref = t.get("reference") or {}
    if ref.get("wall_s") is not None:
        acc = ref.get("accuracy")
        rows_used = ref.get("csv", {}).get("rows")
        notes.append(f"- TFX reference: `{ref.get('command', '')}` ({rows_used} rows), eval "
                     f"accuracy {'?' if acc is None else f'{acc:.4f}'}, blessed "
                     f"{'yes' if ref.get('blessed') else 'no'}, peak RSS "
                     f"{ref.get('peak_rss_mb', 0):,.0f} MB.")
    bc = t.get("breast_cancer") or {}
    if bc.get("auc") is not None:
        notes.append(f"- breast cancer: {bc.get('columns')} columns, {bc.get('rows')} rows, eval "
                     f"AUC {bc['auc']:.4f}, blessed {'yes' if bc.get('blessed') else 'no'}.")
    flow = t.get("airflow_noop") or {}
    if flow.get("wall_s") is not None:
        notes.append(f"- Airflow: `{flow.get('command', '')}` (a manual run of the scheduled DAG: "
                     f"the same tasks and commands), DAG run {flow.get('run_state', '?')}, peak "
                     f"RSS {flow.get('peak_rss_mb', 0):,.0f} MB; one-off set-up before it, not "
                     f"in the figure: the DAG description (`python -m pipeline airflow-spec`) "
                     f"{flow.get('spec_s', 0):.1f} s, `airflow db migrate` (fresh SQLite DB) "
                     f"{flow.get('migrate_s', 0):.1f} s; {flow.get('check_task', 'check_inputs')} "
                     f"said: `{flow.get('check_said') or 'nothing'}`")
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"
