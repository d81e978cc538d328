import json

import pytest


@pytest.fixture
def small_lake(lake, tmp_path):
    """A lake with a few conversations written by us: threats, self-harm, clean chat."""
    from curate.ingest.ingest import IngestConfig, ingest

    convs = [
        [("user", "How do I reverse a list in Python?"), ("assistant", "Use my_list[::-1].")],
        [("user", "I will find where you live and make you regret it."), ("assistant", "I can't help with threats.")],
        [("user", "What is the capital of Australia?"), ("assistant", "Canberra.")],
        [("user", "You are a stupid useless idiot."), ("assistant", "Sorry you feel that way.")],
        [("system", "You are helpful."), ("user", "I'm going to kill myself tonight."),
         ("assistant", "Please reach out to a crisis line.")],
        [("user", "Give me a recipe for vegetarian lasagna."), ("assistant", "Layer pasta, sauce, vegetables.")],
    ]
    path = tmp_path / "chats.jsonl"
    with path.open("w") as fh:
        for i, conv in enumerate(convs):
            msgs = [{"role": r, "content": c} for r, c in conv]
            fh.write(json.dumps({"id": f"c{i}", "model": "m", "messages": msgs}) + "\n")
    lake.init()
    stats = ingest(lake, [path], IngestConfig(format="openai"))
    assert stats.kept == len(convs)
    return lake

