"""Export: only redacted text leaves the lake, drops are counted with reasons, the card parses."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.export.export import ExportConfig, ExportError, export_dataset, push_to_hub, size_category
from curate.ingest.ingest import ingest

SECRET = "jane.doe@example.com"


def _lake_with_logs(lake, tmp_path, n=6):
    src = tmp_path / "logs.jsonl"
    rows = [{"id": f"c{i}", "model": "m-a" if i % 2 else "m-b", "user": f"u{i % 3}",
             "messages": [{"role": "user", "content": f"question {i}: write to {SECRET}"},
                          {"role": "assistant", "content": f"answer {i}"}]} for i in range(n)]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ingest(lake, [src])
    return [f"c{i}" for i in range(n)]


def _pii(lake, ids):
    con = lake.connect()
    convs = dict(con.execute("SELECT conversation_id, conversation FROM conversations").fetchall())
    red = [[{"role": m["role"], "content": m["content"].replace(SECRET, "EMAIL_1")} for m in convs[i]] for i in ids]
    lake.write_annotation("pii", pa.table({
        "conversation_id": ids, "redacted": [True] * len(ids),
        "redacted_conversation": pa.array(red, pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    }))


def _read(result):
    return pq.read_table(result.shards).sort_by("conversation_id")


def test_refuses_without_pii_annotation(lake, tmp_path):
    _lake_with_logs(lake, tmp_path)
    with pytest.raises(ExportError, match="PII"):
        export_dataset(lake, tmp_path / "out" / "ds")
    assert not (tmp_path / "out" / "ds").exists()


def test_refuses_when_some_exported_rows_are_not_redacted(lake, tmp_path):
    ids = _lake_with_logs(lake, tmp_path)
    _pii(lake, ids[:-1])
    with pytest.raises(ExportError, match="1 conversations have no PII"):
        export_dataset(lake, tmp_path / "out" / "ds")


def test_only_redacted_text_and_lmsys_columns_are_exported(lake, tmp_path):
    ids = _lake_with_logs(lake, tmp_path)
    _pii(lake, ids)
    result = export_dataset(lake, tmp_path / "out" / "ds")
    table = _read(result)
    assert table.column_names[:7] == ["conversation_id", "model", "conversation", "turn", "language",
                                      "openai_moderation", "redacted"]
    assert not {"metadata", "user_id", "source_file", "content_hash"} & set(table.column_names)
    assert table.num_rows == len(ids) == result.stats["kept"] == result.stats["total"]
    blob = "".join(path.read_bytes().decode("latin-1") for path in (tmp_path / "out").rglob("*") if path.is_file())
    assert SECRET not in blob
    assert "EMAIL_1" in table.column("conversation").to_pylist()[0][0]["content"]


def test_drops_are_counted_with_reasons(lake, tmp_path):
    ids = _lake_with_logs(lake, tmp_path)
    _pii(lake, ids)
    lake.write_annotation("dedup", pa.table({
        "conversation_id": ids, "is_representative": [i != "c1" for i in ids],
        "duplicate_of": [("c0" if i == "c1" else None) for i in ids],
        "duplicate_kind": [("near" if i == "c1" else None) for i in ids],
        "frequency_capped": [False] * len(ids)}))
    lake.write_annotation("decontam", pa.table({
        "conversation_id": ids, "contaminated": [i in ("c2", "c1") for i in ids],
        "benchmarks": [["humaneval"] if i in ("c2", "c1") else [] for i in ids],
        "run_id": ["r1"] * len(ids)}))
    lake.write_annotation("moderation", pa.table({"conversation_id": ids, "flagged": [i == "c3" for i in ids]}))

    default = export_dataset(lake, tmp_path / "a" / "ds")
    assert default.stats == {"total": 6, "kept": 4, "dropped_benchmark_contamination": 1, "dropped_duplicate": 1}
    excl = pq.read_table(default.exclusions_path).to_pylist()
    assert {(r["id"], r["reason"]) for r in excl} == {("c1", "duplicate"), ("c2", "benchmark_contamination")}
    assert json.loads(next(r for r in excl if r["id"] == "c1")["detail"]) == {"duplicate_of": "c0", "why": "near"}

    strict = export_dataset(lake, tmp_path / "b" / "ds", ExportConfig(drop_flagged=True))
    assert strict.stats["dropped_moderation_flagged"] == 1 and strict.stats["kept"] == 3
    keep_all = export_dataset(lake, tmp_path / "c" / "ds",
                              ExportConfig(drop_duplicates=False, drop_contaminated=False))
    assert keep_all.stats == {"total": 6, "kept": 6}
    t = _read(keep_all)
    assert t.column("duplicate").to_pylist() == [False, True, False, False, False, False]
    assert t.column("contaminated").to_pylist()[:3] == [False, True, True]


def test_dataset_loads_and_card_parses(lake, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    from curate.export.data_card import card_writer

    ids = _lake_with_logs(lake, tmp_path, n=12)
    _pii(lake, ids)
    result = export_dataset(lake, tmp_path / "out" / "ds", ExportConfig(shard_rows=5), card=card_writer(lake))
    assert len(result.shards) == 3
    ds = datasets.load_dataset(str(result.path), split="train")
    assert ds.num_rows == 12
    card = DatasetCard.load(result.path / "README.md")
    assert card.data.size_categories == ["n<1K"] and card.data.task_categories == ["text-generation"]
    assert [f["name"] for f in card.data.dataset_info["features"]][:3] == ["conversation_id", "model", "conversation"]
    assert "| 12 | 2 | 3 |" in card.text  # conversations, models, users
    assert (result.path / "images" / "models.png").exists()


def test_export_is_deterministic(lake, tmp_path):
    from curate.export.data_card import card_writer

    ids = _lake_with_logs(lake, tmp_path)
    _pii(lake, ids)
    a = export_dataset(lake, tmp_path / "a" / "ds", card=card_writer(lake))
    b = export_dataset(lake, tmp_path / "b" / "ds", card=card_writer(lake))
    for rel in ["README.md", "card_stats.json", *(f"data/{p.name}" for p in a.shards),
                *(f"images/{p.name}" for p in (a.path / "images").iterdir())]:
        assert (a.path / rel).read_bytes() == (b.path / rel).read_bytes(), rel


def test_reexport_replaces_the_folder_atomically(lake, tmp_path):
    ids = _lake_with_logs(lake, tmp_path)
    _pii(lake, ids)
    dest = tmp_path / "out" / "ds"
    export_dataset(lake, dest, ExportConfig(shard_rows=2))
    assert len(list((dest / "data").iterdir())) == 3
    export_dataset(lake, dest)
    assert len(list((dest / "data").iterdir())) == 1
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(".")] == []


def test_push_never_shows_the_token(tmp_path, monkeypatch):
    import huggingface_hub

    token = "hf_" + "x" * 30

    class Boom:
        def __init__(self, token):
            self.token = token

        def create_repo(self, *a, **k):
            raise RuntimeError(f"401 Unauthorized for token {self.token}")

    monkeypatch.setattr(huggingface_hub, "HfApi", Boom)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(ExportError) as err:
        push_to_hub(tmp_path, "me/ds", token)
    assert token not in str(err.value) and "***" in str(err.value)
    assert err.value.__cause__ is None and err.value.__context__ is None  # nothing chained carries it


@pytest.mark.parametrize("n, label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (150_000, "100K<n<1M")])
def test_size_category(n, label):
    assert size_category(n) == label
