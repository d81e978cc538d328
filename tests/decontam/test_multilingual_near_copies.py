"""The multilingual channel scores a candidate's near copies with it (same text up to numbers)."""

from __future__ import annotations

import numpy as np

from decontam.embed_search import MAX_NEAR_COPIES, TierIndex, near_copy_key
from tests.decontam.fakes import BagOfWordsEmbedder


class _Multi(BagOfWordsEmbedder):
    model_id = "fake-multi-copies"


class _Static(BagOfWordsEmbedder):
    model_id = "fake-static-copies"


def _channel_rows(index: TierIndex, query: str) -> list[int]:
    nb, _ = index.search_texts([query], k=1)
    return sorted(int(j) for j, ch in zip(nb.indices[0], nb.channels[0]) if ch == 1 and j >= 0)


def test_near_copies_of_a_channel_candidate_get_a_verdict_whatever_copy_won_the_slot():
    """Regression (bench_pipeline 10k, lead 00:40): a lake held 9 Russian copies of one request that
    differ only in a number; the item's top `multi_k` rows by USE cosine became candidates, so 1 of
    the 9 was flagged and 8 were never scored. Every near copy of a candidate is now scored with it."""
    copies = [f"Как мне отсортировать список на Python? ({n})" for n in (80114, 4471, 9, 123456, 77, 5150)]
    other = ["Как мне прочитать файл построчно на Python?", "Как мне отсортировать словарь по значению?"]
    texts = ["How do I sort a list?"] + copies + other
    langs = ["en"] + ["ru"] * (len(copies) + len(other))
    query = "Как мне отсортировать список на Python?"
    index = TierIndex.build(texts, BagOfWordsEmbedder(), _Static(), multi=_Multi(), langs=langs, multi_k=2)
    assert _channel_rows(index, query) == list(range(1, 1 + len(copies)))  # all six, not the two that won
    # the same candidates whatever the copies' order in the corpus
    order = [0] + list(range(len(texts) - 1, 0, -1))
    again = TierIndex.build([texts[j] for j in order], BagOfWordsEmbedder(), _Static(), multi=_Multi(),
                            langs=[langs[j] for j in order], multi_k=2)
    assert sorted(order[j] for j in _channel_rows(again, query)) == list(range(1, 1 + len(copies)))
    # no copies: the channel's top multi_k as before
    plain = TierIndex.build(texts[:2] + other, BagOfWordsEmbedder(), _Static(), multi=_Multi(), langs=langs[:2] + ["ru"] * 2,
                            multi_k=2)
    assert len(_channel_rows(plain, query)) == 2
    assert near_copy_key("Sort a list (526872)") == near_copy_key("sort a  LIST (80114)") != near_copy_key("Sort a list")
    assert MAX_NEAR_COPIES >= 16


def test_near_copy_scores_are_each_copys_own():
    """A near copy's channel score is computed from its own text (its numbers count in num_miss)."""
    item = "Given that f(x) = 4x^3 - 9x - 14, find the value of f(2)."
    rows = ["已知 f(x) = 4x^3 - 9x - 14，求 f(2) 的值。", "已知 f(x) = 5x^3 - 8x - 11，求 f(7) 的值。"]
    index = TierIndex.build(["hello"] + rows, BagOfWordsEmbedder(), _Static(), multi=_Multi(),
                            langs=["en", "zh", "zh"], multi_k=1)
    nb, _ = index.search_texts([item], k=1)
    got = {int(j): float(s) for j, s, ch in zip(nb.indices[0], nb.scores[0], nb.channels[0]) if ch == 1 and j >= 0}
    assert set(got) == {1, 2} and got[1] > got[2]
    assert np.isfinite(list(got.values())).all()
