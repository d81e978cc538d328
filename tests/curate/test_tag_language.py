import json
import sys
from pathlib import Path

import pytest

from curate.core.errors import ConfigError
from curate.ingest.ingest import IngestConfig, ingest
from curate.tag.language import LanguageConfig, LanguageTagger, clean_for_detection, tag_language

REPO = Path(__file__).resolve().parents[2]
DEMO_LOGS = REPO / "curate" / "ingest" / "demo_logs"

EVAL = REPO / "tests" / "data" / "lang_eval.jsonl"
EVAL_LANGS = ("en", "es", "fr", "de", "pt", "it", "nl", "ru", "zh", "ja", "ko", "ar", "pl")


@pytest.fixture(scope="module")
def small_tagger():
    # the languages of the eval set and the demo logs: quick to load for unit tests
    return LanguageTagger(LanguageConfig(languages=EVAL_LANGS))


def test_clean_for_detection_removes_code_urls_and_emails():
    text = "Warum geht das nicht?\n```python\nprint('hello world')\n```\nSiehe https://example.com/x und `foo()` a@b.de"
    cleaned = clean_for_detection(text)
    assert "print" not in cleaned and "https" not in cleaned and "foo" not in cleaned and "@" not in cleaned
    assert cleaned.startswith("Warum geht das nicht?")


def test_code_only_or_empty_text_is_unknown(small_tagger):
    for text in ("", None, "```\nx = 1\n```", "12345 + 678", "🙂🙂"):
        det = small_tagger.detect(text)
        assert det.language == "unknown" and det.code is None


def test_question_above_code_gets_the_question_language(small_tagger):
    text = "このコードはなぜ構文エラーになるのですか？\n\n```python\ndef f(x):\n    return x +\n```"
    assert small_tagger.detect(text).code == "ja"


def test_conversation_language_is_first_user_message_with_a_language(small_tagger):
    messages = [
        {"role": "system", "content": "You are a helpful assistant that answers briefly."},
        {"role": "user", "content": "```js\nconsole.log(1)\n```"},
        {"role": "user", "content": "¿Por qué este código no imprime nada en la consola?"},
        {"role": "assistant", "content": "Because the script never runs: you did not call it."},
    ]
    conv, per_message = small_tagger.tag_conversation(messages)
    assert conv.code == "es" and conv.language == "Spanish"
    assert [m["language_code"] for m in per_message] == ["en", None, "es", "en"]
    assert [m["message_index"] for m in per_message] == [0, 1, 2, 3]


def test_small_set_accuracy_on_eval(small_tagger):
    items = [json.loads(line) for line in EVAL.open(encoding="utf-8")]
    correct = sum(small_tagger.detect(it["text"]).code == it["lang"] for it in items)
    assert len({it["lang"] for it in items}) >= 7 and len(items) >= 20 * 7
    assert correct / len(items) >= 0.97


def test_config_is_validated_before_data_is_read():
    with pytest.raises(ConfigError, match="not supported"):
        LanguageConfig(languages=("en", "xx"))
    with pytest.raises(ConfigError):
        LanguageConfig(languages=("en",))
    with pytest.raises(ConfigError):
        LanguageConfig(max_chars=0)
    LanguageConfig(languages=("all",))


def test_tag_language_on_demo_lake_and_rerun_does_no_work(lake):
    ingest(lake, [DEMO_LOGS], IngestConfig())
    config = LanguageConfig(languages=EVAL_LANGS)
    stats = tag_language(lake, config)
    assert stats.tagged == stats.total > 0
    assert sum(v for k, v in stats.extra.items() if k.startswith("language_")) == stats.total
    con = lake.connect()
    codes = {r[0] for r in con.execute("SELECT DISTINCT language_code FROM language").fetchall()}
    assert {"en", "fr", "de", "es", "zh", "ja", "ru", "pt", "it"} <= codes
    n_msgs, n_tagged = con.execute(
        "SELECT (SELECT count(*) FROM messages), (SELECT sum(len(message_languages)) FROM language)").fetchall()[0]
    assert n_msgs == n_tagged
    row = con.execute(
        "SELECT DISTINCT l.language, l.language_code FROM language l JOIN conversations c USING (conversation_id) "
        "WHERE c.conversation[1].content LIKE 'Wie funktioniert eine Wärmepumpe%'").fetchall()
    assert row == [("German", "de")]
    again = tag_language(lake, config)
    assert again.tagged == 0 and again.skipped_already_tagged == stats.total


@pytest.mark.slow
def test_default_config_accuracy_on_eval_set():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_taggers_quality import eval_language

    result = eval_language()
    assert result["languages"] >= 7
    assert result["accuracy"] >= 0.95
    assert min(result["per_language"].values()) >= 0.9


# ---- issue #17: `unknown` only when truly unknown -------------------------------------
def _short_eval():
    path = Path(__file__).resolve().parents[1] / "data" / "lang_short_eval.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_short_and_code_heavy_english_gets_english_and_no_other_language_turns_english(small_tagger):
    rows = _short_eval()
    english = [r for r in rows if r["lang"] == "en"]
    other = [r for r in rows if r["lang"] != "en"]
    right = sum(small_tagger.detect(r["text"]).code == "en" for r in english)
    assert right / len(english) >= 0.9
    off = LanguageTagger(LanguageConfig(languages=EVAL_LANGS, english_fallback=False))
    # the fallback never makes a non-English message English where lingua did not
    for r in other:
        if small_tagger.detect(r["text"]).code == "en":
            assert off.detect(r["text"]).code == "en", r


def test_code_only_conversation_takes_the_replys_language(small_tagger):
    conv = [{"role": "user", "content": "```\n12 + 7\n```"},
            {"role": "assistant", "content": "The result of the expression is nineteen."}]
    det, per_message = small_tagger.tag_conversation(conv)
    assert per_message[0]["language_code"] is None and det.code == "en"
    assert LanguageTagger(LanguageConfig(languages=EVAL_LANGS, english_fallback=False)).tag_conversation(conv)[0].code is None


def test_texts_that_differ_in_digits_only_share_one_lingua_call_and_get_their_own_answer(small_tagger):
    texts = ["Wie kann ich eine Liste in Python sortieren? (48213)", "Wie kann ich eine Liste in Python sortieren? (7)",
             "Comment trier une liste en Python ? Merci 2024"]
    fresh = LanguageTagger(LanguageConfig(languages=EVAL_LANGS))
    uncached = [fresh._lingua_best(False, clean_for_detection(t)) for t in texts]
    got = [small_tagger.detect(t) for t in texts]
    assert [d.code for d in got] == ["de", "de", "fr"]
    assert [d.confidence for d in got] == [round(float(u[1]), 4) for u in uncached]
    before = small_tagger._lingua_cached.cache_info().hits
    small_tagger.detect("Wie kann ich eine Liste in Python sortieren? (99999)")
    assert small_tagger._lingua_cached.cache_info().hits == before + 1


def test_the_fast_mode_is_chosen_by_the_texts_own_length_not_the_cache_key(small_tagger):
    # 117 characters of words plus a 6-digit number: 123 characters, over the fast-mode cut
    # of 120, though the key (digits as one "0") is shorter than the cut
    text = ("Ich möchte wissen, wie man in Python eine Liste von Wörterbüchern nach einem Schlüssel "
            "sortiert, bitte erkläre es. 123456")
    assert len(text) >= 120 > len(text.replace("123456", "0"))
    seen = []
    tagger = LanguageTagger(LanguageConfig(languages=EVAL_LANGS))
    real = tagger._lingua_best
    tagger._lingua_cached = lambda fast, key: seen.append(fast) or real(fast, key)
    assert tagger.detect(text).code == "de"
    assert seen == [True]
