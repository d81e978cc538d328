import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from decontam.errors import TrainDataError
from decontam.train_data import load_train


def test_chat_format_gives_one_row_per_user_turn(tmp_path):
    rows = [
        {"id": "c1", "conversations": [{"from": "human", "value": "hi there"}, {"from": "gpt", "value": "hello"},
                                        {"from": "human", "value": "write fizzbuzz"}]},
        {"id": "c2", "conversations": [{"from": "gpt", "value": "only the bot"}]},
    ]
    (tmp_path / "chat.json").write_text(json.dumps(rows))
    data = load_train(str(tmp_path / "chat.json"))
    assert data.texts == ["hi there", "write fizzbuzz"] and data.ids == ["c1#0", "c1#2"] and data.parents == [0, 0]


def test_parquet_with_named_field(tmp_path):
    pq.write_table(pa.table({"instruction": ["a", None, "c"], "output": ["x", "y", "z"]}), tmp_path / "t.parquet")
    data = load_train(str(tmp_path / "t.parquet"), text_field="instruction")
    assert data.texts == ["a", "c"] and data.parents == [0, 2]


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(TrainDataError):
        load_train(str(tmp_path / "nope.jsonl"))
    (tmp_path / "t.jsonl").write_text(json.dumps({"foo": "bar"}) + "\n")
    with pytest.raises(TrainDataError, match="--train-field"):
        load_train(str(tmp_path / "t.jsonl"))
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(TrainDataError, match="cannot read"):
        load_train(str(tmp_path / "broken.jsonl"))


def test_saved_hf_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["one", "two"]}).save_to_disk(str(tmp_path / "ds"))
    data = load_train(str(tmp_path / "ds"))
    assert data.texts == ["one", "two"] and data.kind == "hf"


def _tagged_lake(tmp_path):
    """A lake with three conversations, PII-tagged, and a `language` table written as the tagger writes it."""
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake
    from curate.tag.language import SCHEMA
    from curate.tag.pii import tag_pii

    rows = [{"id": "en", "messages": [{"role": "user", "content": "How do I sort a list in Python?"},
                                      {"role": "assistant", "content": "Use sorted()."},
                                      {"role": "user", "content": "请用三句话解释一下排序。"}]},
            {"id": "zh", "messages": [{"role": "user", "content": "如何在Python中处理列表？"}]},
            {"id": "untagged", "messages": [{"role": "user", "content": "x = 1"}]}]
    logs = tmp_path / "chats.jsonl"
    logs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    lake = Lake(tmp_path / "lake")
    ingest(lake, [logs])
    tag_pii(lake)
    con = lake.connect()
    in_order = [r[0] for r in con.execute("SELECT conversation_id FROM conversations ORDER BY source_index").fetchall()]
    con.close()
    ids = dict(zip(("en", "zh", "untagged"), in_order))

    def msg(i, role, code):
        return {"message_index": i, "role": role, "language": code, "language_code": code, "confidence": 0.9}

    table = pa.Table.from_pylist([
        {"conversation_id": ids["en"], "language": "English", "language_code": "en", "language_confidence": 0.9,
         "message_languages": [msg(0, "user", "en"), msg(1, "assistant", "en"), msg(2, "user", "zh")], "detector": "t"},
        {"conversation_id": ids["zh"], "language": "Chinese", "language_code": "zh", "language_confidence": 0.9,
         "message_languages": [msg(0, "user", None)], "detector": "t"},  # unknown message: the conversation's tag
    ], schema=SCHEMA)
    lake.write_annotation("language", table, part="t")
    return lake, ids


def test_lake_turns_carry_the_language_taggers_codes(tmp_path):
    """`--train lake` passes each user turn's language tag, so the multilingual channel embeds
    only the turns in another language than the benchmark's (issue #13)."""
    from decontam.train_data import user_turn_languages

    lake, ids = _tagged_lake(tmp_path)
    data = load_train(f"lake:{lake.root}")
    got = dict(zip(data.ids, data.langs))
    assert got == {f"{ids['en']}#0": "en", f"{ids['en']}#2": "zh", f"{ids['zh']}#0": "zh", f"{ids['untagged']}#0": None}
    assert user_turn_languages(lake, [f"{ids['zh']}#0", "nope#1"]) == ["zh", None]


def test_a_lake_without_language_tags_gives_no_codes(tmp_path):
    from decontam.train_data import user_turn_languages
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake

    logs = tmp_path / "c.jsonl"
    logs.write_text(json.dumps({"id": "a", "messages": [{"role": "user", "content": "hi there"}]}) + "\n")
    lake = Lake(tmp_path / "lake")
    ingest(lake, [logs])
    con = lake.connect()
    [(cid,)] = con.execute("SELECT conversation_id FROM conversations").fetchall()
    con.close()
    assert user_turn_languages(lake, [f"{cid}#0"]) == [None]
