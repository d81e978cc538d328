"""A bounded atheris run over the readers (`fuzz_readers.py`), seeded with the demo logs.

Slow: libFuzzer with Python coverage runs a few inputs a second through a whole ingest.
Set CHATCURATE_FUZZ_RUNS for a longer run (the default is what CI affords).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_LOGS, REPO

RUNS = int(os.environ.get("CHATCURATE_FUZZ_RUNS", "600"))
# Seed inputs: the first byte picks the file name (see fuzz_readers.NAMES), the rest is the file.
SEEDS = {"openai_chats.jsonl": 0, "lmsys_rows.jsonl": 0, "sharegpt_chats.json": 1, "lmsys_rows.parquet": 2,
         "sharegpt_code.jsonl.gz": 3}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_atheris_finds_no_reader_crash_and_records_are_conserved(tmp_path):
    pytest.importorskip("atheris", reason="atheris is an optional dev dependency (pip install atheris)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, pick in SEEDS.items():
        (corpus / name).write_bytes(bytes([pick]) + (DEMO_LOGS / name).read_bytes())
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("fuzz_readers.py")), f"-runs={RUNS}", "-max_len=8192",
         "-seed=8", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1700,
    )
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert proc.returncode == 0 and crashes == [], proc.stderr[-4000:]
    done = re.search(r"Done (\d+) runs", proc.stderr)
    assert done and int(done.group(1)) >= RUNS, proc.stderr[-2000:]
    print(f"\natheris: {done.group(1)} inputs through ingest, no crash")
