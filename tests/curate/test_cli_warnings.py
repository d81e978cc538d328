"""No library warning reaches a user's terminal in normal use (issue #12)."""

import os
import subprocess
import sys

from tests.conftest import DEMO_LOGS, REPO


def _curate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONWARNINGS", None)  # the user's default filters
    return subprocess.run([sys.executable, "-m", "curate.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=REPO)


def test_sql_and_stats_print_no_warning(tmp_path):
    lake = str(tmp_path / "lake")
    res = _curate("ingest", str(DEMO_LOGS / "openai_chats.jsonl"), "--lake", lake)
    assert res.returncode == 0, res.stderr
    for args in (["sql", "SELECT model, count(*) AS n FROM conversations GROUP BY 1 ORDER BY 1"],
                 ["sql", "SELECT count(*) FROM conversations WHERE turn > ?", "--param", "0", "--format", "json"],
                 ["stats"]):
        res = _curate(*args, "--lake", lake)
        assert res.returncode == 0, res.stderr
        assert "Warning" not in res.stderr and "warn" not in res.stderr.lower(), res.stderr
    assert res.stdout.strip()
