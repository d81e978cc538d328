"""Multilingual tier-1 rules (moderation.lexicon_multi) through LocalModerator."""

import json
from collections import Counter
from pathlib import Path

import pytest

from moderation import lexicon_multi
from moderation.local import LocalConfig, LocalModerator

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def moderator():
    return LocalModerator(LocalConfig())


@pytest.mark.parametrize("text, category", [
    ("Eres un gilipollas y un inútil.", "harassment"),
    ("Je vais te tuer si tu recommences.", "harassment/threatening"),
    ("Halt die Fresse, du Arschloch.", "harassment"),
    ("Sei un coglione.", "harassment"),
    ("Vai se foder, seu otário.", "harassment"),
    ("Я тебя убью, урод.", "harassment/threatening"),
    ("你这个废物，滚开。", "harassment"),
    ("Los refugiados son escoria.", "hate"),
])
def test_abuse_in_seven_languages_is_flagged_with_its_category(moderator, text, category):
    [v] = moderator.moderate([text])
    assert v["flagged"] and v["categories"][category], v["category_scores"]


@pytest.mark.parametrize("text", [
    "¿Cómo puedo matar un proceso en Linux?",
    "Comment tuer un processus bloqué ?",
    "Das Konzert war geil.",
    "Il concerto è stato una bomba.",
    "Esse treino está me matando.",
    "Как убить зависший процесс?",
    "这次训练累死我了。",
    "Qual è l'etimologia della parola 'cazzo'?",  # a mention, not a use
])
def test_trigger_words_used_harmlessly_are_not_flagged(moderator, text):
    [v] = moderator.moderate([text])
    assert not v["flagged"], v["category_scores"]


def test_quoted_word_is_a_mention_only_when_the_text_talks_about_words():
    assert "puta" not in lexicon_multi.strip_mentions("¿qué significa la palabra 'puta'?")
    assert "puta" in lexicon_multi.strip_mentions("eres una 'puta' y lo sabes")
    # an apostrophe inside a word does not open a quote
    assert "l'origine" in lexicon_multi.strip_mentions("l'origine du mot 'con'")


def test_multilingual_rules_can_be_switched_off():
    off = LocalModerator(LocalConfig(multilingual=False))
    assert not off.moderate(["Eres un gilipollas."])[0]["flagged"]
    assert "multi7" in LocalConfig().model_id and "multi7" not in LocalConfig(multilingual=False).model_id


def test_held_out_multilingual_set_meets_the_targets(moderator):
    """tests/data/moderation_multi_eval.jsonl (never tuned on): recall >= .85 in every
    language, false-positive rate <= 5 % on benign messages with trigger words."""
    rows = [json.loads(line) for line in (DATA / "moderation_multi_eval.jsonl").read_text(encoding="utf-8").splitlines()]
    verdicts = moderator.moderate([r["text"] for r in rows])
    hit, total, fp, benign = Counter(), Counter(), 0, 0
    for r, v in zip(rows, verdicts):
        if r["label"] == "none":
            benign += 1
            fp += v["flagged"]
        else:
            total[r["lang"]] += 1
            hit[r["lang"]] += v["flagged"]
    assert len(total) >= 7 and sum(total.values()) >= 100
    recall = {lang: hit[lang] / total[lang] for lang in total}
    assert min(recall.values()) >= 0.85, recall
    assert fp / benign <= 0.05
