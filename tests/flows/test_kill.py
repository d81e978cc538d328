"""SIGKILL the pipeline inside every stage; the reruns end with the lake and export of a clean run.

A seeded sweep: one clean `curate pipeline` run measures how long each stage
takes (from the Prefect log line that starts it to the one that ends it). Then a chain
of runs over a second lake: each run is killed with SIGKILL (the whole process group)
a seeded random delay after its target stage started (at most the stage's clean
duration; when the stage ends sooner, right after it ends), and the next run of the
chain is the rerun that must pick up the pieces. Chaining is what keeps the sweep affordable
(a fresh lake per kill point costs a whole pipeline run each): every run still starts
from whatever the previous kill left behind. The last run finishes; its lake and export
must equal the clean run's, with no temporaries left.

    CHATCURATE_KILL_SEED=7 .venv/bin/python -m pytest -q -m slow tests/flows/test_kill.py -s
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.core.lake import Lake

REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("CHATCURATE_KILL_SEED", "8"))

# stage -> (Prefect log line that says it started, line that says its task finished), each
# given as the texts the line contains. Every stage logs both even when its marker makes
# it skip, so they work on reruns too.
STAGES: dict[str, tuple[str | tuple[str, ...], str | tuple[str, ...]]] = {
    "ingest": ("for flow 'ingest'", ("Task run 'ingest-files-", "- Finished in state")),
    "dedup": ("for flow 'dedup'", ("Task run 'dedup-", "- Finished in state")),
    "tag_pii": ("for flow 'tag'", "Task run 'tag-pii' - Finished"),
    "tag_language": ("Task run 'tag-pii' - Finished", "Task run 'tag-language' - Finished"),
    "tag_moderation": ("Task run 'tag-language' - Finished", "Task run 'tag-moderation' - Finished"),
    "tag_topics": ("Task run 'tag-moderation' - Finished", "Task run 'tag-topics' - Finished"),
    "decontam": ("for flow 'decontam'", ("Task run 'decontam-check-", "- Finished in state")),
    "export": ("for flow 'export'", ("Task run 'export-dataset-", "- Finished in state")),
}
# One kill point per stage, in pipeline order: about 7 minutes on a loaded 2-core machine
# (a second kill in the same stage mostly lands after it: a redo is faster than a first run).
KILL_TARGETS = list(STAGES)
IGNORED_COLUMNS = ("run_id", "fit_id", "seconds")


def _export(out: Path):
    folder = out / "export" / "chatcurate-demo"
    rows = pq.read_table(sorted((folder / "data").glob("*.parquet"))).sort_by("conversation_id").to_pylist()
    excl = pq.read_table(out / "export" / "chatcurate-demo.exclusions.parquet")
    excl = sorted((r["id"], r["reason"], r["detail"]) for r in excl.to_pylist())
    return rows, excl, (folder / "README.md").read_text()


def _rows(con, view: str) -> list:
    """A view's rows without the columns that name a run, sorted (duplicates stay visible)."""
    t = con.sql(f'SELECT * FROM "{view}"').to_arrow_table()
    keep = [c for c in t.column_names if c not in IGNORED_COLUMNS]
    # not every table has conversation_id (topic_labels): sort whole rows instead
    return sorted(t.select(keep).to_pylist(), key=repr)


def _annotations(lake: Lake) -> dict:
    """Lake content without run ids: conversation hashes, quarantine, every annotation table."""
    con = lake.connect()
    out = {table: _rows(con, table) for table in lake.annotation_tables()}
    out["conversations"] = con.execute(
        "SELECT conversation_id, content_hash FROM conversations ORDER BY 1").fetchall()
    out["quarantine"] = _rows(con, "quarantine")
    return out


def _cmd(lake: Path, out: Path, inputs: Path) -> list[str]:
    return [sys.executable, "-m", "curate.cli", "pipeline", str(inputs), "--lake", str(lake), "--out", str(out)]


class PipelineRun:
    """`curate pipeline` in its own process group, its stderr lines timestamped."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path):
        self.t0 = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self._log = log.open("a", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stdout = ""
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._err.start()
        self._out.start()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.monotonic() - self.t0, line))
            self._log.write(line)

    def _read_stdout(self) -> None:
        self.stdout = self.proc.stdout.read()

    def seen(self, text: str | tuple[str, ...]) -> float | None:
        """When a stderr line containing `text` (all of them, for a tuple) arrived, or None."""
        parts = (text,) if isinstance(text, str) else text
        return next((t for t, line in list(self.lines) if all(p in line for p in parts)), None)

    def wait_for(self, text: str | tuple[str, ...], timeout: float = 900) -> float | None:
        """Wait for a line containing `text`; None when the run exited without one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.seen(text)
            if t is not None:
                return t
            if self.proc.poll() is not None:
                self._err.join(5)
                return self.seen(text)
            time.sleep(0.02)
        raise TimeoutError(f"no {text!r} within {timeout} s")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the flow and everything it started
        self.finish()

    def finish(self, timeout: float = 1200) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._err.join(10)
        self._out.join(10)
        self._log.close()
        return rc

    def tail(self) -> str:
        return "".join(line for _, line in self.lines[-40:])


def _env(prefect_api: str) -> dict[str, str]:
    from flows.testing import pipeline_env

    env = pipeline_env(prefect_api)
    env["PREFECT_LOGGING_LEVEL"] = "INFO"  # the stage start/finish lines are INFO
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def clean(prefect_api, tmp_path_factory):
    """One uninterrupted run (module-scoped): its lake, outputs and per-stage durations."""
    from flows.testing import DEMO_LOGS

    root = tmp_path_factory.mktemp("kill-clean")
    inputs = root / "logs"
    shutil.copytree(DEMO_LOGS, inputs)
    lake, out = root / "lake", root / "out"
    run = PipelineRun(_cmd(lake, out, inputs), _env(prefect_api), root / "stderr.log")
    assert run.finish() == 0, run.tail()
    assert "pipeline finished" in run.stdout
    durations = {}
    for stage, (start, end) in STAGES.items():
        t_start, t_end = run.seen(start), run.seen(end)
        assert t_start is not None and t_end is not None, f"{stage}: no start/end log line\n{run.tail()}"
        durations[stage] = max(t_end - t_start, 0.05)
    return {"root": root, "inputs": inputs, "lake": lake, "out": out, "durations": durations}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_seeded_sigkill_sweep_over_every_stage_then_rerun_equals_clean_run(clean, prefect_api, tmp_path):
    env = _env(prefect_api)
    lake, out = tmp_path / "lake", tmp_path / "out"
    cmd = _cmd(lake, out, clean["inputs"])
    rng = random.Random(SEED)
    kills: list[dict] = []
    for target in KILL_TARGETS:
        run = PipelineRun(cmd, env, tmp_path / "stderr.log")
        start_text, end_text = STAGES[target]
        started = run.wait_for(start_text)
        assert started is not None, f"the run exited before {target} started\n{run.tail()}"
        delay = rng.uniform(0, clean["durations"][target])
        # A redo is often faster than the clean run: when the stage ends before the delay,
        # kill right then (the marker is written, Prefect not yet told: a point of its own).
        while (time.monotonic() - run.t0 < started + delay and run.seen(end_text) is None
               and run.proc.poll() is None):
            time.sleep(0.01)
        at = time.monotonic() - run.t0
        where = "inside" if run.seen(end_text) is None else "at its end"
        exited = run.proc.poll() is not None
        run.kill()
        kills.append({"stage": target, "delay_s": round(at - started, 2), "where": where, "exited_first": exited})
    print(f"\nkill points (seed {SEED}, {len(kills)} tried):")
    for k in kills:
        print(f"  {k['stage']:<15} +{k['delay_s']:6.2f} s  {k['where']}{'  (run had exited)' if k['exited_first'] else ''}")

    final = PipelineRun(cmd, env, tmp_path / "stderr.log")
    assert final.finish() == 0, final.tail()
    assert "pipeline finished" in final.stdout

    context = f"kill points: {kills}"
    assert _export(out) == _export(clean["out"]), context
    assert _annotations(Lake(lake)) == _annotations(Lake(clean["lake"])), context
    assert Lake(lake).stats()["balanced"], context
    leftovers = [p for p in (*lake.rglob(".tmp-*"), *out.rglob(".tmp-*"))]
    assert leftovers == [], context
    # The sweep tested something: no run ended on its own, and most kills hit a stage mid-way.
    assert not any(k["exited_first"] for k in kills), context
    assert sum(k["where"] == "inside" for k in kills) >= len(kills) // 2, context
