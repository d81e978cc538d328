import json
import math

import numpy as np
import pytest
import xxhash

from curate.core.errors import ConfigError
from curate.models.llm import ChatClient, Endpoint
from curate.tag.topics import (
    LABEL_EXAMPLES, LABEL_SYSTEM_PROMPT, LABELS_TABLE, TOPICS_TABLE, TopicsConfig, ctfidf, keyword_labels, parse_label,
    tag_topics, tokenize,
)
from tests.faults.fault_server import Fault, FaultServer

THEMES = {
    "python": ["How do I sort a list in Python?", "Python list comprehension example", "Reverse a Python list",
               "Python dict to list of tuples", "Fix my Python list index error"],
    "cooking": ["Recipe for tomato soup", "How long to bake a chicken recipe", "Vegetarian soup recipe ideas",
                "Best bread recipe for beginners", "Quick pasta recipe with garlic"],
    "weather": ["Will it rain tomorrow in Paris?", "Why is the sky blue on sunny weather days",
                "What causes thunderstorms and rain", "Weather forecast for the weekend", "How do hurricanes form"],
}


class ThemeEmbedder:
    """Deterministic stand-in for the sentence model: one direction per theme word, plus noise."""

    model_id = "theme-fake"

    def __init__(self):
        self.calls = 0

    def prepare(self, text):
        return text

    @property
    def dim(self):
        return 8

    def embed(self, texts, show_progress=False):
        self.calls += len(texts)
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            low = t.lower()
            axis = 0 if ("python" in low or "list" in low) else 1 if "recipe" in low else 2 if (
                "rain" in low or "weather" in low or "sky" in low or "storm" in low or "hurricane" in low) else 3
            # noise from a stable hash of the text: Python's hash() changes per process (PYTHONHASHSEED)
            rng = np.random.default_rng(xxhash.xxh64_intdigest(t.encode()))
            out[i, axis] = 1.0
            out[i, 4:] = rng.normal(0, 0.05, 4)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def topic_lake(lake, tmp_path):
    from curate.ingest.ingest import IngestConfig, ingest

    path = tmp_path / "chats.jsonl"
    with path.open("w") as fh:
        n = 0
        for prompts in THEMES.values():
            for p in prompts:
                fh.write(json.dumps({"id": f"t{n}", "messages": [{"role": "user", "content": p},
                                                                  {"role": "assistant", "content": "ok"}]}) + "\n")
                n += 1
    lake.init()
    ingest(lake, [path], IngestConfig(format="openai"))
    return lake


def test_tokenize_drops_stop_words_and_numbers():
    assert tokenize("Please write a Python function, 42 times!") == ["python", "function", "times"]


def test_ctfidf_matches_the_formula():
    weights = ctfidf({0: ["apple apple pear"], 1: ["pear kiwi"]})
    # tf(apple, 0) = 2/3; A = (3 + 2) / 2 = 2.5; f(apple) = 2 -> log(1 + 2.5 / 2)
    assert dict(weights[0])["apple"] == pytest.approx(2 / 3 * math.log(1 + 2.5 / 2))
    assert dict(weights[0])["pear"] == pytest.approx(1 / 3 * math.log(1 + 2.5 / 2))
    assert weights[0][0][0] == "apple" and weights[1][0][0] == "kiwi"
    assert keyword_labels({0: ["apple apple pear"], 1: ["pear kiwi"]}, 1) == {0: "apple", 1: "kiwi"}
    assert keyword_labels({0: ["the a of"]}) == {0: "(no words)"}


@pytest.mark.parametrize("answer", ["Python", '{"label": "x"}', '{"label": "ok", "extra": 1}', "safe",
                                    '{"label": "a\\nb"}', '{"label": 5}'])
def test_parse_label_refuses_anything_but_the_schema(answer):
    with pytest.raises(ValueError):
        parse_label(answer)


@pytest.mark.parametrize("answer", ['{"label": "MENU"}', '{"label": "lack of a specific topic"}',
                                    '{"label": "Various topics"}', '{"label": "No clear theme"}',
                                    '{"label": "one two three four five six seven"}'])
def test_parse_label_refuses_what_is_not_a_topic_name(answer):
    # the demo card's served labels included "MENU" and "lack of a specific topic"
    with pytest.raises(ValueError, match="not a topic name"):
        parse_label(answer)


def test_parse_label_accepts_the_schema():
    assert parse_label(' {"label": "Python lists"} ') == "Python lists"


@pytest.mark.parametrize("label", ["Name the topic:", "List of topics:", "What is the capital of Australia?", "话题："])
def test_parse_label_refuses_headings_and_copied_questions(label):
    # SmolLM2-135M's served labels on the demo run (eval_tier2_models.py --serve vllm)
    with pytest.raises(ValueError, match="heading or a question"):
        parse_label(json.dumps({"label": label}))


def test_a_label_copied_from_the_instructions_needs_the_prompts_to_bear_it_out():
    # SmolLM2-135M answered the prompt's own example for 6 of the demo's 20 clusters (CJK
    # questions, crêpes, TCP vs UDP ...); the same words are a fine label where the users ask that.
    answer = json.dumps({"label": LABEL_EXAMPLES[0].lower()})
    with pytest.raises(ValueError, match="instructions' example"):
        parse_label(answer, ["What is the difference between TCP and UDP?", "TCP vs UDP latency"])
    assert parse_label(answer, ["How do I sort a list of dicts in Python?"]) == LABEL_EXAMPLES[0].lower()
    assert parse_label(answer) == LABEL_EXAMPLES[0].lower()  # no prompts given: schema and wording only
    assert LABEL_EXAMPLES[0] in LABEL_SYSTEM_PROMPT and LABEL_EXAMPLES[1] in LABEL_SYSTEM_PROMPT


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"n_nearest": 0}, {"structured": "xml"}, {"label_retries": -1}])
def test_bad_topics_config(kwargs):
    with pytest.raises(ConfigError):
        TopicsConfig(**kwargs)


def test_keyword_topics_cluster_themes_and_rerun_assigns_only_new(topic_lake, tmp_path):
    emb = ThemeEmbedder()
    stats = tag_topics(topic_lake, TopicsConfig(k=3, seed=1), embedder=emb)
    assert stats.fitted and stats.k == 3 and stats.tagged == 15
    con = topic_lake.connect()
    groups = con.execute(
        f"SELECT topic_label, list(conversation_id ORDER BY conversation_id) FROM {TOPICS_TABLE} GROUP BY 1").fetchall()
    assert sorted(len(ids) for _, ids in groups) == [5, 5, 5]
    labels = " | ".join(label for label, _ in groups)
    assert "python" in labels and "recipe" in labels
    assert con.execute(f"SELECT count(*), sum(size) FROM {LABELS_TABLE} WHERE label_source = 'keywords'"
                       ).fetchone() == (3, 15)
    assert con.execute(f"SELECT max(distance) < 0.1 FROM {TOPICS_TABLE}").fetchone()[0]

    again = tag_topics(topic_lake, TopicsConfig(k=3), embedder=emb)
    assert again.tagged == 0 and not again.fitted

    from curate.ingest.ingest import IngestConfig, ingest
    path = tmp_path / "more.jsonl"
    path.write_text(json.dumps({"id": "new1", "messages": [{"role": "user", "content": "Python list slicing"}]}) + "\n")
    ingest(topic_lake, [path], IngestConfig(format="openai"))
    more = tag_topics(topic_lake, TopicsConfig(k=3), embedder=emb)
    assert more.tagged == 1 and not more.fitted  # assigned to the stored centroids
    con = topic_lake.connect()
    new_label, = con.execute(f"SELECT topic_label FROM {TOPICS_TABLE} WHERE conversation_id = 'new1'").fetchone()
    t0_label, = con.execute(f"SELECT topic_label FROM {TOPICS_TABLE} WHERE conversation_id = 't0'").fetchone()
    assert new_label == t0_label
    assert con.execute(f"SELECT count(DISTINCT fit_id) FROM {LABELS_TABLE}").fetchone()[0] == 1


def test_k_is_clamped_to_distinct_prompts(topic_lake):
    stats = tag_topics(topic_lake, TopicsConfig(k=50), embedder=ThemeEmbedder())
    assert stats.k == 15


def test_llm_labels_with_fallback_to_keywords_on_bad_answers(topic_lake):
    def reply(body):
        prompts = body["messages"][1]["content"]
        if "recipe" in prompts.lower():
            return "Cooking, obviously."  # never valid: this topic keeps its keyword label
        return json.dumps({"label": "Python lists" if "python" in prompts.lower() else "Weather"})

    with FaultServer(reply=reply) as srv:
        srv.push(Fault.http(429, retry_after=0.01))
        client = ChatClient(Endpoint(srv.url, srv.model), backoff_s=0.01)
        stats = tag_topics(topic_lake, TopicsConfig(k=3, seed=1, label_retries=1), client=client,
                           embedder=ThemeEmbedder())
        bodies = srv.chat_bodies()
    assert stats.extra["label_sources"] == {"llm": 2, "keywords": 1}
    con = topic_lake.connect()
    rows = con.execute(f"SELECT topic_label, label_source, label_error FROM {LABELS_TABLE} ORDER BY 1").fetchall()
    assert {r[0] for r in rows if r[1] == "llm"} == {"Python lists", "Weather"}
    [(kw_label, _, err)] = [r for r in rows if r[1] == "keywords"]
    assert "recipe" in kw_label and err.startswith("llm_invalid_output")
    # Prompts nearest the centroid plus random members, fenced as a JSON list.
    user = bodies[-1]["messages"][1]["content"]
    assert user.startswith("<<<PROMPTS>>>") and len(json.loads(user.split("\n", 1)[1].rsplit("\n", 2)[0])) == 5


def test_labels_never_quote_pii_even_before_the_pii_tagger_ran(lake, tmp_path):
    from curate.ingest.ingest import IngestConfig, ingest

    path = tmp_path / "pii.jsonl"
    prompts = ["Send zed.quux@example.com the invoice", "Invoice reminder for zed.quux@example.com",
               "Ask zed.quux@example.com about the overdue invoice"]
    path.write_text("".join(json.dumps({"id": f"p{i}", "messages": [{"role": "user", "content": p}]}) + "\n"
                            for i, p in enumerate(prompts)))
    lake.init()
    ingest(lake, [path], IngestConfig(format="openai"))
    assert "pii" not in lake.annotation_tables()
    tag_topics(lake, TopicsConfig(k=1), embedder=ThemeEmbedder())
    [(label, keywords)] = lake.connect().execute(f"SELECT topic_label, keyword_label FROM {LABELS_TABLE}").fetchall()
    assert "invoice" in label
    assert "zed" not in label + keywords and "quux" not in label + keywords


def test_kmeans_fit_ignores_row_order_and_last_bit_noise():
    """The fresh-clone flake: one faiss k-means start on rows in lake order changed the topics
    when row order or the vectors' last bits (torch threads) changed."""
    from curate.tag.topics import _kmeans

    prompts = [p for ps in THEMES.values() for p in ps]
    x = ThemeEmbedder().embed(prompts)
    config = TopicsConfig(k=3, seed=1)
    base = _kmeans(x, 3, config, prompts)
    assert sorted(np.bincount((x @ base.T).argmax(1), minlength=3)) == [5, 5, 5]
    rng = np.random.default_rng(0)
    for _ in range(5):
        perm = rng.permutation(len(prompts))
        noisy = x[perm] + rng.normal(0, 1e-7, x.shape).astype(np.float32)
        again = _kmeans(noisy, 3, config, [prompts[i] for i in perm])
        assert np.abs(again - base).max() < 1e-4  # same clusters, same topic ids
