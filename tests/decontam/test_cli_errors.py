"""`decontam check` errors name the fix, and `--train lake` reads the PII-redacted text (issue #12)."""

import json

import pytest
from click.testing import CliRunner

from curate.cli.decontam import main


def _check(*train_args: str):
    return CliRunner().invoke(main, ["check", *train_args, "--benchmark", "humaneval", "--no-embeddings"])


def _one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.output
    return lines[0]


@pytest.mark.parametrize("spec", ["missing.jsonl", "data/missing.jsonl", "some/dir/train.parquet"])
def test_a_missing_file_says_it_does_not_exist(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    line = _one_error_line(_check("--train", spec))
    assert f"no such file: {spec}" in line and "hub dataset" in line and "cannot load" not in line


def test_a_missing_absolute_path_says_it_does_not_exist(tmp_path):
    line = _one_error_line(_check("--train", str(tmp_path / "missing.jsonl")))
    assert "no such file" in line


def test_a_missing_lake_says_so(tmp_path):
    line = _one_error_line(_check("--train", f"lake:{tmp_path / 'nolake'}"))
    assert "no lake at" in line and "curate ingest" in line


def test_an_unreadable_file_names_the_fix(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"text": "x"}) + "\n")
    # root reads any file, so the permission check is what is exercised here
    monkeypatch.setattr("decontam.train_data.os.access", lambda p, mode: False)
    line = _one_error_line(_check("--train", str(path)))
    assert "permission denied" in line and "chmod" in line


def test_a_wrong_train_field_lists_the_columns(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"id": 1, "prompt": "x"}) + "\n")
    line = _one_error_line(_check("--train", str(path), "--train-field", "instruction"))
    assert "no column 'instruction'" in line and "--train-field" in line and "id, prompt" in line


def test_lake_report_never_quotes_a_redacted_value(tmp_path):
    """The CLI read raw messages while the pipeline read the redacted copy (issue #16)."""
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake
    from curate.tag.pii import tag_pii
    from decontam.benchmarks import load_benchmark

    he = load_benchmark("humaneval")
    secret_email, secret_phone = "jane.roe@example.org", "+33 7 15 86 11 13"
    prompt = f"Mail {secret_email} or ring {secret_phone} with the fix.\n{he.texts[3]}"
    rows = [{"id": "leaky", "messages": [{"role": "user", "content": prompt}]}]
    rows += [{"id": f"r{i}", "messages": [{"role": "user", "content": f"a recipe with {i} eggs"}]} for i in range(5)]
    logs = tmp_path / "chats.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lake = Lake(tmp_path / "lake")
    ingest(lake, [logs])

    res = _check("--train", f"lake:{lake.root}")
    assert "curate tag pii" in _one_error_line(res)  # nothing is read before the text is redacted

    tag_pii(lake)
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["check", "--train", f"lake:{lake.root}", "--benchmark", "humaneval",
                                    "--no-embeddings", "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    [b] = json.loads(res.stdout)["benchmarks"]
    assert [p["train_id"].split("#")[0] for p in b["flagged"]] == ["leaky"]  # the quoting row is reported
    texts = [res.output] + [p.read_text() for p in out.iterdir()]
    for text in texts:
        assert secret_email not in text and "15 86 11 13" not in text
    assert any("[EMAIL" in t or "EMAIL" in t for t in texts)
