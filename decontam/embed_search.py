"""Stage 2: nearest training neighbours of each benchmark item, by embedding cosine.

The training side goes into a faiss inner-product index (embeddings are L2-normalised,
so inner product is cosine). The index is built in chunks, checkpointed while it grows
(an interrupted build resumes), and persisted under a key of (embedding model, training
texts), so a rerun or a second benchmark reuses it. `index_type="fp16"` or `"sq8"`
halves or quarters the memory per row for training sets of many millions.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xxhash

from curate.core.atomic import atomic_path, write_text_atomic
from curate.models.embed import script_language
from curate.models.verify import latin_language
from decontam.errors import DecontamError

logger = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "fp16", "sq8")


class Embedder(Protocol):
    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def default_embedder() -> Embedder:
    """The project's offline default embedder (`curate.models.embed.Embedder`)."""
    try:
        from curate.models.embed import Embedder as CurateEmbedder
    except ImportError as exc:
        raise DecontamError("the embedding stage needs curate.models.embed (pip install -e .)") from exc
    return CurateEmbedder()


def tier_embedders(config: Any, embedder: Any, static: Any | None = None, multi: Any | None = None) -> tuple[Any, Any]:
    """The static and multilingual embedders of the cheap-first tier, or (None, None) when it is off.

    The tier is on for a `curate.models.embed.Embedder` (its static model is distilled from the same
    model); another embedder (a test fake, an int8 model) keeps the full path unless a static
    embedder is given.
    """
    if not getattr(config, "tier", False):
        return None, None
    if static is None:
        try:
            from curate.models.embed import Embedder as CurateEmbedder
            from curate.models.embed import StaticEmbedder
        except ImportError:  # pragma: no cover
            return None, None
        if not isinstance(embedder, CurateEmbedder) or embedder.quantize:
            return None, None
        static = StaticEmbedder(embedder.model_name)
    if multi is None and getattr(config, "multilingual", False):
        from curate.models.embed import MultilingualEmbedder

        multi = MultilingualEmbedder()
    return static, (multi if getattr(config, "multilingual", False) else None)


def embed_texts(
    texts: Sequence[str], embedder: Embedder, *, max_chars: int = 2000, store: Any | None = None
) -> np.ndarray:
    """Normalised float32 embeddings; texts are cut to `max_chars` first.

    The cut matters: a 3 MB text would otherwise be tokenized in full before the model
    truncates it. `store` (a `curate.models.embed.EmbeddingStore`) reuses earlier embeddings.
    """
    cut = [(t or "")[:max_chars] for t in texts]
    if not cut:
        return np.zeros((0, 0), dtype=np.float32)
    vecs = store.embed(cut, embedder) if store is not None else embedder.embed(cut)
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vecs / norms


def fingerprint(texts: Iterable[str], model_id: str, max_chars: int) -> str:
    """A key for the training side as the index sees it."""
    h = xxhash.xxh3_128()
    h.update(f"{model_id}\x00{max_chars}\x00".encode())
    n = 0
    for t in texts:
        h.update((t or "")[:max_chars].encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
        n += 1
    return f"{h.hexdigest()[:24]}-{n}"


@dataclass
class Neighbours:
    """Top-k neighbours: `scores[i, j]` is the cosine of test item i and training row `indices[i, j]`."""

    scores: np.ndarray
    indices: np.ndarray


class TrainIndex:
    """A faiss index over the training side's embeddings.

    >>> index = TrainIndex.build(train_texts, embedder, cache_dir=".cache/decontam")  # doctest: +SKIP
    >>> nb = index.search(embed_texts(test_texts, embedder), k=1)                    # doctest: +SKIP
    """

    def __init__(self, index: Any, model_id: str, key: str):
        self.index = index
        self.model_id = model_id
        self.key = key

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        embedder: Embedder,
        *,
        cache_dir: str | Path | None = None,
        chunk_size: int = 4096,
        checkpoint_every: int = 65_536,
        index_type: str = "flat",
        max_chars: int = 2000,
        store: Any | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> TrainIndex:
        if index_type not in INDEX_TYPES:
            raise DecontamError(f"unknown index type {index_type!r}; use one of {', '.join(INDEX_TYPES)}")
        faiss = _faiss()
        key = f"{fingerprint(texts, embedder.model_id, max_chars)}-{index_type}"
        final = partial = meta_path = None
        if cache_dir is not None:
            root = Path(cache_dir)
            root.mkdir(parents=True, exist_ok=True)
            final, partial, meta_path = root / f"{key}.faiss", root / f"{key}.partial.faiss", root / f"{key}.partial.json"
            if final.exists():
                logger.info("reusing embedding index %s", final)
                return cls(faiss.read_index(str(final)), embedder.model_id, key)

        index, done = None, 0
        if partial is not None and partial.exists() and meta_path.exists():
            done = json.loads(meta_path.read_text())["rows_done"]
            index = faiss.read_index(str(partial))
            logger.info("resuming embedding index at row %d of %d", done, len(texts))
        since_checkpoint = 0
        for start in range(done, len(texts), chunk_size):
            vecs = embed_texts(texts[start : start + chunk_size], embedder, max_chars=max_chars, store=store)
            if index is None:
                index = _new_index(faiss, vecs.shape[1], index_type, vecs)
            index.add(vecs)
            since_checkpoint += len(vecs)
            if progress is not None:
                progress(start + len(vecs), len(texts))
            if partial is not None and since_checkpoint >= checkpoint_every and start + chunk_size < len(texts):
                _atomic_write_index(faiss, index, partial)
                _atomic_write_text(meta_path, json.dumps({"rows_done": start + len(vecs)}))
                since_checkpoint = 0
        if index is None:  # an empty training side
            dim = embed_texts(["x"], embedder, max_chars=max_chars).shape[1]
            index = _new_index(faiss, dim, "flat", None)
        if final is not None:
            _atomic_write_index(faiss, index, final)
            for p in (partial, meta_path):
                if p.exists():
                    p.unlink()
        return cls(index, embedder.model_id, key)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored (for fp16/sq8: decoded) vectors of rows `ids`, without embedding again."""
        if not len(ids):
            return np.zeros((0, self.index.d), np.float32)
        return np.stack([self.index.reconstruct(int(i)) for i in ids]).astype(np.float32, copy=False)

    def search(self, queries: np.ndarray, k: int = 1) -> Neighbours:
        k = max(1, min(k, self.ntotal)) if self.ntotal else 0
        if k == 0 or len(queries) == 0:
            return Neighbours(np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
        scores, idx = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return Neighbours(scores, idx)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise DecontamError("the embedding stage needs faiss: pip install faiss-cpu") from exc
    return faiss


def _new_index(faiss: Any, dim: int, index_type: str, sample: np.ndarray | None) -> Any:
    if index_type == "flat":
        return faiss.IndexFlatIP(dim)
    qtype = faiss.ScalarQuantizer.QT_fp16 if index_type == "fp16" else faiss.ScalarQuantizer.QT_8bit
    index = faiss.IndexScalarQuantizer(dim, qtype, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        if sample is None or len(sample) == 0:
            raise DecontamError("an sq8 index needs training rows to fit its quantizer")
        index.train(sample)
    return index


def _atomic_write_index(faiss: Any, index: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def _atomic_write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


# ---- the cheap-first tier ------------------------------------------------------------------

# Static candidates per benchmark item that the full model re-scores. Measured on the
# search protocol (benchmarks/eval_decontam_quality.py `tier`; each item's top-1 among the
# ~1,400 published rephrasings, similar code and same-subject questions, a hard case for a
# static model): of the searches whose full-model top-1 is >= the cut, the tier finds that
# same top-1 in 91% (K=64), 97% (128), 99.4% (256) on calibration items, and takes the same
# decision on 99.0%, 99.4%, 99.8% of the scored searches. 128 bounds the re-scoring to
# 128 texts per item (21k for HumanEval) however large the training side is.
DEFAULT_PROPOSE_K = 128
# Multilingual-channel neighbours per item (the channel sees only rows in another language).
# Its top 5 hold the item's own Chinese rephrasing in 100% of the calibration searches and
# 99.7% of the scored ones (benchmarks/eval_decontam_quality.py xl); its pair score decides.
DEFAULT_MULTI_K = 5
def other_language_rows(langs: Sequence[str | None] | None, texts: Sequence[str], bench_lang: str = "en") -> np.ndarray:
    """Rows whose language differs from the benchmark's: the lake tag where given, else
    `row_language` (the script; a Latin-script row's Spanish, German, French, Italian or
    Portuguese stop words; for another Latin-script row that does not read as English, the lake's
    own language tagger), so an untagged file's Spanish, Dutch or Polish translation of an item
    reaches the multilingual channel too."""
    out = []
    for j, t in enumerate(texts):
        lang = langs[j] if langs is not None else None
        if lang in (None, "", "unknown"):
            lang = row_language(t or "")
        if lang is not None and lang.split("-")[0].lower() != bench_lang:
            out.append(j)
    return np.asarray(out, dtype=np.int64)


# English function words: a Latin-script row with hardly any reads as another language (or code)
_EN_FUNCTION = frozenset("""a an the of to in on at by for with from and or but not no is are was were be been
being am do does did have has had can could will would should may might must this that these those it its i you he she
we they me my your our their what which who whom whose how why when where if then than there here as so all any some
each every about into over under after before between through during up down out off again also only just very
write give make find explain""".split())
_LATIN_WORD = re.compile(r"[^\W\d_]{2,}")
_PUNCT = "\"'()[]{}<>.,;:!?¿¡«»“”‘’*-"
_CODE_LINE = re.compile(r"^\s*(?:def|class|import|from|return|for|while|if|elif|else|#include|public|private|function|"
                        r"const|let|var|int|void|fn|func|package|using|SELECT|select)\b|[;{}]\s*$", re.M)


def _reads_as_other_latin(text: str) -> bool:
    """A cheap test, before any detector runs: a Latin-script text of a few words, fewer than 1
    in 5 of them English function words, and not code. Measured: 27 of 4,862 English testbed
    texts pass it (MMLU answer stems, "Statement 1 | ...", all then tagged English but one
    Spanish-English row); of 235 translated requests in 13 languages, every one is found not
    English (script and stop words alone missed 9: de, nl, pl, tr; `/work/notes/xl4/prefilter.py`)."""
    sample = text[:400]
    # str.split first: most rows are English and settle here at C speed
    words = [w.strip(_PUNCT) for w in sample.casefold().split()]
    if len(words) < 4 or sum(w in _EN_FUNCTION for w in words) >= len(words) / 5:
        return False
    words = _LATIN_WORD.findall(sample)
    return len(words) >= 4 and sum(w.casefold() in _EN_FUNCTION for w in words) < len(words) / 5 \
        and not _CODE_LINE.search(sample)


_TAGGER: Any = None


def row_language(text: str) -> str | None:
    """The language of an untagged row, enough to tell whether it is the benchmark's: 'xx' for
    a non-Latin script (`script_language`), a Latin-script row's stop words (es, de, fr, it, pt:
    `latin_language`), else for a row that does not read as English (`_reads_as_other_latin`:
    Dutch, Polish, Turkish, Swedish, Vietnamese...) the ISO code from the lake's own language
    tagger (`curate.tag.language.LanguageTagger`, lingua, loaded on first need), else None
    (English, or too little text to tell).

    >>> row_language("Escribe una función que devuelva el factorial de n."), row_language("Sort a list.")
    ('es', None)
    """
    lang = script_language(text) or latin_language(text)
    if lang is not None or not _reads_as_other_latin(text):
        return lang
    global _TAGGER
    if _TAGGER is None:
        from curate.tag.language import LanguageConfig, LanguageTagger

        # lingua's fast mode (trigrams): its models load per language as needed (0.5 CPU s for 39
        # English testbed texts); the lake's default, high accuracy below 120 characters, loaded
        # every language's models for them: 10 CPU s
        _TAGGER = LanguageTagger(LanguageConfig(low_accuracy_min_chars=0))
    found = _TAGGER.detect(text)
    # its best guess when it is at least even: the fast mode gives 1.0 to each of the 9 translated
    # requests that get here in the measurement above, .88 to a short Indonesian one; a row it
    # names wrongly (a list of Greek letter names: Swedish) costs its USE embedding, not a flag
    return found.code if found.confidence >= 0.5 else None


# ---- the multilingual channel's pair score ---------------------------------------------------

# A pair model: a weight per feature name of `XL_COLUMNS` and "bias" (or, as before, a sequence of
# weights of the first columns, then the bias)
XLModel = Mapping[str, float] | Sequence[float]
# A number in digits with its separators, as `item_numbers` and `row_numbers` read it (`num_miss`)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_EN_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_EU_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
# "1 000" (a thin or no-break space: French, Russian, Swedish...; NFKC makes it a plain space)
_SPACED_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?: \d{3})+(?![\d.,])")


def _value(digits: str) -> str:
    return format(float(digits), ".12g")


def item_numbers(text: str) -> set[str]:
    """The values of a benchmark item's numbers in digits, read as English writes them: "1,000"
    is 1000, "1.50" is 1.5, "1,2,3" are 1, 2 and 3; full-width and other Unicode digits as values
    (NFKC). The values a translation must keep (`num_miss`).

    >>> sorted(item_numbers("Pay $15,000 or $1.50 for items 1,2,3 in Z_８"))
    ['1', '1.5', '15000', '2', '3', '8']
    """
    out: set[str] = set()
    for m in _NUMBER.finditer(unicodedata.normalize("NFKC", text or "")):
        s = m.group(0)
        if _EN_THOUSANDS.fullmatch(s):
            out.add(_value(s.replace(",", "")))
        elif "," not in s and s.count(".") == 1:
            out.add(_value(s))
        else:  # a list ("1,2,3") or version-like "1.2.3": each part
            out.update(_value(x) for x in re.split("[.,]", s))
    return out


def row_numbers(text: str) -> set[str]:
    """Every value a training row's numbers can be read as, in any language's convention: "1.000"
    and "1 000" are 1000 (and 1), "3,5" is 3.5 (and 3 and 5), "1,000" 1000, full-width "１２" 12.
    Generous on purpose: `num_miss` asks whether an item's number is missing, and a faithful
    translation into German or French writes "1.000" or "3,5" (compared as written, "1,000" and
    "1.000" differed). `curate.models.verify.numbers` reads "1.000" as 1.0 only (English rows).

    >>> sorted(row_numbers("Kosten: 1.000 Euro, Zinsen 3,5 %, １２ Monate, 2 000 km"))
    ['0', '1', '1000', '12', '2', '2000', '3', '3.5', '5']
    """
    t = unicodedata.normalize("NFKC", text or "")
    out: set[str] = set()
    for m in _SPACED_THOUSANDS.finditer(t):
        out.add(_value(m.group(0).replace(" ", "")))
    for m in _NUMBER.finditer(t):
        s = m.group(0)
        parts = re.split("[.,]", s)
        out.update(_value(x) for x in parts)
        if len(parts) == 1:
            continue
        if _EN_THOUSANDS.fullmatch(s):
            out.add(_value(s.replace(",", "")))
        if _EU_THOUSANDS.fullmatch(s):
            out.add(_value(s.replace(".", "").replace(",", ".")))
        if len(parts) == 2:  # one separator: a decimal point or comma
            out.add(_value(f"{parts[0]}.{parts[1]}"))
    return out


# A code item's function names that are identifiers, not words (`fizz_buzz`, `sortArray`: a
# translation keeps them; `median` or `digits` would match plain prose): `name_match`
_DEF_NAME = re.compile(r"(?:^|\n)[ \t]*(?:async\s+)?def\s+([A-Za-z_]\w*_\w+|[A-Za-z_]*[a-z][A-Z]\w*)\s*\(")
_SEGMENT = re.compile(r"(?<=[.?!;:\u3002\uff1f\uff01\uff1b\uff1a])\s*|\n+")
# A trailing answer option line of a multiple-choice item: "A. ...", "(b) ...", "C) ...", "Ｄ．...".
_OPTION = re.compile(r"^\(?([A-Ha-h])\s*[.)\uff0e\uff09:\uff1a]\s*(\S.*)$")
# Features of a cross-lingual pair (benchmark item, training row), all from USE-multilingual
# except `num_miss`: `cos` of the whole texts; `request`: how well the item's last sentence or
# line (its request: "By what means did the United States take possession of the Oregon
# Territory?") is matched by some sentence of the row; `request_gap`: how much better another
# item's request is matched by the row. Whole-text cosine cannot tell apart two questions on one
# quoted passage (201 of 204 MMLU US-history items share theirs): `request` can.
# Two features that do not depend on the benchmark's other items, since a row on an item's topic
# in a small, diverse benchmark (MT-bench's 80 items) has no sibling item to lose against and
# `request_gap` alone credits it: `num_miss`, the share of the item's numbers (digits, which a
# translation keeps) missing from the row ("f(x) = 4x^3 - 9x - 14, find f(2)" against a Chinese
# question on 4x - 5 in Z_8[x]); `row_cover`, the mean over the row's sentences of their best
# match among the item's sentences (a row that adds a task of its own covers less).
XL_FEATURES = ("cos", "request", "request_gap", "num_miss", "row_cover")
# Every feature the scorer computes, in the column order of `CrossLingualScorer.features`; each
# model reads its features by name (a weight per name, then "bias").
XL_COLUMNS = ("cos", "request", "request_gap", "options", "options_gap", "num_miss", "row_cover", "name_match",
              "symbols")
# The plain model: logistic regression on the USE top-5 candidates of the search protocol's
# calibration searches (`benchmarks/eval_decontam_quality.py xl`): Chinese MMLU sociology and US
# history rows past 100 (410 searches) and every MT-bench item searched among translations and
# same-topic, different-task look-alikes of 28 MT-bench items that the e2e chat log does not use
# (benchmarks/data/mtbench_xl_calibration.jsonl, 12 languages; 108 searches); the cut is the
# lowest with calibration precision >= .95, moved onto XL_CUT. Calibration P/R .95/.87. Scored
# (first 100 items), P/R: sociology .99/.91, US history .90/.84, abstract algebra .84/.85 (refit
# when `num_miss` began comparing numbers as values: .91/.84 on US history before)
# (before num_miss, row_cover and the MT-bench rows: .97/.92, .89/.84, .81/.88).
XL_WEIGHTS = {"cos": 3.8402, "request": 7.9664, "request_gap": -12.7559, "num_miss": -2.4593,
              "row_cover": 4.5005, "bias": -12.0288}
XL_CUT = 0.4433
# The channel's uncertain band: with a judge served, its pairs with a probability in [lo, hi) are
# judged (the verifier's band is for channel 0). Fitted by `eval_decontam_quality.py xl` on the
# calibration candidates of all three models, as benchmarks/fit_verifier.py fits the verifier's:
# above hi precision stays >= .98, below lo the share of negatives stays >= .98. Below the cut
# it stays >= .98 everywhere: a judge may clear a flag of the channel, not add one.
XL_BAND = (0.4433, 0.9276)
# A multiple-choice item (stem, then lettered option lines) is matched on its options too:
# `options` = the mean over the item's distinctive options of their best match among the row's
# sentences and lines, `options_gap` = how much better another item's options are matched. An
# option that another item of the benchmark also has ("True, True", "All of the above", "4")
# is boilerplate and not counted (as shared n-grams in the n-gram stage); an item left with
# fewer than two distinctive options is scored by the plain model above. The request is then
# the stem's last sentence. Fitted by `eval_decontam_quality.py xl` on the calibration items of
# the choices protocol (items as `decontam.benchmarks`' mmlu_choices renders them, rows: the
# testbed's Chinese translations with their options; 396 searches of items with distinctive
# options), over cos, request, options and options_gap (request_gap: weight 0, options_gap
# does its job); the bias is shifted so that this model's lowest cut with calibration precision
# >= .95 falls on XL_CUT (one threshold in CheckConfig for both). Scored (first 100 items),
# P/R: sociology .96/.99, US history .95/.98, abstract algebra .78/.83 (16 of its 100 items
# have distinctive options; "Statement 1 | ..." items share theirs).
XL_OPTION_FEATURES = ("cos", "request", "options", "options_gap")
XL_OPTION_WEIGHTS = {"cos": 10.6252, "request": 15.9592, "options": 17.7563, "options_gap": -13.6689, "bias": -24.666}
# A code item (a function with a docstring, as HumanEval's) is searched and matched by its task in
# words, `code_request`: the channel's query is the docstring's prose, not the code, and `request`
# is that prose matched by the row's best sentence or by the row as a whole; `row_cover` matches
# the row's sentences with the prose's; `name_match`: the row names one of the item's functions
# (an identifier such as `fizz_buzz`, which a translation keeps). A third model over
# XL_CODE_FEATURES decides its pairs, fitted by `eval_decontam_quality.py xl` (code protocol) on
# hand-written translations of HumanEval items 100-163 (benchmarks/data/
# humaneval_translations_calibration.jsonl, 64 rows in es/de/fr/zh/it/pt/ru/ja) among 31
# other-language coding requests that are no HumanEval item, 24 same-topic, different-task
# look-alikes of items 100-163 (benchmarks/data/humaneval_xl_lookalikes_calibration.jsonl), 36
# generic how-to questions (benchmarks/data/code_generic_questions_calibration.jsonl), the MT-bench
# look-alikes and the Chinese MMLU rows past 100: every item searched (an item with a translation
# with it present and removed), 228 searches; bias shifted so that its lowest cut with calibration
# precision >= .95, generic items under XL_GENERIC_SHIFT, is XL_CUT. Scored on
# tests/data/xl_code_eval.jsonl (41 translations of HumanEval 1-99 in 9 languages, 19 other
# requests; never fitted on): P/R .971/.829 (1.000/.707 before the generic rule: the calibration's
# generic items held the cut up; .970/.780 with the rule before a row keeping the task's symbols was
# let out of it). Without the look-alikes among its negatives, the model flagged 4
# of the 24 (fitted on the other half, 0 of 12 in each half).
XL_CODE_FEATURES = XL_FEATURES + ("name_match",)
XL_CODE_WEIGHTS = {"cos": 9.6937, "request": 5.7728, "request_gap": -16.5683, "num_miss": -0.3124,
                   "row_cover": -1.2764, "name_match": 1.4696, "bias": -10.9115}

# Generic code items: a code item whose task in words (`code_request`) has at most
# `CheckConfig.generic_max_words` words (DEFAULT_GENERIC_MAX_WORDS; the verifier's generic items use
# the same setting: "Return n-th Fibonacci number.", HumanEval/22's "Filter given list of any python
# values only for integers") is what a generic how-to question in another language resembles ("Как
# отсортировать список в Python?" scored p .69 for HumanEval/22: USE tells "sort" from "filter" little,
# and no other item is closer). Such an item's pair is flagged only at the channel's high mark
# (XL_BAND[1], where calibration precision stays >= .98): its logit is lowered by XL_GENERIC_SHIFT,
# unless the row keeps what a translation keeps and a how-to question lacks: the item's function name
# (`name_match`) or all its task's symbols (`symbols`: the parameters its task in words names, where
# they are symbols, not words: the "b" of HumanEval/13's "Return a greatest common divisor of two
# integers a and b", kept by "el máximo común divisor de dos enteros a y b"; `task_symbols`). The
# code model's cut is chosen with the rule applied.
DEFAULT_GENERIC_MAX_WORDS = 12
# A channel candidate's near copies (`near_copy_key`) are scored with it, at most this many (the first
# by position): a chat log's thousands of "hi 1", "hi 2" do not each cost every item a pair
MAX_NEAR_COPIES = 64
XL_GENERIC_SHIFT = float(np.log(XL_BAND[1] / (1 - XL_BAND[1])) - np.log(XL_CUT / (1 - XL_CUT)))
# English function words of one or two letters: a parameter spelled like one ("a") is no symbol the
# task names ("Return a greatest ...")
_SHORT_WORDS = frozenset("a i an as at be by do if in is it me my no of on or so to up us we".split())
_PARAMS = re.compile(r"(?:^|\n)[ \t]*(?:async\s+)?def\s+\w+\s*\(([^)]*)\)")


_FENCED = re.compile(r"```.*?(?:```|$)", re.S)
_DOCSTRING = re.compile(r'(?:^|\n)[ \t]*(?:async\s+)?(?:def|class)\s[^\n]*:[ \t]*\n.*?[rRuU]?("""|\'\'\')(.*?)\1', re.S)
# A docstring line that is an example or a formula, not prose: a doctest (">>>" and the output
# lines under it), "f(3) == 5", "x -> y", "Example 1:", "Input: ..."
_EXAMPLE_HEAD = re.compile(r"^(for\s+)?(examples?|e\.g\.|input|output|note|explanation)\b[^a-z]*\d*\s*:?\s*$|^(input|output)\s*:", re.I)
_FORMULA = re.compile(r"==|=>|->|\u279e|\u2192|^\W|\w\(.*\)\s*=|^\w+\s+:")


def code_request(text: str) -> str | None:
    """The natural-language task of a code item: the prose of its last function's docstring,
    without doctests, examples and formula lines; None for a text without one (not code).

    A code item's last line is code (`return s`), not its request: a translated task in a chat
    ("Escribe una función que...") matches the docstring's prose, not the code. The last
    function with a docstring is the one to write: a prompt defines its helpers first
    (HumanEval/10's `is_palindrome` before `make_palindrome`, /38's `encode_cyclic` before
    `decode_cyclic`; before, the helper's docstring was read).

    >>> code_request("def f(xs):\\n    '''Return the largest item.\\n    >>> f([1, 3])\\n    3\\n    '''\\n    return max(xs)")
    'Return the largest item.'
    """
    m = None
    for m in _DOCSTRING.finditer(text or ""):
        pass
    if m is None:
        return None
    keep, after_doctest = [], False
    for raw in m.group(2).split("\n"):
        line = raw.strip()
        if line.startswith(">>>"):
            after_doctest = True
            continue
        if not line or after_doctest and not line[:1].isalpha():
            after_doctest = after_doctest and bool(line)
            continue
        after_doctest = False
        letters = sum(c.isalpha() or c.isspace() for c in line)
        if _EXAMPLE_HEAD.match(line) or _FORMULA.search(line) or letters < 0.75 * len(line) or len(line.split()) < 2:
            continue
        keep.append(line)
    prose = " ".join(" ".join(keep).split())
    return prose or None


def query_text(item: str) -> str:
    """The text the multilingual channel embeds for a benchmark item: a code item's task in
    words (`code_request`), which a translated chat request resembles far more than the code
    (own row in the top 5: 62 of 64 calibration translations, 55 with the whole item), else the item."""
    return code_request(split_options(item)[0]) or item


def generic_code_items(items: Sequence[str], max_words: int = DEFAULT_GENERIC_MAX_WORDS) -> np.ndarray:
    """Which items are generic code items: a task in words (`code_request`) of at most
    `max_words` words (`CheckConfig.generic_max_words`).

    >>> generic_code_items(["def fib(n):\\n    '''Return n-th Fibonacci number.'''\\n", "What is 2 + 2?"]).tolist()
    [True, False]
    """
    return _generic_prose([code_request(split_options(t)[0]) for t in items], max_words)


def _generic_prose(prose: Sequence[str | None], max_words: int) -> np.ndarray:
    """Per item, whether its code task in words (`code_request`, None for a non-code item) has at
    most `max_words` words: `generic_code_items` and `CrossLingualScorer` share it."""
    return np.asarray([p is not None and len(p.split()) <= max_words for p in prose], dtype=bool)

def near_copy_key(text: str) -> str:
    """Two requests with the same key are the same up to their numbers, case and spacing ("Как
    мне отсортировать list на Python? (80114)" and "... (4471)"): the multilingual channel scores
    all of them when one is a candidate (`TierIndex`).

    >>> near_copy_key("Sort a list (526872)") == near_copy_key("sort a  list (80114)")
    True
    """
    return " ".join(re.sub(r"\d+", "0", unicodedata.normalize("NFKC", text).casefold()).split())


def task_symbols(text: str) -> list[str]:
    """The parameters of a code item's function (the last one with a docstring, as `code_request`)
    that its task in words names and that are symbols, not words: an identifier (`fizz_buzz`,
    `sortArray`) or a name of at most two characters that is no English function word. A
    translation keeps them ("dos enteros a y b"); a generic how-to question has none.

    >>> task_symbols("def gcd(a: int, b: int):\\n    '''Return a greatest common divisor of two integers a and b'''\\n")
    ['b']
    >>> task_symbols("def filter_integers(values):\\n    '''Filter given list of any python values only for integers'''\\n")
    []
    """
    prose = code_request(text)
    m = None
    for m in _DOCSTRING.finditer(text or ""):
        pass
    sig = _PARAMS.search(m.group(0)) if m is not None and prose else None
    if sig is None:
        return []
    out = []
    for raw in sig.group(1).split(","):
        name = raw.split(":")[0].split("=")[0].strip().lstrip("*")
        symbol = bool(_DEF_NAME.match(f"def {name}(")) or (len(name) <= 2 and name.casefold() not in _SHORT_WORDS)
        if name.isidentifier() and symbol and _symbol(name).search(prose):
            out.append(name)
    return out


def _symbol(name: str) -> re.Pattern[str]:
    """A symbol written on its own: not inside a word (a CJK neighbour is fine: "整数a和b") and not
    an elided article ("l'élément", "dell'elenco" are no parameter `l`)."""
    return re.compile(rf"(?<![A-Za-z0-9_'\u2019]){re.escape(name)}(?![A-Za-z0-9_'\u2019])")


def generic_held(features: np.ndarray, generic: Sequence[bool]) -> np.ndarray:
    """Which pairs the generic rule holds to the channel's high mark: a generic code item's pair
    whose row keeps neither the item's function name (`name_match`) nor all its task's symbols
    (`symbols`). `xl_probability` and the fit (`eval_decontam_quality.py xl`) share it."""
    f = np.asarray(features, dtype=np.float64)
    kept = f[:, XL_COLUMNS.index("name_match")] > 0
    if f.shape[1] > XL_COLUMNS.index("symbols"):
        kept |= f[:, XL_COLUMNS.index("symbols")] > 0
    return np.asarray(generic, dtype=bool) & ~kept


def segments(text: str, max_segments: int = 48) -> list[str]:
    """The sentences and lines of `text` (2+ characters); of a very long text, the last
    `max_segments` (a request comes last)."""
    out = [x.strip() for x in _SEGMENT.split(text or "") if x and len(x.strip()) >= 2]
    return (out or [(text or "").strip() or " "])[-max_segments:]


def split_options(text: str) -> tuple[str, list[str]]:
    """A multiple-choice item's stem and its answer options (trailing lines lettered A, B, C...
    in order, at least two); a text without them is all stem.

    >>> split_options("Which is a prime?\nA. 4\nB. 7")
    ('Which is a prime?', ['4', '7'])
    """
    lines = [x.strip() for x in (text or "").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    opts: list[tuple[str, str]] = []
    while lines:
        m = _OPTION.match(lines[-1])
        if not m:
            break
        opts.append((m.group(1).upper(), m.group(2).strip()))
        lines.pop()
    opts.reverse()
    if len(opts) < 2 or [x for x, _ in opts] != [chr(ord("A") + n) for n in range(len(opts))] or not "".join(lines).strip():
        return text, []
    return "\n".join(lines).strip(), [o for _, o in opts]


def _option_key(option: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", option).casefold().split())


class CrossLingualScorer:
    """The multilingual channel's probability that a training row is the same request as a
    benchmark item, from `XL_FEATURES` (each text's sentences embedded once, through `store`),
    and for a multiple-choice item with distinctive options, `XL_OPTION_FEATURES`.

    >>> scorer = CrossLingualScorer(MultilingualEmbedder(), bench_texts)   # doctest: +SKIP
    >>> scorer.score([0], ["..."], cos=[0.8])                               # doctest: +SKIP
    """

    def __init__(self, multi: Embedder, items: Sequence[str], *, store: Any | None = None, max_chars: int = 2000,
                 weights: XLModel = XL_WEIGHTS, option_weights: XLModel = XL_OPTION_WEIGHTS,
                 code_weights: XLModel = XL_CODE_WEIGHTS, item_store: Any | None = None,
                 generic_max_words: int = DEFAULT_GENERIC_MAX_WORDS):
        # `item_store`: where the items' sentences and options are kept (a `ModelCache` across
        # runs), else `store`, which keeps the training rows' sentences
        self.multi, self.store, self.max_chars = multi, store, max_chars
        item_store = item_store if item_store is not None else store
        self.weights, self.option_weights, self.code_weights = weights, option_weights, code_weights
        self._segs: dict[str, np.ndarray] = {}
        parts = [split_options(t[: max_chars]) for t in items]
        # An item's request: its last sentence or line outside fenced code (an MMLU question, an
        # MT-bench prompt; MT-bench 124 ends with a fenced function, whose last line is "```"); a
        # code item's is the prose of its docstring (`code_request`), matched by the row's best
        # sentence or by the row as a whole (the task often takes several sentences)
        prose = [code_request(stem) for stem, _ in parts]
        self.is_code = np.asarray([p is not None for p in prose], dtype=bool)
        self.generic = _generic_prose(prose, generic_max_words)
        self._symbols = [[_symbol(x) for x in task_symbols(stem)]
                         for stem, _ in parts]
        plain = [_FENCED.sub("\n", stem).strip() or stem for stem, _ in parts]
        # an item's sentences (a code item's: its prose's), which `row_cover` matches the row's with
        self._item_text = [t if p is None else p for t, p in zip(plain, prose)]
        self._prefetch(self._item_text, store=item_store)
        code_vecs = iter(embed_texts([p for p in prose if p is not None], multi, max_chars=max_chars, store=item_store)
                         if self.is_code.any() else [])
        self.requests = (np.stack([self._segments(t)[-1] if p is None else next(code_vecs)
                                   for t, p in zip(plain, prose)]) if len(items) else np.zeros((0, 1), np.float32))
        self._numbers = [item_numbers(p if p is not None else stem) for (stem, _), p in zip(parts, prose)]
        self._names = [re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, names)) + r")(?!\w)") if names else None
                       for names in (sorted(set(_DEF_NAME.findall(stem))) for stem, _ in parts)]
        self._whole: dict[str, np.ndarray] = {}
        # distinctive options: those no other item has
        seen: dict[str, int] = {}
        for _, opts in parts:
            for key in {_option_key(o) for o in opts}:
                seen[key] = seen.get(key, 0) + 1
        owner, texts = [], []
        for i, (_, opts) in enumerate(parts):
            mine = [o for o in opts if seen[_option_key(o)] == 1]
            if len(mine) >= 2:
                owner += [i] * len(mine)
                texts += mine
        self.option_owner = np.asarray(owner, dtype=np.int64)
        self.option_count = np.bincount(self.option_owner, minlength=len(items)).astype(np.float64)
        self.options = (embed_texts(texts, multi, max_chars=max_chars, store=item_store) if texts
                        else np.zeros((0, 1), np.float32))

    def add_rows(self, texts: Sequence[str], vectors: Sequence[np.ndarray]) -> None:
        """Training rows' whole-text vectors known already (the channel's index holds them)."""
        self._whole.update((t, np.asarray(v, dtype=np.float32)) for t, v in zip(texts, vectors))

    def _segments(self, text: str) -> np.ndarray:
        if text not in self._segs:
            self._prefetch([text])
        return self._segs[text]

    def _prefetch(self, texts: Sequence[str], *, store: Any | None = None) -> None:
        """Embed the sentences of every text not seen yet in one call: one batch and one store
        part for all of them, not one per text (which wrote a Parquet part per text)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._segs))
        if not todo:
            return
        segs = [segments(t[: self.max_chars]) for t in todo]
        vecs = embed_texts([x for ss in segs for x in ss], self.multi, max_chars=self.max_chars,
                           store=store if store is not None else self.store)
        at = 0
        for t, ss in zip(todo, segs):
            self._segs[t] = vecs[at: at + len(ss)]
            at += len(ss)

    def features(self, items: Sequence[int], texts: Sequence[str], cos: Sequence[float], *,
                 mask: Sequence[int | None] | None = None) -> np.ndarray:
        """One row of `XL_COLUMNS` per pair (item index, training text, whole-text cosine);
        `options` and `options_gap` are NaN for an item without distinctive options.
        `mask[n]`: an item left out of pair n's gaps (an evaluation's own source item)."""
        out = np.full((len(items), len(XL_COLUMNS)), np.nan, np.float64)
        has_opts = self.option_count > 0
        by_text: dict[str, list[int]] = {}
        for n, t in enumerate(texts):
            by_text.setdefault(t, []).append(n)
        self._prefetch(list(by_text))
        todo = [t for t in by_text if t not in self._whole] if self.is_code.any() else []
        if todo:
            self._whole.update(zip(todo, embed_texts(todo, self.multi, max_chars=self.max_chars, store=self.store)))
        # each distinct row is matched against every item's request and options once: the
        # cost is (distinct rows) x (items) x (the row's sentences), not per pair
        for t, pairs in by_text.items():
            row = self._segments(t)
            per_req = (self.requests @ row.T).max(axis=1)
            if t in self._whole:
                per_req = np.where(self.is_code, np.maximum(per_req, self.requests @ self._whole[t]), per_req)
            per_opt = None
            if any(has_opts[items[n]] for n in pairs):
                best = (self.options @ row.T).max(axis=1)
                per_opt = np.where(has_opts, np.bincount(self.option_owner, weights=best, minlength=len(has_opts))
                                   / np.maximum(self.option_count, 1.0), -2.0)
            in_row = row_numbers(t)
            # row_cover reads the row's stem: a pasted multiple-choice row's option lines ("A. 0")
            # would count as sentences the item does not cover
            stem = row[: self._stem_segments(t) or len(row)]
            for n in pairs:
                i = items[n]
                left_out = [i] + ([mask[n]] if mask is not None and mask[n] is not None else [])
                out[n, :3] = (cos[n], *_own_and_gap(per_req, i, left_out))
                if has_opts[i]:
                    out[n, 3:5] = _own_and_gap(per_opt, i, left_out)
                mine = self._numbers[i]
                out[n, 5] = len(mine - in_row) / len(mine) if mine else 0.0
                out[n, 6] = float((stem @ self._segments(self._item_text[i]).T).max(axis=1).mean())
                out[n, 7] = float(self._names[i] is not None and self._names[i].search(t) is not None)
                out[n, 8] = float(bool(self._symbols[i]) and all(x.search(t) for x in self._symbols[i]))
        return out

    def _stem_segments(self, text: str) -> int | None:
        """How many of `text`'s leading segments are its stem when it ends in lettered options
        (they are then the same sentences as the stem's own), else None."""
        stem, opts = split_options(text[: self.max_chars])
        if not opts:
            return None
        whole, part = segments(text[: self.max_chars]), segments(stem)
        return len(part) if whole[: len(part)] == part else None

    def score(self, items: Sequence[int], texts: Sequence[str], cos: Sequence[float]) -> np.ndarray:
        at = np.asarray(items, dtype=np.int64)
        return xl_probability(self.features(items, texts, cos), self.weights, self.option_weights,
                              code=self.is_code[at], code_weights=self.code_weights, generic=self.generic[at])


def _own_and_gap(per_item: np.ndarray, i: int, left_out: Sequence[int]) -> tuple[float, float]:
    """Item i's value and how much the best other item (not in `left_out`) beats it; -1: none to compare."""
    own = float(per_item[i])
    others = per_item.copy()
    others[list(left_out)] = -2.0
    best = float(others.max())
    return own, (best - own if best > -2.0 else -1.0)


def _logit(features: np.ndarray, model: XLModel) -> np.ndarray:
    """A model's logit: its weight per feature name (columns of `XL_COLUMNS`) plus its bias; a
    plain sequence gives the weights of the first columns in order, then the bias."""
    if isinstance(model, Mapping):
        z = np.full(len(features), float(model.get("bias", 0.0)))
        for name, w in model.items():
            if name != "bias" and w:
                z = z + w * features[:, XL_COLUMNS.index(name)]
        return z
    w = np.asarray(model, dtype=np.float64)
    return features[:, : len(w) - 1] @ w[:-1] + w[-1]


def xl_probability(features: np.ndarray, weights: XLModel = XL_WEIGHTS, option_weights: XLModel = XL_OPTION_WEIGHTS,
                   *, code: Sequence[bool] | None = None, code_weights: XLModel = XL_CODE_WEIGHTS,
                   generic: Sequence[bool] | None = None) -> np.ndarray:
    """The pair probability: the options model where a pair has option features, the code model
    where `code[n]` (pair n's item is code), else the plain one; where `generic[n]` (a generic code
    item, `generic_code_items`) and the row keeps neither its function's name nor its task's
    symbols (`generic_held`), lowered by XL_GENERIC_SHIFT on the logit."""
    f = np.asarray(features, dtype=np.float64)
    z = _logit(f, weights)
    if code is not None and np.any(code):
        is_code = np.asarray(code, dtype=bool)
        z[is_code] = _logit(f[is_code], code_weights)
    if generic is not None and np.any(generic):
        z[generic_held(f, generic)] -= XL_GENERIC_SHIFT
    if f.shape[1] > XL_COLUMNS.index("options"):
        with_opts = ~np.isnan(f[:, XL_COLUMNS.index("options")])
        if with_opts.any():
            z[with_opts] = _logit(f[with_opts], option_weights)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass
class TierNeighbours(Neighbours):
    """Neighbours from both channels: `channels[i, j]` is 0 (full model, re-scored from the
    static proposals) or 1 (multilingual); `scores` is that channel's cosine."""

    channels: np.ndarray | None = None
    static: np.ndarray | None = None  # the static model's cosine of the pair (NaN: not proposed by it)
    # channel 1: `scores` hold the pair probability of `CrossLingualScorer`, `multi` the raw USE
    # cosine (NaN for channel 0)
    multi: np.ndarray | None = None


class TierIndex:
    """Cheap-first retrieval: a static model proposes, the full model re-scores.

    The static model (model2vec, distilled from the full model) embeds every training text
    into a faiss index. For each query, its top `propose_k` are embedded by the full model
    (each text once, kept for later queries and for `vectors`) and ranked by the full
    model's cosine: the top-k returned carry the full model's scores, so wherever its cut
    decides, the decision is its own; what can differ is only a full-model neighbour that
    the static model did not propose (measured: `benchmarks/bench_decontam.py e2e`).

    With a multilingual embedder, rows in another language than the benchmark's are also
    embedded by it and searched apart (channel 1), with their own cut.
    """

    def __init__(self, static_index: Any, texts: Sequence[str], full: Embedder, static: Embedder, key: str, *,
                 max_chars: int = 2000, store: Any | None = None, propose_k: int = DEFAULT_PROPOSE_K,
                 multi: Embedder | None = None, multi_index: Any | None = None, multi_rows: np.ndarray | None = None,
                 multi_k: int = DEFAULT_MULTI_K, query_store: Any | None = None,
                 generic_max_words: int = DEFAULT_GENERIC_MAX_WORDS):
        # `query_store`: where the queries' (benchmark items') vectors are kept, e.g. a
        # `curate.models.embed.ModelCache` across runs; else `store`
        self.query_store = query_store
        self.index = static_index
        self.texts = texts
        self.full, self.static, self.multi = full, static, multi
        self.key = key
        self.model_id = full.model_id
        self.max_chars = max_chars
        self.store = store
        self.propose_k = propose_k
        self.multi_index, self.multi_rows, self.multi_k = multi_index, multi_rows, multi_k
        self.generic_max_words = generic_max_words  # the channel's generic code items (CheckConfig's)
        self._full_vecs: dict[int, np.ndarray] = {}
        self._multi_query: np.ndarray | None = None
        self._copies: dict[int, list[int]] | None = None
        self.full_embedded = 0

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, texts: Sequence[str], full: Embedder, static: Embedder, *, cache_dir: str | Path | None = None,
              chunk_size: int = 65_536, index_type: str = "flat", max_chars: int = 2000, store: Any | None = None,
              progress: Callable[[int, int], None] | None = None, propose_k: int = DEFAULT_PROPOSE_K,
              multi: Embedder | None = None, langs: Sequence[str | None] | None = None, bench_lang: str = "en",
              multi_k: int = DEFAULT_MULTI_K, generic_max_words: int = DEFAULT_GENERIC_MAX_WORDS) -> TierIndex:
        if store is None and cache_dir is not None:
            from curate.models.embed import EmbeddingStore

            store = EmbeddingStore(cache_dir)  # a warm rerun reads the re-scored rows' vectors back
        static_index = TrainIndex.build(texts, static, cache_dir=cache_dir, chunk_size=chunk_size, index_type=index_type,
                                        max_chars=max_chars, store=None, progress=progress)
        multi_index = multi_rows = None
        if multi is not None:
            multi_rows = other_language_rows(langs, texts, bench_lang)
            if len(multi_rows):
                sub = [texts[j] for j in multi_rows]
                multi_index = TrainIndex.build(sub, multi, cache_dir=cache_dir, chunk_size=4096, max_chars=max_chars,
                                               store=store).index
            logger.info("multilingual channel: %d of %d training texts in another language", len(multi_rows), len(texts))
        return cls(static_index.index, texts, full, static, static_index.key, max_chars=max_chars, store=store,
                   propose_k=propose_k, multi=multi, multi_index=multi_index, multi_rows=multi_rows, multi_k=multi_k,
                   generic_max_words=generic_max_words)

    def _near_copies(self) -> dict[int, list[int]]:
        """The channel's near copies: index position -> every position (itself included, ascending)
        whose text is the same up to its numbers, case and spacing (`near_copy_key`), for
        positions with at least one copy."""
        if self._copies is None:
            groups: dict[str, list[int]] = {}
            for p, j in enumerate(self.multi_rows if self.multi_rows is not None else []):
                groups.setdefault(near_copy_key(self.texts[int(j)][: self.max_chars]), []).append(p)
            self._copies = {p: g for g in groups.values() if len(g) > 1 for p in g}
        return self._copies

    def _embed_full(self, rows: Sequence[int]) -> None:
        todo = sorted({int(j) for j in rows if int(j) not in self._full_vecs})
        if todo:
            vecs = embed_texts([self.texts[j] for j in todo], self.full, max_chars=self.max_chars, store=self.store)
            self._full_vecs.update(zip(todo, vecs))
            self.full_embedded += len(todo)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The full model's vectors of training rows `ids` (embedded on first need)."""
        if not len(ids):
            return np.zeros((0, 0), np.float32)
        self._embed_full(ids)
        return np.stack([self._full_vecs[int(j)] for j in ids])

    def search_texts(self, queries: Sequence[str], k: int = 1) -> tuple[TierNeighbours, np.ndarray]:
        """Top-k of each query by the full model among the static proposals, then the
        multilingual channel's top `multi_k`; returns the neighbours and the queries' full vectors."""
        qstore = self.query_store if self.query_store is not None else self.store
        qfull = embed_texts(list(queries), self.full, max_chars=self.max_chars, store=qstore)
        n = len(queries)
        if self.ntotal == 0 or n == 0:
            empty = np.zeros((n, 0), np.float32)
            return TierNeighbours(empty, empty.astype(np.int64), empty.astype(np.uint8), empty), qfull
        qstatic = embed_texts(list(queries), self.static, max_chars=self.max_chars)
        p = min(max(self.propose_k, k), self.ntotal)
        s_static, proposed = self.index.search(np.ascontiguousarray(qstatic), p)
        self._embed_full(proposed[proposed >= 0].ravel())
        kk = min(k, p)
        scores = np.full((n, kk), -2.0, np.float32)
        idx = np.full((n, kk), -1, np.int64)
        stat = np.full((n, kk), np.nan, np.float32)
        for i in range(n):
            rows = proposed[i][proposed[i] >= 0]
            full = np.stack([self._full_vecs[int(j)] for j in rows]) @ qfull[i]
            # best full cosine first; ties broken by row id, so the order never depends on faiss
            order = np.lexsort((rows, -full))[:kk]
            scores[i, : len(order)], idx[i, : len(order)] = full[order], rows[order]
            stat[i, : len(order)] = s_static[i][proposed[i] >= 0][order]
        channels = np.zeros((n, kk), np.uint8)
        if self.multi_index is not None and self.multi_index.ntotal:
            qm = embed_texts([query_text(q) for q in queries], self.multi, max_chars=self.max_chars, store=qstore)
            self._multi_query = qm
            mk = min(self.multi_k, int(self.multi_index.ntotal))
            ms, mi = self.multi_index.search(np.ascontiguousarray(qm), mk)
            ms, mi = self._with_near_copies(ms, mi, qm)
            rows = np.where(mi >= 0, self.multi_rows[np.maximum(mi, 0)], -1)
            multi_cos = np.concatenate([np.full((n, kk), np.nan, np.float32), ms.astype(np.float32)], axis=1)
            xl = CrossLingualScorer(self.multi, list(queries), store=self.store, max_chars=self.max_chars,
                                    item_store=qstore, generic_max_words=self.generic_max_words)
            # the candidates' whole-row vectors are in the index already: not embedded again
            pos = {int(r): p for p, r in enumerate(self.multi_rows)}
            cand = sorted({int(j) for j in rows.ravel() if j >= 0})
            xl.add_rows([self.texts[j] for j in cand], [self.multi_index.reconstruct(pos[j]) for j in cand])
            pairs = [(i, c) for i in range(n) for c in range(rows.shape[1]) if rows[i, c] >= 0]
            probs = xl.score([i for i, _ in pairs], [self.texts[int(rows[i, c])] for i, c in pairs],
                             [float(ms[i, c]) for i, c in pairs])
            ms = np.full(ms.shape, -2.0, np.float32)
            for (i, c), p in zip(pairs, probs):
                ms[i, c] = p
            scores = np.concatenate([scores, ms.astype(np.float32)], axis=1)
            idx = np.concatenate([idx, rows], axis=1)
            channels = np.concatenate([channels, np.ones_like(rows, dtype=np.uint8)], axis=1)
            stat = np.concatenate([stat, np.full(rows.shape, np.nan, np.float32)], axis=1)
            return TierNeighbours(scores, idx, channels, stat, multi_cos), qfull
        return TierNeighbours(scores, idx, channels, stat), qfull

    def _with_near_copies(self, ms: np.ndarray, mi: np.ndarray, qm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each query's channel candidates (cosines `ms`, index positions `mi`) with every near copy
        of a candidate added (its own cosine; in a group of more than MAX_NEAR_COPIES, the first
        of them by position). A chat log repeats a request with another number in it ("... list
        (526872)", "... list (80114)"): of 21 copies, the ones that won one of the top `multi_k`
        slots were scored and the rest were not, so identical requests got different verdicts.
        Now a request's verdict does not depend on which of its copies won a slot."""
        copies = self._near_copies()
        if not copies:
            return ms, mi
        out: list[list[tuple[float, int]]] = []
        for s_row, i_row, q in zip(ms, mi, qm):
            have = [(float(c), int(p)) for c, p in zip(s_row, i_row) if p >= 0]
            seen = {p for _, p in have}
            extra = sorted({x for _, p in have for x in copies.get(p, ())[:MAX_NEAR_COPIES]} - seen)
            if extra:
                vecs = np.stack([self.multi_index.reconstruct(x) for x in extra])
                have += list(zip((vecs @ q).astype(np.float32).tolist(), extra))
            out.append(have)
        width = max(len(h) for h in out)
        ms2 = np.full((len(out), width), -2.0, np.float32)
        mi2 = np.full((len(out), width), -1, np.int64)
        for n, have in enumerate(out):
            ms2[n, : len(have)] = [c for c, _ in have]
            mi2[n, : len(have)] = [p for _, p in have]
        return ms2, mi2

    def closest_items(self, nb: TierNeighbours, bench_full: np.ndarray) -> dict[tuple[int, int], tuple[float, int]]:
        """(channel, training row) -> (cosine, benchmark item) of the item it is closest to, in that channel."""
        out: dict[tuple[int, int], tuple[float, int]] = {}
        for ch in (0, 1):
            rows = sorted({int(j) for j, c in zip(nb.indices.ravel(), nb.channels.ravel()) if j >= 0 and c == ch})
            if not rows:
                continue
            if ch == 0:
                sims = self.vectors(rows) @ bench_full.T
            else:
                pos = {int(r): p for p, r in enumerate(self.multi_rows)}
                sims = np.stack([self.multi_index.reconstruct(pos[j]) for j in rows]) @ self._multi_query.T
            best = sims.argmax(axis=1)
            out.update({(ch, j): (float(sims[r, best[r]]), int(best[r])) for r, j in enumerate(rows)})
        return out
