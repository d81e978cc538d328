"""What reaches DuckDB, and the lake's file permissions.

`curate sql` runs the user's own SQL by design; everything else user-supplied (paths,
table and part names) must be a parameter or validated. Tests marked xfail(strict=True)
pin known gaps in `curate/core/lake.py` (reported to its owner): they fail loudly once fixed,
so the marker is removed with the fix.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from curate.core.errors import LakeError
from curate.ingest.ingest import ingest
from curate.core.lake import Lake

GOOD = {"messages": [{"role": "user", "content": "hello"}]}


def _src(tmp_path: Path, name: str = "a.jsonl", n: int = 1) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps({**GOOD, "id": f"{name}-{i}"}) + "\n" for i in range(n)))
    return path


def _count(lake: Lake) -> int:
    con = lake.connect()
    n = con.execute("SELECT count(*) FROM conversations").fetchone()[0]
    con.close()
    return n


@pytest.mark.parametrize("root", ["lake'quote", 'lake"dq', "lake; DROP TABLE runs; --", "lake $(id)", "läke ünï"])
def test_lake_root_with_sql_metacharacters(tmp_path, root):
    lake = Lake(tmp_path / root)
    ingest(lake, [_src(tmp_path)])
    assert _count(lake) == 1
    assert lake.stats()["balanced"]


def test_source_path_with_sql_metacharacters_is_a_parameter(tmp_path):
    lake = Lake(tmp_path / "lake")
    src = _src(tmp_path, "x'); DROP TABLE source_files; --.jsonl")
    ingest(lake, [src])
    ingest(lake, [src])  # the catalog lookup of that path works: unchanged
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM source_files WHERE path = ?", [str(src.resolve())]).fetchone()[0] == 1


@pytest.mark.parametrize("table", ["x; DROP TABLE runs", "Tags", "../escape", "a-b", "", "x" * 5 + " "])
def test_annotation_table_names_are_validated(tmp_path, table):
    lake = Lake(tmp_path / "lake")
    with pytest.raises(LakeError):
        lake.write_annotation(table, pa.table({"conversation_id": ["c"]}))


@pytest.mark.parametrize("part", ["../../etc/x", "a/b", ".hidden", "x'y", "..", "a\nb"])
def test_annotation_part_names_are_validated(tmp_path, part):
    lake = Lake(tmp_path / "lake")
    with pytest.raises(LakeError):
        lake.write_annotation("tags", pa.table({"conversation_id": ["c"]}), part=part)


def test_lake_files_have_safe_permissions(tmp_path):
    lake = Lake(tmp_path / "lake")
    ingest(lake, [_src(tmp_path)])
    lake.write_annotation("tags", pa.table({"conversation_id": ["c"]}))
    root_mode = stat.S_IMODE(lake.root.stat().st_mode)
    assert root_mode & 0o007 == 0, oct(root_mode)  # others cannot reach anything inside
    for path in [lake.root, *lake.root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o022 == 0, f"{path} is group/world-writable: {oct(mode)}"
        if path.suffix == ".parquet":
            assert mode == 0o640, f"{path}: {oct(mode)}"
        elif path.is_dir():
            assert mode == 0o750, f"{path}: {oct(mode)}"


def test_catalog_and_lock_are_not_world_readable(tmp_path):
    lake = Lake(tmp_path / "lake")
    ingest(lake, [_src(tmp_path)])
    for name in ("catalog.duckdb", ".lock"):
        assert stat.S_IMODE((lake.root / name).stat().st_mode) & 0o004 == 0


@pytest.mark.parametrize("name", ["lake*", "lake?", "lake[1]", "lake{a,b}"])
def test_lake_root_with_glob_characters_is_refused(tmp_path, name):
    # read_parquet() would expand the glob and read other lakes' files; DuckDB mangles '?'
    from curate.core.errors import LakeError

    with pytest.raises(LakeError, match="contains"):
        Lake(tmp_path / name)


def test_annotation_table_named_like_a_keyword(tmp_path):
    lake = Lake(tmp_path / "lake")
    ingest(lake, [_src(tmp_path)])
    lake.write_annotation("order", pa.table({"conversation_id": ["c"]}))
    assert _count(lake) == 1


def test_stray_annotation_folder_does_not_break_queries(tmp_path):
    lake = Lake(tmp_path / "lake")
    ingest(lake, [_src(tmp_path)])
    stray = lake.root / "annotations" / "My Notes"
    stray.mkdir()
    (stray / "x.parquet").write_bytes(b"")
    assert _count(lake) == 1
