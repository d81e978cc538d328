"""Language tagging: per message and per conversation, offline, with lingua.

The conversation's language is the language of its first user message, as in
LMSYS-Chat-1M; when that message has no detectable language (only code, numbers or
emoji), the next user message that has one is used, then any other message (the
assistant's reply), else `unknown`.

Detection (measured in `benchmarks/eval_taggers_quality.py` and `bench_taggers.py`):

- Code is not language: fenced code blocks, inline code, URLs and e-mail addresses are
  removed first (a Japanese question above a Python snippet was tagged English before).
- lingua restricted to a set of ~45 widely used languages (`DEFAULT_LANGUAGES`): all 75
  languages cost 80 s to load, 1.3 GB of memory and confuse short messages with rare
  neighbours (Latin, Afrikaans, Maori); pass `languages=("all",)` to use them anyway.
- Hybrid accuracy: lingua's low-accuracy mode (trigrams only) is about twice as fast and
  as accurate on long texts, but misses short ones; texts of at least `low_accuracy_min_chars`
  characters use it, shorter ones use the high-accuracy models.
- Only the first `max_chars` characters of a message are read: the language is settled
  long before that and the cost grows with length.
- `unknown` only when truly unknown (`english_fallback`): code-only text is judged by its
  comments and docstrings, or is English when most of its words are English words; a
  short text (< 30 letters) made only of English chat words ("ok", "thx", "go on") is
  English when lingua is unsure (< 0.5), since lingua gives one or two such words to
  Vietnamese, Hungarian or Estonian. Measured on `tests/data/lang_short_eval.jsonl`.

>>> tagger = LanguageTagger()                                    # doctest: +SKIP
>>> tagger.detect("¿Dónde está la estación?")                    # doctest: +SKIP
Detection(language='Spanish', code='es', confidence=0.93)
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

import pyarrow as pa

from curate.core.errors import ConfigError, MissingDependencyError
from curate.core.lake import Lake
from curate.tag.tagging import TagStats, run_tagger

log = logging.getLogger(__name__)

TABLE = "language"
UNKNOWN = "unknown"

# ISO 639-1 codes of the languages most present in public chat logs (LMSYS-Chat-1M's top
# languages) plus other widely written ones lingua supports.
DEFAULT_LANGUAGES: tuple[str, ...] = (
    "en", "zh", "ru", "es", "pt", "de", "fr", "it", "ja", "ko", "ar", "pl", "nl", "tr",
    "vi", "id", "fa", "uk", "hi", "sv", "cs", "ro", "hu", "el", "he", "th", "da", "fi",
    "nb", "bg", "ms", "bn", "ca", "sk", "hr", "sr", "lt", "lv", "et", "sl", "ta", "ur",
    "tl", "mr", "ka",
)

MESSAGE_LANGUAGE = pa.struct([
    ("message_index", pa.int32()),
    ("role", pa.string()),
    ("language", pa.string()),
    ("language_code", pa.string()),
    ("confidence", pa.float32()),
])

SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("language", pa.string()),  # English name ("Spanish") or "unknown"
    ("language_code", pa.string()),  # ISO 639-1 ("es"); null when unknown
    ("language_confidence", pa.float32()),
    ("message_languages", pa.list_(MESSAGE_LANGUAGE)),
    ("detector", pa.string()),
])


@dataclass(frozen=True, kw_only=True)
class LanguageConfig:
    languages: tuple[str, ...] = DEFAULT_LANGUAGES  # ISO 639-1 codes, or ("all",)
    low_accuracy_min_chars: int = 120  # texts at least this long use the fast mode; 0 = always fast
    max_chars: int = 1000
    min_letters: int = 2  # fewer letters after removing code: unknown
    min_confidence: float = 0.0  # below it: unknown
    # short text (< short_max_letters letters) where lingua is unsure (< short_confidence)
    # and every word is English chat vocabulary ("ok", "thx", "go on") is English
    short_max_letters: int = 30
    short_confidence: float = 0.5
    english_fallback: bool = True
    batch_size: int = 2000

    def __post_init__(self) -> None:
        if not self.languages:
            raise ConfigError("languages must name at least two ISO 639-1 codes, or 'all'")
        if self.languages != ("all",):
            if len(set(self.languages)) < 2:
                raise ConfigError("languages must name at least two distinct languages")
            unknown = sorted(set(self.languages) - set(_supported_codes()))
            if unknown:
                raise ConfigError(f"languages not supported by lingua: {', '.join(unknown)}")
        if self.low_accuracy_min_chars < 0:
            raise ConfigError("low_accuracy_min_chars must be >= 0")
        if self.max_chars < 10:
            raise ConfigError("max_chars must be at least 10")
        if self.min_letters < 0:
            raise ConfigError("min_letters must be >= 0")
        if not 0.0 <= self.min_confidence < 1.0:
            raise ConfigError("min_confidence must be in [0, 1)")
        if self.batch_size <= 0:
            raise ConfigError("batch_size must be positive")


@dataclass(frozen=True)
class Detection:
    language: str
    code: str | None
    confidence: float


UNKNOWN_DETECTION = Detection(UNKNOWN, None, 0.0)


def _lingua():
    try:
        import lingua
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingDependencyError(
            "language tagging needs lingua: pip install lingua-language-detector"
        ) from exc
    return lingua


def _supported_codes() -> list[str]:
    lingua = _lingua()
    return [lang.iso_code_639_1.name.lower() for lang in lingua.Language.all()]


_FENCE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"[0-9]+")


# Natural language inside code: comments and docstrings ("# read the file and count words").
_CODE_COMMENT = re.compile(r"(?:^|\s)(?:#+|//+|--)[ \t]*([^\n]{3,})|/\*(.*?)\*/|\"\"\"(.*?)\"\"\"|\'\'\'(.*?)\'\'\'",
                           re.S | re.M)
_ASCII_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
# Short chat words that are English but that lingua, on one or two words, gives to
# Vietnamese, Hungarian or Estonian ("hi", "ok", "lol"); with spaCy's English stop words
# and Faker's English word list (both in installed packages) they make the vocabulary of
# the short-English rule.
_CHAT_EN = frozenset("""hi hello hey ok okay k thx thanks thank ty pls plz please yes yeah yep yup no nope lol
lmao rofl wow cool nice great good awesome sure continue go on more next why what how who when where idk tldr
eli5 explain rewrite shorter longer fix try again redo retry bye goodbye sorry yes please done stop help
hmm huh oops omg btw asap fyi brb np thanksgiving summarize translate code""".split())


@lru_cache(maxsize=1)
def _english_vocabulary() -> frozenset:
    words = set(_CHAT_EN)
    try:
        from spacy.lang.en.stop_words import STOP_WORDS

        words.update(STOP_WORDS)
    except ImportError:  # spaCy is a dependency of name tagging; the chat words still work
        pass
    try:
        from faker.providers.lorem.en_US import Provider

        words.update(w.lower() for w in Provider.word_list)
    except ImportError:
        pass
    return frozenset(words)


def english_evidence(text: str) -> tuple[int, int]:
    """(English words, all words) among the ASCII words of `text` (case-folded)."""
    vocab = _english_vocabulary()
    words = [w.lower() for w in _ASCII_WORD.findall(text)]
    return sum(w in vocab for w in words), len(words)


def code_comments(text: str) -> str:
    """The comments and docstrings of the code in `text`, joined (natural language in code)."""
    parts = []
    for m in _CODE_COMMENT.finditer(text):
        parts.append(next(g for g in m.groups() if g is not None))
    return _SPACE.sub(" ", " ".join(parts)).strip()


def clean_for_detection(text: str) -> str:
    """Remove what is not natural language (code, URLs, e-mail addresses)."""
    text = _FENCE.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


class LanguageTagger:
    """Detects the language of texts; builds lingua detectors once per instance."""

    def __init__(self, config: LanguageConfig | None = None):
        self.config = config or LanguageConfig()
        lingua = _lingua()
        if self.config.languages == ("all",):
            langs = list(lingua.Language.all())
        else:
            wanted = set(self.config.languages)
            langs = [l for l in lingua.Language.all() if l.iso_code_639_1.name.lower() in wanted]
        builder = lingua.LanguageDetectorBuilder.from_languages(*langs)
        self._fast = lingua.LanguageDetectorBuilder.from_languages(*langs).with_low_accuracy_mode().build()
        self._accurate = builder.build() if self.config.low_accuracy_min_chars > 0 else self._fast
        version = metadata.version("lingua-language-detector")
        self.detector_id = (
            f"lingua-{version}:{len(langs)}langs:"
            f"low>={self.config.low_accuracy_min_chars}:max{self.config.max_chars}"
            + (":enfallback" if self.config.english_fallback else "")
        )
        self._detect_cached = lru_cache(maxsize=50_000)(self._detect_clean)
        self._lingua_cached = lru_cache(maxsize=50_000)(self._lingua_best)

    def detect(self, text: str | None) -> Detection:
        """The language of `text`, or `unknown` when it has too little natural language.

        Code-only text is judged by its comments and docstrings when it has any; short
        text of English chat words only ("ok", "thx") is English when lingua is unsure."""
        if not text:
            return UNKNOWN_DETECTION
        raw = text[: self.config.max_chars * 4]
        cleaned = clean_for_detection(raw)[: self.config.max_chars]
        det = self._detect_cached(cleaned)
        if det.code is None and self.config.english_fallback:
            comments = code_comments(raw)[: self.config.max_chars]
            if comments:
                det = self._detect_cached(comments)
            if det.code is None:
                det = self._english_from_code(raw)
        return det

    def _english_from_code(self, raw: str) -> Detection:
        # No prose at all ("KeyError: 'user'", a bare traceback): English only when most of
        # its words are English words and there are a few of them.
        english, words = english_evidence(raw)
        if words >= 3 and english >= 2 and english / words >= 0.5:
            return Detection("English", "en", 0.0)
        return UNKNOWN_DETECTION

    def _detect_clean(self, cleaned: str) -> Detection:
        letters = sum(ch.isalpha() for ch in cleaned)
        if letters < max(self.config.min_letters, 1):
            if self.config.english_fallback and letters and cleaned.isascii():
                english, words = english_evidence(cleaned)  # "k"
                if words and english == words:
                    return Detection("English", "en", 0.0)
            return UNKNOWN_DETECTION
        # lingua reads letters only: texts that differ in their digits alone ("... (48213)", "...
        # (90577)": templated prompts, ticket numbers) get one lingua call. Measured on the two
        # evaluation sets and 600 generated conversations, with each text's digits rewritten:
        # 13,872 comparisons, the same language and the same confidence to 4 decimals in all.
        fast = len(cleaned) >= self.config.low_accuracy_min_chars  # the mode reads the true length
        best, best_value, en_value = self._lingua_cached(fast, _DIGITS.sub("0", cleaned))
        if (self.config.english_fallback and letters < self.config.short_max_letters and cleaned.isascii()
                and (best is None or best_value < self.config.short_confidence)):
            english, words = english_evidence(cleaned)
            if words and english == words:
                return Detection("English", "en", round(float(en_value), 4))
        if best is None or best_value <= 0 or best_value < self.config.min_confidence:
            return UNKNOWN_DETECTION
        return Detection(best.name.title(), best.iso_code_639_1.name.lower(), round(float(best_value), 4))

    def _lingua_best(self, fast: bool, text: str) -> tuple:
        """(best language or None, its confidence, English's confidence) from lingua."""
        values = (self._fast if fast else self._accurate).compute_language_confidence_values(text)
        if not values:
            return None, 0.0, 0.0
        en_value = next((v.value for v in values if v.language.iso_code_639_1.name == "EN"), 0.0)
        return values[0].language, values[0].value, en_value

    def tag_conversation(self, messages: list[dict] | None) -> tuple[Detection, list[dict]]:
        """(conversation language, per-message rows) for one conversation."""
        per_message = []
        conv = other = None
        for i, msg in enumerate(messages or []):
            det = self.detect(msg.get("content"))
            per_message.append({
                "message_index": i, "role": msg.get("role"), "language": det.language,
                "language_code": det.code, "confidence": det.confidence,
            })
            if conv is None and msg.get("role") == "user" and det.code is not None:
                conv = det
            if other is None and det.code is not None:
                other = det
        # no user message has language (code only): the reply's language is the evidence left
        if conv is None and self.config.english_fallback:
            conv = other
        return conv or UNKNOWN_DETECTION, per_message

    def tag_batch(self, batch: pa.Table) -> pa.Table:
        """One `language` annotation row per conversation of `batch`."""
        ids = batch.column("conversation_id").to_pylist()
        convs = batch.column("conversation").to_pylist()
        rows = {name: [] for name in SCHEMA.names}
        for cid, messages in zip(ids, convs):
            det, per_message = self.tag_conversation(messages)
            rows["conversation_id"].append(cid)
            rows["language"].append(det.language)
            rows["language_code"].append(det.code)
            rows["language_confidence"].append(det.confidence)
            rows["message_languages"].append(per_message)
            rows["detector"].append(self.detector_id)
        return pa.table(rows, schema=SCHEMA)


def tag_language(
    lake: Lake,
    config: LanguageConfig | None = None,
    *,
    limit: int | None = None,
    progress=None,
) -> TagStats:
    """Tag every conversation of the lake not yet in the `language` table.

    >>> tag_language(Lake("lake")).tagged                              # doctest: +SKIP
    66
    """
    config = config or LanguageConfig()
    tagger = LanguageTagger(config)
    def summarize(result: pa.Table) -> dict:
        import pyarrow.compute as pc

        counts = pc.value_counts(result.column("language")).to_pylist()
        return {f"language_{c['values']}": c["counts"] for c in counts}

    return run_tagger(lake, TABLE, tagger.tag_batch, stage="tag_language",
                      batch_size=config.batch_size, limit=limit, progress=progress,
                      summarize=summarize)
