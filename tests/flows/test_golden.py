"""The demo run's outputs are what they were: content digests of its lake tables, export,
data card and decontam report, against `tests/data/demo_golden.json`.

The golden file was written from the demo run at 87e2c44, the commit before #16's move
(`curate/` regrouped, one stage contract): the move changed no output. A change that
*should* change what the demo run produces regenerates it, from the shared demo run:

    CHATCURATE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/flows/test_golden.py

(or, for a run folder made elsewhere: `python tests/flows/test_golden.py RUN_ROOT`, where
RUN_ROOT holds `logs/`, `lake/` and `out/` as `flows.testing.demo_run` lays them out).

What is compared: every file of the export and of the data card, byte for byte (the
determinism test shows they carry nothing run-specific); the exclusions table and the
lake's tables (conversations, quarantine, every annotation table) value for value, without
the columns that name the run (`run_id`, `fit_id`), with the run's folders replaced by
placeholders, and floats rounded to 3 decimals, zero without its sign (embedding arithmetic
differs in the last bits between machines, thread counts and runtimes; every decision made
from it is compared exactly);
the lake-wide decontam report, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "data" / "demo_golden.json"
RUN_COLUMNS = {"run_id", "fit_id"}  # name the run that wrote a row, not what it found


def _lake(root: Path):
    try:
        from curate.core.lake import Lake
    except ImportError:  # the layout before #16, for regenerating from an old checkout
        from curate.lake import Lake
    return Lake(root)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(value, places: dict[str, str]):
    if isinstance(value, float):
        return round(value, 3) + 0.0  # + 0.0: -0.0 (a cosine distance of -1e-8) is 0.0
    if isinstance(value, str):
        for path, mark in places.items():
            value = value.replace(path, mark)
        return value
    if isinstance(value, dict):
        return {k: _plain(v, places) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, places) for v in value]
    return value if value is None or isinstance(value, (int, bool)) else str(value)


def _rows_digest(table, places: dict[str, str]) -> str:
    table = table.drop_columns([c for c in table.column_names if c in RUN_COLUMNS])
    rows = [_plain(r, places) for r in table.to_pylist()]
    blob = sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)
    return _sha(json.dumps([sorted(table.column_names), blob]).encode())


def digest(root: Path) -> dict[str, str]:
    """Digests of a demo run laid out under `root` (logs/, lake/, out/)."""
    import pyarrow.parquet as pq

    root = Path(root)
    logs, lake_root, out = root / "logs", root / "lake", root / "out"
    places = {str(logs.resolve()): "<logs>", str(logs): "<logs>", str(lake_root.resolve()): "<lake>",
              str(lake_root): "<lake>", str(out.resolve()): "<out>", str(out): "<out>"}
    result: dict[str, str] = {}
    for sub in ("export/chatcurate-demo", "data_card"):
        for p in sorted((out / sub).rglob("*")):
            if p.is_file():
                result[f"out/{sub}/{p.relative_to(out / sub)}"] = _sha(p.read_bytes())
    result["out/export/chatcurate-demo.exclusions.parquet"] = _rows_digest(
        pq.read_table(out / "export" / "chatcurate-demo.exclusions.parquet"), places)
    for name in ("decontam_report.md", "decontam_report.json"):
        result[f"out/decontam/{name}"] = _sha((out / "decontam" / name).read_bytes())
    lake = _lake(lake_root)
    con = lake.connect()
    try:
        for table in ["conversations", "quarantine", *sorted(lake.annotation_tables())]:
            result[f"lake/{table}"] = _rows_digest(con.sql(f"SELECT * FROM {table}").to_arrow_table(), places)
    finally:
        con.close()
    return dict(sorted(result.items()))


def test_the_demo_run_gives_the_golden_outputs(demo):
    got = digest(demo.root)
    if os.environ.get("CHATCURATE_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
    want = json.loads(GOLDEN.read_text())
    changed = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
    assert changed == [], (
        f"the demo run's outputs changed: {changed}\nIf that is intended, regenerate the golden file: "
        "CHATCURATE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/flows/test_golden.py")


def test_the_digest_sees_a_changed_value(demo, tmp_path):
    """The comparison can fail: one redacted conversation changed in a copy of the lake."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(demo.lake, tmp_path / "lake", symlinks=True)
    (tmp_path / "out").symlink_to(demo.out)
    (tmp_path / "logs").symlink_to(demo.inputs)
    part = sorted((tmp_path / "lake" / "annotations" / "pii").glob("*.parquet"))[0]
    t = pq.read_table(part)
    i = t.column_names.index("redacted_conversation")
    convs = t.column(i).to_pylist()
    convs[0][0]["content"] += " (edited)"
    pq.write_table(t.set_column(i, "redacted_conversation", pa.array(convs, t.schema.field(i).type)), part)
    got, want = digest(tmp_path), digest(demo.root)
    assert [k for k in want if got[k] != want[k]] == ["lake/pii"]


if __name__ == "__main__":
    json.dump(digest(Path(sys.argv[1])), sys.stdout, indent=1)
    print()
