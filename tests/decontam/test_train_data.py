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
