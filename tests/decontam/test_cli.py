"""The CLI end to end, with the real offline embedder (no fakes)."""

import json

import pytest
from click.testing import CliRunner

from curate.cli.decontam import main
from tests.conftest import DEMO_LOGS


def test_help_has_examples():
    runner = CliRunner()
    for cmd in ("check", "rephrase", "calibrate", "benchmarks"):
        out = runner.invoke(main, [cmd, "--help"]).output
        assert "Example" in out, cmd


def test_library_errors_are_one_line_and_exit_2(tmp_path):
    res = CliRunner().invoke(main, ["check", "--train", str(tmp_path / "missing.jsonl"), "--benchmark", "humaneval", "--no-embeddings"])
    assert res.exit_code == 2 and res.output.startswith("error: ") and "Traceback" not in res.output


def test_judge_without_endpoint_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("CURATE_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("CURATE_LLM_MODEL", raising=False)
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    res = CliRunner().invoke(main, ["check", "--train", str(tmp_path / "t.jsonl"), "--benchmark", "humaneval", "--judge"])
    assert res.exit_code == 2 and "--judge-url" in res.output


def test_ngram_only_check_fail_over_and_write_clean(tmp_path):
    from decontam.benchmarks import load_benchmark

    he = load_benchmark("humaneval")
    rows = [{"id": "copy", "text": "Solve this:\n" + he.texts[3]}] + [{"id": f"r{i}", "text": f"recipe number {i} with eggs"} for i in range(20)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["check", "--train", str(tmp_path / "t.jsonl"), "--benchmark", "humaneval", "--no-embeddings",
            "--json", "--out", str(tmp_path / "out"), "--write-clean", str(tmp_path / "clean.parquet"), "--fail-over", "0.5"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output  # 1/164 = 0.61% > 0.5%
    report = json.loads(res.stdout)
    [b] = report["benchmarks"]
    assert b["contaminated_items"] == 1 and b["flagged"][0]["train_id"] == "copy" and b["flagged"][0]["ngram_examples"]
    assert (tmp_path / "out" / "decontam_report.md").exists()
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "clean.parquet").num_rows == 20
    res = CliRunner().invoke(main, args[:-1] + ["1"])
    assert res.exit_code == 0


@pytest.mark.slow
def test_demo_lake_against_humaneval_finds_planted_items(tmp_path):
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake

    from curate.tag.pii import tag_pii

    lake = Lake(tmp_path / "lake")
    ingest(lake, [DEMO_LOGS])
    tag_pii(lake)  # the lake's training side is its redacted text
    res = CliRunner().invoke(main, ["check", "--train", f"lake:{lake.root}", "--benchmark", "humaneval", "--json",
                                    "--cache-dir", str(tmp_path / "cache"), "--write-clean", str(tmp_path / "clean.parquet")])
    assert res.exit_code == 0, res.output
    [b] = json.loads(res.stdout)["benchmarks"]
    found = {p["test_id"] for p in b["flagged"]}
    by = {p["decided_by"] for p in b["flagged"]}
    assert {"HumanEval/0", "HumanEval/1", "HumanEval/2"} <= found, found
    assert "ngram" in by


@pytest.mark.parametrize("args, want", [([], 10), (["--top-k", "2"], 2)])
def test_top_k_defaults_to_the_library_default(tmp_path, monkeypatch, args, want):
    """The CLI hands the verifier several neighbours per item, as `CheckConfig` does (it once defaulted to 1)."""
    import decontam.check

    seen = {}

    class Stop(Exception):
        pass

    def capture(*a, **kw):
        seen["config"] = next(x for x in list(a) + list(kw.values()) if isinstance(x, decontam.check.CheckConfig))
        raise Stop

    monkeypatch.setattr(decontam.check, "run_check", capture)
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    res = CliRunner().invoke(main, ["check", "--train", str(tmp_path / "t.jsonl"), "--benchmark", "humaneval", *args])
    assert isinstance(res.exception, Stop), res.output
    assert seen["config"].top_k == want == (decontam.check.CheckConfig().top_k if not args else 2)
