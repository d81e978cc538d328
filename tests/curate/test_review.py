"""The review page's data and HTML, and decisions flowing back into the export and --write-clean.

One small real lake (ingest, PII tagger, exact/near dedup, an n-gram decontam check against
HumanEval) is built once per module; tests that write to it work on a copy.
"""

import json
import re
import shutil

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.core.lake import Lake
from curate.review.page import ReviewConfig, collect_review_data, escape_raw, render_page, word_diff, write_review_page
from curate.export.review_decisions import DecisionError, apply_decisions, latest_decisions
from decontam.testbed import labelled_pairs

EMAIL, PHONE, CARD = "jane.roe@example.org", "415-555-0199", "4111 1111 1111 1111"
PLANTED = [EMAIL, PHONE, CARD]


def _conv(cid, user, answer="Sure, here it is."):
    return {"id": cid, "model": "m", "messages": [{"role": "user", "content": user},
                                                   {"role": "assistant", "content": answer}]}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from decontam.benchmarks import load_benchmark
    from decontam.check import CheckConfig

    from decontam.lake import check_lake
    from curate.dedup.dedup import DedupConfig, run_dedup
    from curate.ingest.ingest import ingest
    from curate.tag.pii import tag_pii

    root = tmp_path_factory.mktemp("review")
    he = load_benchmark("humaneval")
    rows = [
        _conv("he-0", "Please solve this:\n" + he.texts[0]),
        _conv("he-1", "Finish the code\n" + he.texts[1] + f"\nMail me at {EMAIL}"),
        _conv("cap-a", "What is the capital of France?"),
        _conv("cap-b", "What is the capital of France?"),
        _conv("cap-c", "what is the capital of france"),
        _conv("pii", f"Call me on {PHONE} or write to {EMAIL}, card {CARD}."),
        _conv("plain", "How do I boil an egg?"),
    ]
    logs = root / "logs.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines.append(json.dumps({"id": "bad", "messages": f"not a list, mail {EMAIL}"}))  # quarantined, with PII
    lines.append('{"id": "cut", "messages": [')  # invalid JSON
    logs.write_text("\n".join(lines) + "\n")
    lake = Lake(root / "lake")
    ingest(lake, [logs])
    tag_pii(lake)
    run_dedup(lake, DedupConfig(semantic=False))
    check_lake(lake, ["humaneval"], CheckConfig(use_embeddings=False, cache_dir=root / "cache"))
    return lake


@pytest.fixture
def copy(base, tmp_path):
    shutil.copytree(base.root, tmp_path / "lake")
    return Lake(tmp_path / "lake")


# ---- pure helpers ----
@given(st.text(max_size=80), st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_word_diff_rebuilds_both_sides(a, b):
    ops = word_diff(a, b)
    assert "".join(t for op, t in ops if op <= 0) == a
    assert "".join(t for op, t in ops if op >= 0) == b
    assert all(t for _, t in ops)


def test_word_diff_marks_changed_words_only():
    assert word_diff("return a + b", "return a - b") == [[0, "return a "], [-1, "+"], [1, "-"], [0, " b"]]


def test_escape_raw_shows_invalid_utf8_and_control_bytes():
    assert escape_raw(b'{"a": "\xff\x00x"}\n') == '{"a": "\\xff\\x00x"}\n'
    assert escape_raw(None) == ""


def test_embedded_json_cannot_close_the_script_element():
    data = {"meta": {"config": {}}, "x": "</script><script>alert(1)</script><!-- \u2028"}
    html = render_page(data)
    assert html.count("</script>") == 2  # the data element's and the code's own
    blob = re.search(r'<script type="application/json" id="review-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(blob) == data


def test_config_is_validated():
    from curate.core.errors import ConfigError

    with pytest.raises(ConfigError, match="max_pairs"):
        ReviewConfig(max_pairs=0)


# ---- the data of a real lake ----
def test_sections_carry_the_lakes_counts(base):
    data = collect_review_data(base)
    con = base.connect()
    dc = data["decontam"]
    flagged = {r[0] for r in con.execute("SELECT conversation_id FROM decontam WHERE contaminated").fetchall()}
    assert flagged == {"he-0", "he-1"} == {i["conversation_id"] for i in dc["items"]}
    assert dc["conversations_flagged"] == 2 and dc["pairs_total"] == len(dc["items"]) == 2
    assert {i["test_id"] for i in dc["items"]} == {"HumanEval/0", "HumanEval/1"}
    item = next(i for i in dc["items"] if i["conversation_id"] == "he-0")
    assert item["stage"] == "ngram" and item["ngrams"]["shared"] > 10
    # the diff's right side is the benchmark item, its left side the redacted training turn
    assert "".join(t for op, t in item["diff"] if op >= 0).startswith("from typing import List")
    assert "".join(t for op, t in item["diff"] if op <= 0).startswith("Please solve this:")

    du = data["duplicates"]
    dups = con.execute("SELECT count(*) FROM dedup WHERE NOT is_representative").fetchone()[0]
    assert du["members_total"] == dups == 2
    (cluster,) = du["clusters"]
    assert cluster["representative"] == "cap-a"
    assert {(m["conversation_id"], m["kind"]) for m in cluster["members"]} == {("cap-b", "exact"), ("cap-c", "near")}

    q = data["quarantine"]
    assert q["total"] == 2
    assert {r["reason"]: r["count"] for r in q["reasons"]} == {"messages_not_list": 1, "invalid_json": 1}

    m = data["moderation"]
    assert m["pii_redacted"] == 2 and m["pii_spans"] >= 4
    assert {s["conversation_id"] for s in m["pii_samples"]} == {"he-1", "pii"}


def test_caps_bound_the_embedded_lists_not_the_counts(base):
    data = collect_review_data(base, ReviewConfig(max_pairs=1, max_clusters=1, max_members=1,
                                                  max_quarantine_per_reason=1, max_chars=40))
    assert len(data["decontam"]["items"]) == 1 and data["decontam"]["pairs_total"] == 2
    assert len(data["duplicates"]["clusters"][0]["members"]) == 1
    assert data["duplicates"]["clusters"][0]["members_total"] == 2
    item = data["decontam"]["items"][0]
    assert item["truncated"] and len("".join(t for op, t in item["diff"] if op <= 0)) <= 40
    # a byte budget per section: whatever the texts' length, the lists stop once it is spent
    tight = collect_review_data(base, ReviewConfig(max_section_bytes=1))
    assert len(tight["decontam"]["items"]) == 1 and tight["decontam"]["pairs_total"] == 2
    assert len(tight["duplicates"]["clusters"]) == 1


def test_no_planted_pii_value_reaches_the_page(base, tmp_path):
    path = write_review_page(base, tmp_path / "review")
    html = path.read_text(encoding="utf-8")
    assert [v for v in PLANTED if v in html] == []
    assert "EMAIL_1" in html and "PHONE_1" in html  # the redacted copies are there
    # the values really are in the lake (quarantined raw bytes included), so this can fail
    con = base.connect()
    raw = "".join(str(r) for r in con.execute("SELECT conversation, NULL FROM conversations UNION ALL "
                                              "SELECT NULL, raw FROM quarantine").fetchall())
    assert all(v in raw for v in PLANTED)


def test_page_is_self_contained(base, tmp_path):
    html = write_review_page(base, tmp_path / "review").read_text(encoding="utf-8")
    code = html.split('id="review-data">', 1)[0] + html.rsplit("</script>", 2)[1]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", code)
    assert "fetch(" not in code and "XMLHttpRequest" not in code
    assert "default-src 'none'" in html


def test_page_is_the_same_for_the_same_lake(base, tmp_path):
    a = write_review_page(base, tmp_path / "a").read_bytes()
    b = write_review_page(base, tmp_path / "b").read_bytes()
    assert a == b


# ---- decisions ----
def _pair(cid, decision, test_id, benchmark="humaneval", **extra):
    return {"section": "decontam", "decision": decision, "conversation_id": cid, "benchmark": benchmark,
            "test_id": test_id, "turn": 0, **extra}


def _decisions(path, *rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _export(lake, dest, **kw):
    from curate.export.export import ExportConfig, export_dataset

    res = export_dataset(lake, dest, ExportConfig(**kw))
    kept = set(pq.read_table(res.shards).column("conversation_id").to_pylist())
    dropped = dict(zip(*[pq.read_table(res.exclusions_path).column(c).to_pylist() for c in ("id", "reason")]))
    assert res.stats["total"] == len(kept) + len(dropped)
    return kept, dropped


def test_decisions_move_rows_across_the_export(copy, tmp_path):
    kept, dropped = _export(copy, tmp_path / "before" / "ds")
    assert {"he-0", "he-1", "cap-b", "cap-c"} <= set(dropped) and {"plain", "cap-a"} <= kept
    dec = _decisions(
        tmp_path / "d.jsonl",
        _pair("he-0", "reject", "HumanEval/0", reviewer="ann", decided_at="2026-01-01T10:00:00Z"),
        _pair("plain", "accept", "HumanEval/5"),
        {"section": "dedup", "decision": "reject", "conversation_id": "cap-c", "duplicate_of": "cap-a", "kind": "exact"},
    )
    stats = apply_decisions(copy, dec, who="bob")
    assert stats["decisions"] == 3 and stats["decontam_reject"] == 1 and stats["dedup_reject"] == 1
    kept2, dropped2 = _export(copy, tmp_path / "after" / "ds")
    assert {"he-0", "cap-c"} <= kept2  # rejected flags keep their rows
    assert dropped2["plain"] == "benchmark_contamination"  # an accepted pair drops its row
    assert {"he-1", "cap-b"} <= set(dropped2)  # undecided flags stand
    # who, when, what
    row = next(r for r in copy.read_annotation("review").to_pylist() if r["conversation_id"] == "he-0")
    assert (row["reviewer"], row["applied_by"], row["decision"], row["test_id"]) == ("ann", "bob", "reject", "HumanEval/0")
    assert row["decided_at"].isoformat().startswith("2026-01-01T10:00:00")
    assert next(r for r in copy.read_annotation("review").to_pylist()
                if r["conversation_id"] == "cap-c")["reviewer"] == "bob"  # none given: the one who applied


def test_accepted_duplicate_drops_even_when_duplicates_are_kept(copy, tmp_path):
    kept, _ = _export(copy, tmp_path / "before" / "ds", drop_duplicates=False)
    assert "cap-b" in kept
    apply_decisions(copy, _decisions(tmp_path / "d.jsonl", {"section": "dedup", "decision": "accept",
                                                            "conversation_id": "cap-b", "duplicate_of": "cap-a"}))
    kept2, dropped2 = _export(copy, tmp_path / "after" / "ds", drop_duplicates=False)
    assert dropped2["cap-b"] == "duplicate" and "cap-c" in kept2


def test_the_latest_decision_wins_and_undoing_a_reject_restores_the_drop(copy, tmp_path):
    pair = {"section": "decontam", "conversation_id": "he-1", "benchmark": "humaneval", "test_id": "HumanEval/1",
            "turn": 0}
    apply_decisions(copy, _decisions(tmp_path / "1.jsonl", {**pair, "decision": "reject",
                                                            "decided_at": "2026-01-01T10:00:00Z"}))
    apply_decisions(copy, _decisions(tmp_path / "2.jsonl", {**pair, "decision": "accept",
                                                            "decided_at": "2026-01-01T11:00:00Z"}))
    assert latest_decisions(copy).decontam[("he-1", "humaneval", "HumanEval/1")]["decision"] == "accept"
    _, dropped = _export(copy, tmp_path / "x" / "ds")
    assert "he-1" in dropped


@pytest.mark.parametrize("line, message", [
    ("not json", "line 1: not JSON"),
    (json.dumps({"section": "topics", "decision": "accept", "conversation_id": "plain"}), "section 'topics'"),
    (json.dumps({"section": "dedup", "decision": "maybe", "conversation_id": "plain"}), "decision 'maybe'"),
    (json.dumps({"section": "decontam", "decision": "accept", "conversation_id": "plain"}), "benchmark and test_id"),
    (json.dumps({"section": "dedup", "decision": "accept", "conversation_id": "nope"}), "not in"),
])
def test_a_bad_decisions_file_is_refused_whole(copy, tmp_path, line, message):
    good = json.dumps({"section": "dedup", "decision": "accept", "conversation_id": "cap-b"})
    path = tmp_path / "d.jsonl"
    path.write_text(line + "\n" + good + "\n")
    with pytest.raises(DecisionError, match=message):
        apply_decisions(copy, path)
    assert "review" not in copy.annotation_tables()


def test_write_clean_honours_decisions(copy, tmp_path):
    from decontam.check import CheckConfig, run_check
    from decontam.clean import write_clean
    from decontam.train_data import load_train

    def clean(name):
        data = load_train(f"lake:{copy.root}")
        result = run_check(data, ["humaneval"], CheckConfig(use_embeddings=False, cache_dir=None))
        stats = write_clean(data, result, tmp_path / f"{name}.parquet")
        kept = set(pq.read_table(tmp_path / f"{name}.parquet").column("conversation_id").to_pylist())
        return kept, stats

    kept, stats = clean("before")
    assert not {"he-0", "he-1"} & kept and "plain" in kept
    apply_decisions(copy, _decisions(
        tmp_path / "d.jsonl",
        _pair("he-0", "reject", "HumanEval/0"),
        _pair("plain", "accept", "HumanEval/3"),
        _pair("pii", "accept", "x", benchmark="mmlu")))  # another benchmark's pair: not this check's business
    kept2, stats2 = clean("after")
    assert "he-0" in kept2 and "he-1" not in kept2 and "plain" not in kept2 and "pii" in kept2
    assert stats2["review_kept"] == 1 and stats2["review_dropped"] == 1
    assert stats2["total"] == stats2["kept"] + stats2["dropped_benchmark_contamination"]
    excl = pq.read_table(tmp_path / "after.exclusions.parquet").to_pylist()
    assert json.loads(next(r for r in excl if r["id"] == "plain")["detail"])[0]["decided_by"] == "review"


def test_reviewed_pairs_are_labelled_data_for_calibration(copy, tmp_path):
    apply_decisions(copy, _decisions(
        tmp_path / "d.jsonl",
        _pair("he-0", "accept", "HumanEval/0"),
        _pair("he-1", "reject", "HumanEval/1")))
    pairs = labelled_pairs(copy)
    assert [(p.label, p.data_type) for p in pairs] == [(True, "code"), (False, "code")]
    assert pairs[0].a.startswith("from typing import List") and pairs[0].b.startswith("Please solve this:")
    assert EMAIL not in pairs[1].b and "EMAIL_1" in pairs[1].b  # the redacted turn, as the reviewer saw it


def test_decontam_calibrate_fits_on_reviewed_pairs(copy, tmp_path):
    from click.testing import CliRunner
    from curate.cli.decontam import main

    apply_decisions(copy, _decisions(
        tmp_path / "d.jsonl",
        _pair("he-0", "accept", "HumanEval/0"),
        _pair("plain", "reject", "HumanEval/0")))
    out = tmp_path / "cal.json"
    res = CliRunner().invoke(main, ["calibrate", "--reviewed", str(copy.root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    cal = json.loads(out.read_text())
    assert cal["fitted_on"] == {"pairs": 2, "positives": 1}
    assert cal["quality"]["cosine_f1"] == 1.0


def test_a_lake_without_redacted_copies_shows_counts_but_no_text(tmp_path):
    from curate.dedup.dedup import DedupConfig, run_dedup
    from curate.ingest.ingest import ingest

    logs = tmp_path / "logs.jsonl"
    logs.write_text("".join(json.dumps(_conv(f"c{i}", f"Mail {EMAIL} please")) + "\n" for i in range(3)))
    lake = Lake(tmp_path / "lake")
    ingest(lake, [logs])
    run_dedup(lake, DedupConfig(semantic=False))  # the pipeline dedups before the PII tagger runs
    html = write_review_page(lake, tmp_path / "review").read_text(encoding="utf-8")
    data = _page_data_of(html)
    assert data["duplicates"]["members_total"] == 2
    assert data["duplicates"]["clusters"][0]["members"] == []
    assert EMAIL not in html


def test_an_empty_lake_gives_an_empty_page(tmp_path):
    lake = Lake(tmp_path / "lake").init()
    data = _page_data_of(write_review_page(lake, tmp_path / "review").read_text(encoding="utf-8"))
    assert data["quarantine"]["total"] == 0 and data["decontam"]["pairs_total"] == 0


def _page_data_of(html):
    return json.loads(re.search(r'id="review-data">(.*?)</script>', html, re.S).group(1))


def test_newer_evidence_columns_are_shown_when_present(copy, tmp_path):
    """A verifier's probability and reason, channel cosines, a judge verdict, a kept variant."""
    import pyarrow as pa

    match = {"benchmark": "humaneval", "test_id": "HumanEval/2", "turn": "0", "decided_by": "verifier",
             "cosine": 0.71, "probability": 0.62, "reason": f"same task; numbers differ ({EMAIL})",
             "cosines": {"minilm": 0.71, "multilingual": 0.8}, "rank": 2}
    copy.write_annotation("decontam", pa.Table.from_pylist([{
        "conversation_id": "plain", "contaminated": True, "benchmarks": ["humaneval"], "decided_by": "verifier",
        "matches": json.dumps([match]), "check_key": "k", "run_id": "zz"}]), part="zz")
    runs = tmp_path / "reports" / "runs" / "zz"
    runs.mkdir(parents=True)
    (runs / "decontam_report.json").write_text(json.dumps({"benchmarks": [{"flagged": [{
        "benchmark": "humaneval", "test_id": "HumanEval/2", "train_id": "plain#0",
        "verdict": {"label": "True", "margin": 1.5, "reason": "it is the same function", "model": "qwen"}}]}]}))
    copy.write_annotation("dedup", pa.Table.from_pylist([{
        "conversation_id": "pii", "cluster_id": "pii", "is_representative": True, "duplicate_of": "plain",
        "duplicate_kind": "variant", "similarity": 0.93, "run_id": "zz"}]), part="zz")
    data = collect_review_data(copy, decontam_reports=[tmp_path / "reports"])
    item = next(i for i in data["decontam"]["items"] if i["conversation_id"] == "plain")
    assert item["probability"] == item["score"] == 0.62 and item["stage"] == "verifier"
    assert item["cosines"] == {"minilm": 0.71, "multilingual": 0.8}
    assert item["reason"] == "same task; numbers differ (EMAIL_1)"  # free text is redacted too
    assert item["judge"] == {"label": "True", "margin": 1.5, "reason": "it is the same function", "model": "qwen"}
    assert item["extra"] == {"rank": 2}
    variant = next(m for c in data["duplicates"]["clusters"] for m in c["members"] if m["conversation_id"] == "pii")
    assert (variant["kind"], variant["duplicate_of"], variant["score"]) == ("variant", "plain", 0.93)
    assert ("variant", 1) in data["duplicates"]["kinds"]


def test_a_row_stays_dropped_while_one_of_its_flags_stands(copy, tmp_path):
    import pyarrow as pa

    matches = [{"benchmark": "humaneval", "test_id": t, "turn": "0", "decided_by": "embedding", "cosine": 0.8}
               for t in ("HumanEval/7", "HumanEval/8")]
    copy.write_annotation("decontam", pa.Table.from_pylist([{
        "conversation_id": "plain", "contaminated": True, "benchmarks": ["humaneval"], "decided_by": "embedding",
        "matches": json.dumps(matches), "check_key": "k", "run_id": "zz"}]), part="zz")
    apply_decisions(copy, _decisions(tmp_path / "1.jsonl", _pair("plain", "reject", "HumanEval/7")))
    _, dropped = _export(copy, tmp_path / "one" / "ds")
    assert dropped["plain"] == "benchmark_contamination"
    apply_decisions(copy, _decisions(tmp_path / "2.jsonl", _pair("plain", "reject", "HumanEval/8")))
    kept, _ = _export(copy, tmp_path / "both" / "ds")
    assert "plain" in kept
