"""`run_check`: n-gram overlap, embedding neighbours and the judge, over several benchmarks.

The decision for a candidate pair (a benchmark item and one of its top-k training
neighbours) is made in this order:

1. a shared normalised n-gram (13 tokens by default) flags it: verbatim copy;
2. cosine >= `cascade_high` flags it without asking the judge;
3. cosine < `cascade_floor` clears it without asking the judge;
4. in the band between, the embedding decision (cosine >= `cosine_threshold`) stands
   unless the judge is calibrated for its model and prompt version: then the calibrated
   fusion of cosine and the judge's graded margin decides (or, for a calibration without
   one, the margin against its cut-off). An uncalibrated judge is only
   recorded as evidence, and a judge error leaves the embedding decision in place.
   The embedding decision attributes: a training row closer to another benchmark item
   (by more than `attribution_tolerance`) is flagged for that item instead.

So a judge never makes the default worse than the embedding stage alone: measured here,
small judges say True to almost everything and only their calibrated margin is worth
trusting.

>>> from decontam.check import CheckConfig, run_check          # doctest: +SKIP
>>> result = run_check("train.jsonl", ["humaneval"], CheckConfig())  # doctest: +SKIP
>>> result.benchmarks[0].rate                                         # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from decontam.benchmarks import Benchmark, load_benchmark
from decontam.calibrate import Calibration
from decontam.embed_search import (
    DEFAULT_GENERIC_MAX_WORDS,
    DEFAULT_MULTI_K,
    DEFAULT_PROPOSE_K,
    INDEX_TYPES,
    XL_BAND,
    XL_CUT,
    Neighbours,
    TierIndex,
    TrainIndex,
    default_embedder,
    embed_texts,
    tier_embedders,
)
from decontam.errors import DecontamError
from decontam.judge import ERROR, TRUE, Judge, JudgePair, Verdict
from decontam.ngram import NgramIndex
from decontam.prompts import DATA_TYPES, PROMPT_VERSION
from decontam.train_data import TrainData, load_train

logger = logging.getLogger(__name__)

# Exclusion reason code for rows dropped by --write-clean (stable, snake_case).
REASON_CONTAMINATION = "benchmark_contamination"

# all-MiniLM-L6-v2 cut-offs, fitted on calibration items of the bundled evaluation
# (HumanEval items 100-163, sociology and US-history MMLU rows past 100), never on the
# scored ones (benchmarks/eval_decontam_quality.py). The cosine cut comes from the search
# protocol: each item's top-1 among all ~1,400 published rephrasings, with and without its
# own. That is what the stage meets on a real corpus, where every benchmark item has some
# similar neighbour. The paper's pairs protocol (random mismatched negatives) fits 0.40,
# which flags 162 of 164 HumanEval items against CodeAlpaca and 155 of 164 in a 200k-row
# chat corpus. The floor sits below 98% of all calibration positives, translations
# included (below it not even the judge is asked); the high mark sits well above the
# highest calibration negative (0.71).
DEFAULT_COSINE_THRESHOLD = 0.68
DEFAULT_CASCADE_HIGH = 0.90
DEFAULT_CASCADE_FLOOR = 0.0
# An item is generic when even its nearest few training texts all sit close to it (see CheckConfig).
GENERIC_NEIGHBOURS = 5
# A training row that the embedding stage would flag for item t is left to the item it
# is closest to when that item beats t by more than this cosine: a copy of item u also
# sits near u's siblings (HumanEval/1 and /6 are both about parentheses), but it is a
# copy of u. Against CodeAlpaca, 0.02 keeps all 18 of GPT-4's True pairs at the default
# cut and drops 12 of the 77 others; 0.0 would lose 9 of the 18.
DEFAULT_ATTRIBUTION_TOLERANCE = 0.02
# The multilingual channel (training rows in another language than the benchmark's) decides
# its own candidates: `decontam.embed_search.CrossLingualScorer`'s pair probability (USE
# cosine, the item's request matched sentence by sentence, and how much better another item's
# request matches) at this cut, fitted on the search protocol's calibration items of the
# Chinese MMLU rephrasings (`benchmarks/eval_decontam_quality.py xl`). The pair verifier, fitted
# mostly on same-language pairs, decides channel 0.
DEFAULT_MULTI_THRESHOLD = XL_CUT


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """What `run_check` does; validated before any data is read."""

    ngram_n: int = 13
    use_ngram: bool = True
    use_embeddings: bool = True
    # Candidates per item handed to the verifier. 10, not 5: in the search protocol an item's own
    # rephrasing is among the top 5 for only 79-88 of 93-99 items in C, JS, Java, Rust and Go and 58 of
    # 95 in US history (a perfect verifier: F1 <= .91-.94 and .76); with 10, F1 rises on each of them
    # with no code set gaining a false flag (US history: 21 -> 22 items; benchmarks/eval_verifier.py --testbed).
    top_k: int = 10
    # The lexical channel (decontam.ngram.LexicalIndex): the `lexical_k` training rows sharing the most rare
    # words with each item join its candidates. A rephrasing that keeps an item's rare words but ranks
    # below top_k by cosine is otherwise never seen by the verifier. Off by default (opt-in, e.g. 5): on
    # the search protocol it lifts recall, but US history's false-flag items rise 22 -> 38, and the
    # served judge's band calibration was fitted without lexical candidates (docs/decontam.md).
    lexical_k: int = 0
    # The pair verifier (curate.models.verify, task "decontam") decides the band: its probability is
    # the default decision, it attributes a row flagged for several items to the most likely
    # one, and only its uncertain band goes to a judge. False: the cosine cut as before.
    verifier: bool = True
    cosine_threshold: float | None = None  # None: the calibration's, else the default
    cascade: bool = True
    cascade_high: float = DEFAULT_CASCADE_HIGH
    cascade_floor: float = DEFAULT_CASCADE_FLOOR
    attribution_tolerance: float | None = DEFAULT_ATTRIBUTION_TOLERANCE  # None: off
    data_type: str | None = None  # override the benchmark's judge prompt variant
    index_type: str = "flat"
    cache_dir: Path | None = Path(".cache/decontam")
    # Generic benchmark items (short, non-code requests such as "What is the capital of
    # France?") get the verifier's stricter cut; the report lists them. The multilingual channel's
    # generic code items (a task in words this short) use the same setting.
    generic_max_words: int = DEFAULT_GENERIC_MAX_WORDS
    max_chars: int = 2000
    chunk_size: int = 4096
    calibration: Calibration | None = None
    # The cheap-first tier (decontam.embed_search.TierIndex): a static model distilled from
    # the embedder proposes `propose_k` rows per item, the embedder re-scores them. Off, or
    # with an embedder that is not a curate.models.embed.Embedder, every row is embedded in full.
    tier: bool = True
    propose_k: int = DEFAULT_PROPOSE_K
    # The multilingual channel: rows in another language (lake tag, else script) than
    # `bench_lang` are also searched with USE-multilingual, and flagged where the channel's
    # pair score is >= `multi_threshold`. On by default: only those rows are embedded by it
    # (an English-only corpus costs a script check per distinct text).
    multilingual: bool = True
    multi_threshold: float = DEFAULT_MULTI_THRESHOLD
    multi_k: int = DEFAULT_MULTI_K
    bench_lang: str = "en"

    def __post_init__(self) -> None:
        if self.ngram_n < 1:
            raise DecontamError("ngram_n must be at least 1 (13 is the usual choice)")
        if self.top_k < 1:
            raise DecontamError("top_k must be at least 1")
        if self.lexical_k < 0:
            raise DecontamError("lexical_k must be at least 0 (0: no lexical candidates)")
        if not (-1.0 <= self.cascade_floor <= self.cascade_high <= 1.0001):
            raise DecontamError("need -1 <= cascade_floor <= cascade_high <= 1 (e.g. 0.0 and 0.90)")
        if self.cosine_threshold is not None and not -1.0 <= self.cosine_threshold <= 1.0:
            raise DecontamError("cosine_threshold must lie in [-1, 1]")
        if self.data_type is not None and self.data_type not in DATA_TYPES:
            raise DecontamError(f"unknown data type {self.data_type!r}; use one of {', '.join(DATA_TYPES)}")
        if self.attribution_tolerance is not None and not 0.0 <= self.attribution_tolerance <= 2.0:
            raise DecontamError("attribution_tolerance must lie in [0, 2] (or None to switch the rule off)")
        if self.index_type not in INDEX_TYPES:
            raise DecontamError(f"unknown index type {self.index_type!r}; use one of {', '.join(INDEX_TYPES)}")
        if self.propose_k < 1 or self.multi_k < 1:
            raise DecontamError("propose_k and multi_k must be at least 1")
        if not -1.0 <= self.multi_threshold <= 1.0:
            raise DecontamError("multi_threshold must lie in [-1, 1]")
        if not (self.use_ngram or self.use_embeddings):
            raise DecontamError("enable at least one of the n-gram and embedding stages")

    def effective_cosine(self, embed_model: str | None) -> float:
        if self.cosine_threshold is not None:
            return self.cosine_threshold
        cal = self.calibration
        if cal is not None and cal.cosine_cut is not None and (cal.embed_model in (None, embed_model)):
            return cal.cosine_cut
        return DEFAULT_COSINE_THRESHOLD


@dataclass
class FlaggedPair:
    """A benchmark item, a training row, and why they were judged the same."""

    benchmark: str
    test_id: str
    test_index: int
    train_id: str
    train_index: int
    decided_by: str  # ngram | embedding_high | verifier | embedding | multilingual | judge
    cosine: float | None = None
    ngram_shared: int | None = None
    ngram_examples: list[str] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    test_text: str = ""
    train_text: str = ""
    probability: float | None = None  # the verifier's, where it decided
    cosines: dict[str, float] | None = None  # per embedding channel (full, multi), where the verifier looked
    reason: str = ""  # the verifier's evidence: channels, overlap, what differs


@dataclass
class BenchmarkResult:
    name: str
    source: str
    data_type: str
    size: int
    contaminated_items: int
    counts: dict[str, int]
    flagged: list[FlaggedPair]
    cosine_threshold: float | None = None
    judge_calibrated: bool = False
    generic_items: list[str] = field(default_factory=list)
    verifier: dict[str, Any] | None = None  # model task, cut, band, strict cut

    @property
    def rate(self) -> float:
        return self.contaminated_items / self.size if self.size else 0.0


@dataclass
class CheckResult:
    run_id: str
    train_source: str
    train_rows: int
    benchmarks: list[BenchmarkResult]
    config: dict[str, Any]
    judge_model: str | None
    prompt_version: str
    timings_s: dict[str, float]
    judge_stats: dict[str, int] = field(default_factory=dict)

    def flagged_train_indices(self) -> set[int]:
        return {p.train_index for b in self.benchmarks for p in b.flagged}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for b, src in zip(out["benchmarks"], self.benchmarks):
            b["rate"] = src.rate
        return out


def _judge_says(verdict, cosine: float | None, calibration, judge_model, margin_cut,
                prob: float | None = None) -> bool | None:
    """The judge's decision on a pair, or None when it has none: no usable verdict, or neither
    a calibration that covers this judge nor a margin cut to read the verdict with.

    A pair the verifier scored (`prob`) is decided by the calibration's fusion of that
    probability and the margin when it has one (fitted on the verifier's band pairs);
    otherwise by its fusion of cosine and margin, else the margin cut. `cosine` None (a
    multilingual-channel pair: its score is the channel's probability, on no scale either
    fusion was fitted on): the margin cut alone."""
    if verdict is None or verdict.label == ERROR or verdict.margin is None:
        return None
    if prob is not None and calibration is not None:
        banded = calibration.band_says(prob, verdict.margin, judge_model)
        if banded is not None:
            return banded
    fused = (calibration.fused_says(cosine, verdict.margin, judge_model)
             if calibration is not None and cosine is not None else None)
    if fused is not None:
        return fused
    return verdict.margin >= margin_cut if margin_cut is not None else None


@dataclass(frozen=True)
class PairDecision:
    """What `decide` says about one (benchmark item, training text) candidate."""

    decided_by: str | None  # None: not flagged; else embedding_high | verifier | embedding | multilingual | judge
    target: int  # the item the text is flagged for (attribution may move it to another item)
    cosine: float  # the cosine to `target`
    counts: dict[str, int]  # report counters this candidate adds


def decide(
    item: int, cosine: float, channel: int, *, cut: float, multi_cut: float, high: float, floor: float,
    verifier: Any | None = None, judge_says: bool | None = None, closest: tuple[float, int] | None = None,
    attribution_tolerance: float | None = None, judged: bool = False,
) -> PairDecision:
    """The decision for one candidate: the pure core of `run_check`, after gathering (the
    neighbours, the verifier's `Decision`, the judge's reading `judge_says`) and before
    collecting flags per item.

    - channel 0 (the embedder) at or above `high`: flagged (`embedding_high`); below `floor`:
      never. Channel 1 (multilingual) has no high mark and its own cut `multi_cut`.
    - In between, the verifier's decision when there is one (the judge overrides it where it
      answered), else the cosine cut, with attribution: a text closer to another item (by more
      than `attribution_tolerance`; `closest` = (cosine, item)) is that item's.
    - `judged`: a judge is in the run (for the judge-calls-saved count).

    >>> decide(0, 0.95, 0, cut=0.68, multi_cut=0.56, high=0.9, floor=0.5).decided_by
    'embedding_high'
    >>> decide(0, 0.7, 0, cut=0.68, multi_cut=0.56, high=0.9, floor=0.5, closest=(0.8, 3),
    ...        attribution_tolerance=0.02).target
    3
    """
    counts: dict[str, int] = {}

    def bump(key: str, n: int = 1) -> None:
        counts[key] = counts.get(key, 0) + n

    c, high_ch = (cut, high) if channel == 0 else (multi_cut, np.inf)
    decided_by, target, s = None, item, cosine
    if s >= high_ch:
        bump("above_high")
        bump("judge_calls_saved", judged)
        decided_by = "embedding_high"
    elif s < floor:
        bump("below_floor")
        bump("judge_calls_saved", judged)
    elif verifier is not None:
        bump("band")
        bump("verifier_pairs")
        bump("verifier_uncertain", verifier.uncertain)
        bump("judge_calls_saved", judged and not verifier.uncertain)
        if judge_says is not None:
            bump("judge_overrides", judge_says != verifier.same)
            decided_by = "judge" if judge_says else None
        elif verifier.same:
            decided_by = "verifier"
    else:
        bump("band")
        embed_says = s >= c
        other = closest
        if (embed_says and other is not None and other[1] != item and attribution_tolerance is not None
                and other[0] - s > attribution_tolerance):
            embed_says = False
        else:
            other = None
        if judge_says is not None:
            bump("judge_overrides", judge_says != embed_says)
            decided_by = "judge" if judge_says else None
        elif other is not None:
            bump("closer_to_other_item")
            target, s = other[1], other[0]
            decided_by = "embedding_high" if s >= high_ch else ("embedding" if channel == 0 else "multilingual")
        elif embed_says:
            decided_by = "embedding" if channel == 0 else "multilingual"
    return PairDecision(decided_by, target, s, {k: int(v) for k, v in counts.items()})


def run_check(
    train: TrainData | str,
    benchmarks: Sequence[Benchmark | str],
    config: CheckConfig | None = None,
    *,
    embedder: Any | None = None,
    embedding_store: Any | None = None,
    judge: Judge | None = None,
    static_embedder: Any | None = None,
    multi_embedder: Any | None = None,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    model_cache: Any | None = None,
) -> CheckResult:
    """Check `benchmarks` for contamination in `train`; returns counts, rates and flagged pairs.

    `train` is a `TrainData` or a spec for `load_train`; benchmarks are `Benchmark`s or
    names/paths for `load_benchmark`. Without `judge`, the n-gram and embedding stages decide.
    `model_cache` keeps the benchmark side's vectors across runs (default: a
    `curate.models.embed.ModelCache` under `CURATE_CACHE_DIR`; False: none).
    """
    config = config or CheckConfig()
    say = progress or (lambda msg: logger.info("%s", msg))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = train if isinstance(train, TrainData) else load_train(train)
    benches = [b if isinstance(b, Benchmark) else load_benchmark(b) for b in benchmarks]
    if not benches:
        raise DecontamError("name at least one benchmark (--benchmark humaneval)")
    timings["load"] = time.perf_counter() - t0
    say(f"training side: {len(data)} texts from {data.source}; benchmarks: {', '.join(b.name for b in benches)}")

    ngram_hits: list[dict[int, list]] = [{} for _ in benches]
    if config.use_ngram:
        t = time.perf_counter()
        indexes = [NgramIndex(b.texts, n=config.ngram_n) for b in benches]
        for start in range(0, len(data), 50_000):
            chunk = data.texts[start : start + 50_000]
            for k, index in enumerate(indexes):
                for m in index.match(chunk, start=start):
                    ngram_hits[k].setdefault(m.test_index, []).append(m)
        timings["ngram"] = time.perf_counter() - t
        say(f"n-gram stage done in {timings['ngram']:.1f}s")

    neighbours = [None] * len(benches)
    bench_vecs: list[np.ndarray | None] = [None] * len(benches)
    index: TrainIndex | TierIndex | None = None
    embed_model = None
    uniq_of: dict[str, int] = {}
    groups: list[list[int]] = []
    for row, text in enumerate(data.texts):
        u = uniq_of.setdefault((text or "")[: config.max_chars], len(uniq_of))
        if u == len(groups):
            groups.append([])
        groups[u].append(row)
    uniq_texts = list(uniq_of)
    del uniq_of
    if config.use_embeddings and len(data):
        t = time.perf_counter()
        embedder = embedder or default_embedder()
        if model_cache is None:
            from curate.models.embed import ModelCache

            model_cache = ModelCache()
        bench_store = model_cache or embedding_store  # the benchmark side: the same texts in every run
        if model_cache and embedding_store is not None and getattr(embedding_store, "fallback", False) is None:
            embedding_store.fallback = model_cache  # the verifier embeds items and rows in one call
        embed_model = embedder.model_id
        # Chat logs repeat themselves ("hi" thousands of times): embed and index each
        # distinct text once, and expand a flagged neighbour to every row that carries it,
        # so that --write-clean drops all the copies and not just the one top-1 hit.
        static_embedder, multi_embedder = tier_embedders(config, embedder, static_embedder, multi_embedder)
        if static_embedder is not None:
            langs = [data.langs[rows[0]] for rows in groups] if data.langs is not None else None
            index = TierIndex.build(
                uniq_texts, embedder, static_embedder, cache_dir=config.cache_dir, index_type=config.index_type,
                max_chars=config.max_chars, store=embedding_store, propose_k=config.propose_k, multi=multi_embedder,
                langs=langs, bench_lang=config.bench_lang, multi_k=config.multi_k,
                generic_max_words=config.generic_max_words,
                progress=lambda done, total: say(f"embedding training side (static): {done}/{total}"),
            )
            index.query_store = bench_store
            if model_cache and getattr(index.store, "fallback", False) is None:
                index.store.fallback = model_cache
        else:
            index = TrainIndex.build(
                uniq_texts, embedder, cache_dir=config.cache_dir, chunk_size=config.chunk_size,
                index_type=config.index_type, max_chars=config.max_chars, store=embedding_store,
                progress=lambda done, total: say(f"embedding training side: {done}/{total}"),
            )
        timings["embed_index"] = time.perf_counter() - t
        t = time.perf_counter()
        for k, b in enumerate(benches):
            if isinstance(index, TierIndex):
                neighbours[k], bench_vecs[k] = index.search_texts(list(b.texts), k=config.top_k)
            else:
                bench_vecs[k] = embed_texts(list(b.texts), embedder, max_chars=config.max_chars, store=bench_store)
                neighbours[k] = index.search(bench_vecs[k], k=config.top_k)
        timings["embed_search"] = time.perf_counter() - t
        say(f"embedding stage done in {timings['embed_index'] + timings['embed_search']:.1f}s")
        if config.lexical_k and config.verifier:
            t = time.perf_counter()
            from decontam.ngram import LexicalIndex

            lexical = LexicalIndex.build(uniq_texts, max_chars=config.max_chars)
            for k, b in enumerate(benches):
                if neighbours[k] is not None:
                    neighbours[k] = _add_lexical(neighbours[k], lexical.search(list(b.texts), k=config.lexical_k),
                                                 bench_vecs[k], index)
            timings["lexical"] = time.perf_counter() - t
            say(f"lexical channel done in {timings['lexical']:.1f}s")

    cos_cut = config.effective_cosine(embed_model)
    high, floor = (config.cascade_high, config.cascade_floor) if config.cascade else (np.inf, -np.inf)

    closest = [
        (index.closest_items(neighbours[k], bench_vecs[k]) if isinstance(index, TierIndex)
         else _closest_item_cosines(neighbours[k], bench_vecs[k], index))
        if index is not None and neighbours[k] is not None and (config.attribution_tolerance is not None or config.verifier)
        else {}
        for k in range(len(benches))
    ]
    # The pair verifier on every candidate in the band: its probability decides by default.
    vdec: dict[tuple[int, int, int], Any] = {}
    generic: list[set[int]] = [set() for _ in benches]
    vmodel = None
    vcos: dict[tuple[int, int, int], dict[str, float]] = {}
    if config.verifier and index is not None:
        t = time.perf_counter()
        vdec, generic, vmodel, vcos = _verify_candidates(benches, neighbours, closest, uniq_texts, embedder, config, floor, high,
                                                         index=index, store=embedding_store)
        timings["verifier"] = time.perf_counter() - t
        say(f"verifier: {len(vdec)} pairs in {timings['verifier']:.1f}s")

    # Gather the judge's work over all benchmarks first, so it runs as one concurrent batch.
    # With the verifier on, only pairs in its uncertain band are judged.
    jobs: list[tuple[int, int, int, float]] = []  # (bench k, test i, train j, cosine)
    queued: set[tuple[int, int, int]] = set()
    # the (k, i, j, channel) candidates that asked for a verdict: a row both channels found is
    # judged once, but the verdict is read only by a channel that asked for it (a confident
    # verifier decision of channel 0 is not overridden because channel 1's pair was uncertain)
    wanted: set[tuple[int, int, int, int]] = set()
    for k, b in enumerate(benches):
        nb = neighbours[k]
        if nb is None or judge is None:
            continue
        for i in range(len(b)):
            for s, j, ch in zip(nb.scores[i], nb.indices[i], _channels(nb, i)):
                if j < 0:
                    continue
                if ch == 1 and _channel_scored(nb):
                    # the channel's probability decides its pairs: judged in its own uncertain band, not by
                    # the floor (a cosine) nor by channel 0's verifier decision kept under the same (item, row)
                    judged = XL_BAND[0] <= s < XL_BAND[1]
                else:
                    d = vdec.get((k, i, int(j)))
                    judged = floor <= s < (high if ch == 0 else np.inf) and (d is None or d.uncertain)
                if judged:
                    wanted.add((k, i, int(j), int(ch)))
                if judged and (k, i, int(j)) not in queued:  # a row both channels found: one verdict
                    queued.add((k, i, int(j)))
                    jobs.append((k, i, int(j), float(s)))
    verdicts: dict[tuple[int, int, int], Verdict] = {}
    judge_stats: dict[str, int] = {}
    if jobs and judge is not None:
        t = time.perf_counter()
        say(f"judge: {len(jobs)} pairs")
        pairs = [
            JudgePair(benches[k].texts[i], uniq_texts[j], config.data_type or benches[k].data_type)
            for k, i, j, _ in jobs
        ]
        for (k, i, j, _), v in zip(jobs, judge.judge_many(pairs)):
            verdicts[(k, i, j)] = v
        timings["judge"] = time.perf_counter() - t
        stats = getattr(judge, "stats", None)
        judge_stats = asdict(stats) if stats is not None else {}
        say(f"judge done in {timings['judge']:.1f}s")


    results = []
    judge_model = getattr(judge, "model_id", None) if judge is not None else None
    if judge_model and config.calibration is None:
        # the calibration that ships for this judge model (`curate serve-model`'s), if any:
        # `decontam check --judge` and the pipeline's judge need no calibration step
        from decontam.calibrate import shipped

        cal = shipped(judge_model)
        if cal is not None:
            config = replace(config, calibration=cal)
    for k, b in enumerate(benches):
        data_type = config.data_type or b.data_type
        margin_cut = (
            config.calibration.margin_cut(data_type, judge_model)
            if config.calibration is not None and judge_model
            else None
        )
        counts = {
            "ngram_pairs": 0, "ngram_items": 0, "candidates": 0, "above_high": 0, "below_floor": 0,
            "band": 0, "judge_calls": 0, "judge_cached": 0, "judge_errors": 0, "judge_true": 0,
            "judge_overrides": 0, "judge_calls_saved": 0,
            "flagged_ngram": 0, "flagged_embedding_high": 0, "flagged_embedding": 0, "flagged_judge": 0,
            "closer_to_other_item": 0, "flagged_multilingual": 0, "multilingual_candidates": 0,
            "closer_to_other_item": 0, "verifier_pairs": 0, "verifier_uncertain": 0, "flagged_verifier": 0,
            "verifier_attributed_elsewhere": 0, "generic_items": len(generic[k]),
        }
        flagged: dict[tuple[int, int], FlaggedPair] = {}
        for i, matches in ngram_hits[k].items():
            counts["ngram_items"] += 1
            for m in matches:
                counts["ngram_pairs"] += 1
                flagged[(i, m.train_index)] = FlaggedPair(
                    b.name, b.ids[i], i, data.ids[m.train_index], m.train_index, "ngram",
                    ngram_shared=m.n_shared, ngram_examples=list(m.examples),
                )
                counts["flagged_ngram"] += 1
        nb = neighbours[k]
        counted: set[tuple[int, int, int]] = set()
        if nb is not None:
            for i in range(len(b)):
                for s, j, ch in zip(nb.scores[i], nb.indices[i], _channels(nb, i)):
                    if j < 0:
                        continue
                    j, s = int(j), float(s)
                    counts["candidates"] += 1
                    counts["multilingual_candidates"] += ch == 1
                    verdict = verdicts.get((k, i, j)) if (k, i, j, int(ch)) in wanted else None
                    scored_ch1 = ch == 1 and _channel_scored(nb)  # s: the channel's probability, not a cosine
                    for row in groups[j]:
                        if (i, row) in flagged and not scored_ch1:
                            flagged[(i, row)].cosine = s
                    if verdict is not None and (k, i, j) not in counted:  # one call, counted once
                        counted.add((k, i, j))
                        counts["judge_cached" if verdict.cached else "judge_calls"] += 1
                        counts["judge_errors"] += verdict.label == ERROR
                        counts["judge_true"] += verdict.label == TRUE
                    # A channel-1 pair is decided by the channel's own score: the verifier's decision kept
                    # under the same (item, row) is channel 0's, where the row was also a candidate, and read
                    # here it cleared every translation that MiniLM happened to rank in the item's top k.
                    vd = None if scored_ch1 else vdec.get((k, i, j))
                    call = decide(
                        i, s, int(ch), cut=cos_cut, multi_cut=config.multi_threshold, high=high, floor=floor,
                        verifier=vd,
                        judge_says=_judge_says(verdict, None if scored_ch1 else s, config.calibration, judge_model,
                                               margin_cut, prob=None if vd is None else vd.prob),
                        # a channel-1 pair score has attribution built in (request_gap)
                        closest=None if scored_ch1 else closest[k].get((int(ch), j)),
                        attribution_tolerance=config.attribution_tolerance,
                        judged=judge is not None,
                    )
                    for key, n in call.counts.items():
                        counts[key] += n
                    decided_by, target, s = call.decided_by, call.target, call.cosine
                    if decided_by is None:
                        continue
                    dd = vd
                    prob = None if dd is None else round(dd.prob, 4)
                    if decided_by == "multilingual" and scored_ch1:
                        # the channel's score is its pair probability, not a cosine: report it as one
                        s, prob = None, round(float(call.cosine), 4)
                    for row in groups[j]:
                        existing = flagged.get((target, row))
                        if existing is not None:
                            existing.verdict = existing.verdict or (verdict.to_dict() if verdict else None)
                            existing.cosine = existing.cosine if existing.cosine is not None else s
                            continue
                        counts[f"flagged_{decided_by}"] += 1
                        flagged[(target, row)] = FlaggedPair(
                            b.name, b.ids[target], target, data.ids[row], row, decided_by, cosine=s,
                            verdict=verdict.to_dict() if verdict is not None else None,
                            probability=prob, reason="" if dd is None else dd.reason,
                            cosines=vcos.get((k, i, j)),
                        )
        # Attribution is the verifier's call: a row it flags for several items belongs to the
        # item it is most sure of (ties: the higher cosine, then the lower item index).
        # A row that a stronger stage (a shared n-gram, a near-identical cosine, the judge) flagged
        # for an item belongs to that item.
        best: dict[int, tuple] = {}
        for (ti, row), p in flagged.items():
            score = p.cosine if p.cosine is not None else (p.probability or 0.0)  # a multilingual pair: its probability
            key = (2.0, score, -ti) if p.decided_by != "verifier" else (p.probability or 0.0, p.cosine or 0.0, -ti)
            if row not in best or key > best[row]:
                best[row] = key
        for (ti, row), p in list(flagged.items()):
            if p.decided_by == "verifier" and (p.probability or 0.0, p.cosine or 0.0, -ti) != best[row]:
                del flagged[(ti, row)]
                counts["verifier_attributed_elsewhere"] += 1
                counts["flagged_verifier"] -= 1
        pairs = sorted(flagged.values(), key=lambda p: (p.test_index, -(p.cosine if p.cosine is not None else p.probability or 0),
                                                        p.train_index))
        for p in pairs:
            p.test_text = b.texts[p.test_index]
            p.train_text = data.texts[p.train_index]
        contaminated = len({p.test_index for p in pairs})
        results.append(
            BenchmarkResult(
                b.name, b.source, data_type, len(b), contaminated, counts, pairs,
                cosine_threshold=cos_cut if config.use_embeddings else None,
                judge_calibrated=margin_cut is not None or (
                    config.calibration is not None and judge_model is not None
                    and config.calibration.band_says(0.5, 0.0, judge_model) is not None),
                generic_items=[b.ids[i] for i in sorted(generic[k])],
                verifier=None if vmodel is None else {
                    "task": vmodel.task, "threshold": vmodel.threshold, "band": list(vmodel.band),
                    "strict_threshold": vmodel.strict_threshold},
            )
        )
        say(f"{b.name}: {contaminated}/{len(b)} items flagged ({contaminated / max(len(b), 1):.1%})")

    timings["total"] = time.perf_counter() - t0
    cfg = asdict(config)
    cfg["calibration"] = None if config.calibration is None else asdict(config.calibration)
    cfg["cache_dir"] = None if config.cache_dir is None else str(config.cache_dir)
    return CheckResult(
        run_id=run_id or _new_run_id(),
        train_source=data.source,
        train_rows=len(data),
        benchmarks=results,
        config=cfg,
        judge_model=judge_model,
        prompt_version=PROMPT_VERSION,
        timings_s={k: round(v, 3) for k, v in timings.items()},
        judge_stats=judge_stats,
    )


def _verify_candidates(benches, neighbours, closest, uniq_texts, embedder, config, floor, high, *, index=None, store=None):
    """Verifier decisions for every band candidate: {(bench, item, text): Decision}, the
    generic items per benchmark, and the model."""
    from curate.models.verify import TextCache, Verifier, code_score, decide, explain

    # The tier's store: what it embedded already (the benchmark side, with the multilingual channel) is read back.
    verifier = Verifier("decontam", full_embedder=embedder, store=getattr(index, "store", None) or store)
    model = verifier.model
    # per-pair features the model does not read are not computed (swap_words: a third of the per-pair time)
    skip = {"swap_words"} - set(model.features)
    out: dict[tuple[int, int, int], Any] = {}
    cosines: dict[tuple[int, int, int], dict[str, float]] = {}
    generic: list[set[int]] = []
    for k, b in enumerate(benches):
        nb = neighbours[k]
        gen: set[int] = set()
        keys, a, t, cos, multi, gaps = [], [], [], [], [], []
        seen: set[tuple[int, int, int]] = set()
        if nb is not None:
            for i in range(len(b)):
                text = b.texts[i]
                row_s = [float(x) for x, j, ch in zip(nb.scores[i], nb.indices[i], _channels(nb, i)) if j >= 0 and ch == 0]
                # generic: a short non-code request, or one that many training texts sit close to
                # (its nearest GENERIC_NEIGHBOURS, however many candidates the search hands over)
                row_s = sorted(row_s, reverse=True)[:GENERIC_NEIGHBOURS]
                if (len(text.split()) <= config.generic_max_words and code_score(text) == 0) or (
                        len(row_s) >= 3 and min(row_s) >= 0.8):
                    gen.add(i)
                for s, j, ch in zip(nb.scores[i], nb.indices[i], _channels(nb, i)):
                    # channel 0: the embedder's cosine; channel 1: the multilingual one (no high mark)
                    if j < 0 or not floor <= s < (high if ch == 0 else np.inf) or (k, i, int(j)) in seen:
                        continue
                    if ch == 1 and _channel_scored(nb):  # the channel's pair score decides (CrossLingualScorer)
                        continue
                    j, s = int(j), float(s)
                    seen.add((k, i, j))
                    other = closest[k].get((int(ch), j))
                    keys.append((k, i, j))
                    a.append(text[: config.max_chars])
                    t.append(uniq_texts[j][: config.max_chars])
                    cos.append(s if ch == 0 else float("nan"))
                    multi.append(float("nan") if ch == 0 else s)
                    own = s if ch == 0 else None
                    gaps.append(max(other[0] - own, 0.0) if other is not None and own is not None and other[1] != i else 0.0)
        generic.append(gen)
        if not keys:
            continue
        cache = TextCache()  # each distinct text read once, for the features and the reasons
        probs, f = verifier.score(a, t, cos_full=cos, cos_multi=multi, gap_other=gaps, cache=cache, skip=skip)
        for n, (key, p) in enumerate(zip(keys, probs)):
            d = decide(float(p), model, generic=key[1] in gen)
            reason = explain({name: float(col[n]) for name, col in f.items()}, a[n], t[n], cache=cache)
            out[key] = type(d)(d.same, d.prob, d.uncertain, d.variant, reason)
            cosines[key] = {"full": round(float(f["cos_full"][n]), 4), "multi": round(float(f["cos_multi"][n]), 4)}
    return out, generic, model, cosines


def _add_lexical(nb: Neighbours, lex: np.ndarray, bench_vecs: np.ndarray, index) -> Neighbours:
    """`nb` with the lexical channel's rows `lex` (items x k) appended as channel-0 candidates,
    scored by the embedder's cosine like the others; a row already among an item's channel-0
    candidates is not added twice (-1)."""
    lex = lex.copy()
    for i in range(len(lex)):
        have = {int(j) for j, ch in zip(nb.indices[i], _channels(nb, i)) if j >= 0 and ch == 0}
        lex[i] = [j if j >= 0 and int(j) not in have else -1 for j in lex[i]]
    rows = sorted({int(j) for j in lex.ravel() if j >= 0})
    scores = np.full(lex.shape, -2.0, np.float32)
    if rows:
        sims = index.vectors(rows) @ bench_vecs.T  # rows x items
        pos = {j: r for r, j in enumerate(rows)}
        for i, c in zip(*np.nonzero(lex >= 0)):
            scores[i, c] = sims[pos[int(lex[i, c])], i]
    extra = {"scores": np.concatenate([nb.scores, scores], axis=1), "indices": np.concatenate([nb.indices, lex], axis=1)}
    if getattr(nb, "channels", None) is not None:  # TierNeighbours: channel 0, no static or multilingual score
        nan = np.full(lex.shape, np.nan, np.float32)
        extra["channels"] = np.concatenate([nb.channels, np.zeros(lex.shape, np.uint8)], axis=1)
        extra["static"] = np.concatenate([nb.static, nan], axis=1) if nb.static is not None else None
        extra["multi"] = np.concatenate([nb.multi, nan], axis=1) if nb.multi is not None else None
    return replace(nb, **extra)


def _closest_item_cosines(nb: Neighbours, bench_vecs: np.ndarray, index: TrainIndex) -> dict[int, tuple[float, int]]:
    """For each candidate training text, the benchmark item it is closest to: (cosine, item)."""
    rows = sorted({int(j) for j in nb.indices.ravel() if j >= 0})
    if not rows:
        return {}
    sims = index.vectors(rows) @ bench_vecs.T
    best = sims.argmax(axis=1)
    return {(0, j): (float(sims[r, best[r]]), int(best[r])) for r, j in enumerate(rows)}


def _channel_scored(nb: Neighbours) -> bool:
    """True when channel 1's scores are the multilingual channel's pair probability (TierIndex)."""
    return getattr(nb, "multi", None) is not None


def _channels(nb: Neighbours, i: int):
    """The channel of each of item i's neighbours: 0 (the embedder), 1 (multilingual)."""
    ch = getattr(nb, "channels", None)
    return ch[i] if ch is not None else np.zeros(len(nb.indices[i]), np.uint8)


def _new_run_id() -> str:
    try:
        from curate.core.lake import new_run_id

        return new_run_id()
    except ImportError:  # pragma: no cover
        return time.strftime("%Y%m%dT%H%M%S")
