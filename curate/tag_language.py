"""Language tagging: per message and per conversation, offline, with lingua.

The conversation's language is the language of its first user message, as in
LMSYS-Chat-1M; when that message has no detectable language (only code, numbers or
emoji), the next user message that has one is used, else `unknown`.

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

from curate.errors import ConfigError, MissingDependencyError
from curate.lake import Lake
from curate.tagging import TagStats, run_tagger

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
        )
        self._detect_cached = lru_cache(maxsize=50_000)(self._detect_clean)

    def detect(self, text: str | None) -> Detection:
        """The language of `text`, or `unknown` when it has too little natural language."""
        if not text:
            return UNKNOWN_DETECTION
        cleaned = clean_for_detection(text[: self.config.max_chars * 4])[: self.config.max_chars]
        return self._detect_cached(cleaned)

    def _detect_clean(self, cleaned: str) -> Detection:
        if sum(ch.isalpha() for ch in cleaned) < max(self.config.min_letters, 1):
            return UNKNOWN_DETECTION
        detector = self._fast if len(cleaned) >= self.config.low_accuracy_min_chars else self._accurate
        values = detector.compute_language_confidence_values(cleaned)
        if not values or values[0].value <= 0 or values[0].value < self.config.min_confidence:
            return UNKNOWN_DETECTION
        best = values[0]
        return Detection(best.language.name.title(), best.language.iso_code_639_1.name.lower(),
                         round(float(best.value), 4))

    def tag_conversation(self, messages: list[dict] | None) -> tuple[Detection, list[dict]]:
        """(conversation language, per-message rows) for one conversation."""
        per_message = []
        conv = None
        for i, msg in enumerate(messages or []):
            det = self.detect(msg.get("content"))
            per_message.append({
                "message_index": i, "role": msg.get("role"), "language": det.language,
                "language_code": det.code, "confidence": det.confidence,
            })
            if conv is None and msg.get("role") == "user" and det.code is not None:
                conv = det
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
