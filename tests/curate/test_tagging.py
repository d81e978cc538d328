from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate.core.errors import CurateError
from curate.ingest.ingest import IngestConfig, ingest
from curate.tag.tagging import count_pending, run_tagger

REPO = Path(__file__).resolve().parents[2]
DEMO_LOGS = REPO / "curate" / "ingest" / "demo_logs"


def _length(batch: pa.Table) -> pa.Table:
    return pa.table({"conversation_id": batch["conversation_id"],
                     "n_messages": pc.list_value_length(batch["conversation"])})


def test_run_tagger_resumes_and_rerun_does_no_work(lake):
    ingest(lake, [DEMO_LOGS], IngestConfig())
    total, pending = count_pending(lake, "length")
    assert total == pending > 20
    first = run_tagger(lake, "length", _length, batch_size=7, limit=20)
    assert first.tagged == 20 and first.parts_written == 3
    second = run_tagger(lake, "length", _length, batch_size=7)
    assert second.skipped_already_tagged == 20
    assert second.tagged == total - 20
    third = run_tagger(lake, "length", _length)
    assert third.tagged == 0 and third.skipped_already_tagged == total
    con = lake.connect()
    n, distinct = con.execute("SELECT count(*), count(DISTINCT conversation_id) FROM length").fetchone()
    assert n == distinct == total


def test_tagger_that_drops_rows_is_an_error(lake):
    ingest(lake, [DEMO_LOGS], IngestConfig())
    with pytest.raises(CurateError, match="one row per input"):
        run_tagger(lake, "bad", lambda b: _length(b).slice(1))
    assert "bad" not in lake.annotation_tables()
