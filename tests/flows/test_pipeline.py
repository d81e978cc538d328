"""The pipeline flow end to end on the demo logs, in Prefect's test harness."""

import gzip
import json
import shutil

import pyarrow.parquet as pq
import pytest

from curate.core.lake import Lake

# Values planted in the demo logs that must never leave the lake (curate/ingest/demo.py).
PLANTED = [
    "jane.doe@example.com", "415-555-0132", "sk-demo1234567890abcdefghijklmnopqrstuv", "4111 1111 1111 1111",
    "AKIAIOSFODNN7EXAMPLE", "192.168.10.24", "742 Evergreen Terrace", "20 7946 0958",
]


def _export_rows(out):
    files = sorted((out / "export" / "chatcurate-demo" / "data").glob("*.parquet"))
    return pq.read_table(files).sort_by("conversation_id")


def test_demo_pipeline_exports_a_loadable_dataset_with_a_card(demo):
    import datasets
    from huggingface_hub import DatasetCard

    res = demo.result
    assert res["ingest"]["kept"] + res["ingest"]["quarantined"] == res["ingest"]["total"] > 0
    ds = datasets.load_dataset(str(demo.out / "export" / "chatcurate-demo"), split="train")
    exp = res["export"]
    assert ds.num_rows == exp["kept"] > 0
    assert ds.column_names[:7] == ["conversation_id", "model", "conversation", "turn", "language",
                                   "openai_moderation", "redacted"]
    card = DatasetCard.load(demo.out / "export" / "chatcurate-demo" / "README.md")
    assert card.data.license == "other"
    assert "en" in card.data.language
    assert card.data.size_categories == ["n<1K"]
    assert card.data.configs[0]["data_files"][0]["path"] == "data/train-*"
    assert "## Statistics" in card.text
    for png in ("languages", "models", "funnel"):
        assert (demo.out / "export" / "chatcurate-demo" / "images" / f"{png}.png").stat().st_size > 1000
    # the copy of the card
    assert (demo.out / "data_card" / "README.md").read_text() == (
        demo.out / "export" / "chatcurate-demo" / "README.md").read_text()


def test_counts_add_up_and_every_drop_has_a_reason(demo):
    lake = Lake(demo.lake)
    con = lake.connect()
    in_lake = con.execute("SELECT count(*) FROM conversations").fetchall()[0][0]
    exp = demo.result["export"]
    assert exp["total"] == in_lake
    dropped = {k: v for k, v in exp.items() if k.startswith("dropped_")}
    assert exp["kept"] + sum(dropped.values()) == in_lake
    excl = pq.read_table(demo.out / "export" / "chatcurate-demo.exclusions.parquet")
    assert excl.num_rows == sum(dropped.values())
    kept_ids = set(_export_rows(demo.out).column("conversation_id").to_pylist())
    assert kept_ids.isdisjoint(excl.column("id").to_pylist())
    # planted HumanEval items are found and dropped
    if "decontam" in lake.annotation_tables():
        assert {"he-verbatim-0", "he-verbatim-1"} <= set(excl.column("id").to_pylist())
        assert dropped.get("dropped_benchmark_contamination", 0) >= 2


def test_only_redacted_text_leaves_the_lake(demo):
    """Planted PII and secrets appear in no output: export, card, decontam report, artifacts."""
    texts = []
    for path in demo.out.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".json"):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    for conv in _export_rows(demo.out).column("conversation").to_pylist():
        texts.extend(m["content"] for m in conv)
    blob = "\n".join(texts)
    leaked = [v for v in PLANTED if v in blob]
    assert leaked == []
    # and the raw values really are in the lake, so the check can fail
    raw = "\n".join(m["content"] for conv in Lake(demo.lake).connect().sql(
        "SELECT conversation FROM conversations").to_arrow_table().column(0).to_pylist() for m in conv)
    assert all(v in raw for v in PLANTED[:5])


def test_stage_stats_are_published_as_table_artifacts(demo, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="stats-")))
    keys = {a.key for a in arts}
    assert {"stats-ingest", "stats-dedup", "stats-export", "stats-pipeline"} <= keys
    assert all(a.type == "table" for a in arts)
    blob = json.dumps([a.data for a in arts], default=str)
    assert [v for v in PLANTED if v in blob] == []


def test_second_run_processes_only_the_new_file(demo, tmp_path):
    from flows.pipeline import pipeline
    from flows.testing import copy_run

    run = copy_run(demo, tmp_path)
    # a new log file lands: two new conversations
    landing = tmp_path / "landing"
    landing.mkdir()
    new = landing / "new_arrivals.jsonl.gz"
    prompts = ["Quel temps fera-t-il demain à Lyon, et faut-il un parapluie ?",
               "Combien de minutes faut-il pour cuire des pâtes al dente ?"]
    rows = [{"id": f"new-{i}", "model": "gpt-4", "messages": [
        {"role": "user", "content": p}, {"role": "assistant", "content": "Voici une réponse détaillée."}]}
        for i, p in enumerate(prompts)]
    new.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode() + b"\n"))
    res = pipeline(lake=run.lake, inputs=[demo.inputs, landing], out=run.out)
    ing = res["ingest"]
    assert ing["files"].get("ingested") == 1 and ing["total"] == 2
    for tagger, stats in res["tag"].items():
        if "tagged" in stats:
            assert stats["tagged"] == 2, tagger
    if "new" in res["dedup"]:
        assert res["dedup"]["new"] == 2
    if "total" in res["decontam"]:
        assert res["decontam"]["total"] == 2
    ids = set(_export_rows(run.out).column("conversation_id").to_pylist())
    assert {"new-0", "new-1"} <= ids
    assert set(_export_rows(demo.out).column("conversation_id").to_pylist()) <= ids

    # and a third run with nothing new skips every stage on its markers
    again = pipeline(lake=run.lake, inputs=[demo.inputs, landing], out=run.out)
    assert again["ingest"]["skipped"] and again["export"]["skipped"]
    assert all(s.get("skipped") for s in again["tag"].values() if "failed" not in s)
