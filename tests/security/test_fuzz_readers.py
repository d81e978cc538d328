"""A bounded atheris run over the readers (`fuzz_readers.py`), seeded with the demo logs,
then a sample of the corpus it grew replayed through a whole ingest.

Slow: fuzzing runs a few hundred inputs a second, the replay about one a second.
CHATCURATE_FUZZ_RUNS / CHATCURATE_FUZZ_SECONDS / CHATCURATE_FUZZ_REPLAY make it longer.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_LOGS, REPO

RUNS = int(os.environ.get("CHATCURATE_FUZZ_RUNS", "20000"))
# The run count bounds the default run, so that with the fixed seed CI fuzzes the same inputs
# each time (a time bound would fuzz more or fewer depending on load); the time is a backstop.
SECONDS = int(os.environ.get("CHATCURATE_FUZZ_SECONDS", "600"))
REPLAY = int(os.environ.get("CHATCURATE_FUZZ_REPLAY", "60"))
HARNESS = Path(__file__).with_name("fuzz_readers.py")
# Seed inputs: the first byte picks the file name (see fuzz_readers.NAMES), the rest is the file.
SEEDS = {"openai_chats.jsonl": 0, "lmsys_rows.jsonl": 0, "sharegpt_chats.json": 1, "lmsys_rows.parquet": 2,
         "sharegpt_code.jsonl.gz": 3}


def _rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # peak RSS: an upper bound on what a child inherits
            return int(line.split()[1]) // 1024
    return 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_atheris_finds_no_reader_crash_and_ingest_conserves_records(tmp_path):
    pytest.importorskip("atheris", reason="atheris is an optional dev dependency (pip install atheris)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, pick in SEEDS.items():
        (corpus / name).write_bytes(bytes([pick]) + (DEMO_LOGS / name).read_bytes())
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    # libFuzzer's RSS check reads ru_maxrss, which on Linux starts at this (pytest) process's
    # RSS at fork time: after the other slow tests that was 2.5 GB in CI and the 2 GB default fired
    # before one input. Allow 2 GB on top of what the child inherits.
    rss_limit = _rss_mb() + 2048

    fuzz = subprocess.run(
        [sys.executable, str(HARNESS), f"-runs={RUNS}", f"-max_total_time={SECONDS}", "-max_len=8192", "-seed=8",
         f"-rss_limit_mb={rss_limit}",
         f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SECONDS + 600,
    )
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert fuzz.returncode == 0 and crashes == [], fuzz.stderr[-4000:]
    done = re.search(r"Done (\d+) runs", fuzz.stderr)
    assert done and int(done.group(1)) > 0, fuzz.stderr[-2000:]

    # The inputs that reached new code, a seeded sample of them, through the whole ingest.
    grown = sorted(p for p in corpus.iterdir() if p.is_file())
    sample = tmp_path / "replay"
    sample.mkdir()
    for p in random.Random(8).sample(grown, min(REPLAY, len(grown))):
        shutil.copy(p, sample / p.name)
    rep = subprocess.run([sys.executable, str(HARNESS), "--replay", str(sample)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert rep.returncode == 0, rep.stderr[-4000:]
    replayed = re.search(r"Replayed (\d+) inputs", rep.stderr)
    assert replayed and int(replayed.group(1)) == len(list(sample.iterdir()))
    print(f"\natheris: {done.group(1)} inputs through the readers, corpus grew to {len(grown)}, "
          f"{replayed.group(1)} of them through ingest; no crash, records conserved")
