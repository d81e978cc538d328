"""Stage 3: the LLM judge, with strict parsing, graded margins and a verdict cache.

A judge answers "are these the same test item?" with exactly True or False. Where the
server returns log-probabilities, the verdict also carries the True-minus-False margin
of the first answer token: small judges say True to nearly everything, yet their margin
still ranks pairs well, so the margin (with a calibrated cut-off, see `calibrate.py`) is
what the decision uses. An answer in any other shape is retried and, if it stays
unparseable, recorded as an `error` verdict - never as False.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from decontam.errors import JudgeError
from decontam.prompts import DATA_TYPES, PROMPT_VERSION, messages

logger = logging.getLogger(__name__)

TRUE, FALSE, ERROR = "true", "false", "error"

_ANSWER = re.compile(r"^\s*[\"'`*]{0,2}(true|false)[\"'`*]{0,2}\.?\s*$", re.IGNORECASE)
# The verdict word, then optionally a separator and a one-line reason: "True - same task".
_VERDICT_WORD = re.compile(r"\b(true|false)\b", re.IGNORECASE)
# Only the dash or colon the prompt asks for: "True. As instructed..." stays unparseable.
_ANSWER_REASON = re.compile(r"^\s*[\"'`*]{0,2}(true|false)[\"'`*]{0,2}\s*[-:—–]\s*(.*)$", re.IGNORECASE)
_LEAD = "Ġ▁ \t\n\"'`*"
# The verdict word, then a one-line reason of at most 15 words (the prompt asks for that).
DEFAULT_MAX_TOKENS = 40
# Each text is cut to this many characters in the prompt.
DEFAULT_MAX_CHARS = 6000


def parse_answer(text: str | None) -> bool | None:
    """True or False when `text` is exactly one of them (case, quotes and a final dot aside).

    >>> parse_answer("True"), parse_answer(" false. "), parse_answer("True, ignore that")
    (True, False, None)
    """
    if text is None:
        return None
    m = _ANSWER.match(text)
    return None if m is None else m.group(1).lower() == "true"


def parse_answer_reason(text: str | None) -> tuple[bool | None, str]:
    """The verdict and its one-line reason from a reply that starts with True or False.

    The verdict must be the first word; the reason is the rest of the first line after a
    separator (cut to 200 characters); later lines are ignored unless they name a verdict
    again. A reply whose first word is anything else is unparseable: an injected answer
    stays an error.

    >>> parse_answer_reason("True - both ask for the nth Fibonacci number")
    (True, 'both ask for the nth Fibonacci number')
    >>> parse_answer_reason("False"), parse_answer_reason("Ignore that. True - x")
    ((False, ''), (None, ''))
    """
    if text is None:
        return None, ""
    plain = parse_answer(text)
    if plain is not None:
        return plain, ""
    first, _, rest = text.strip().partition("\n")
    if _VERDICT_WORD.search(rest):  # a second verdict on a later line: ambiguous (or injected)
        return None, ""
    if (alone := parse_answer(first)) is not None:
        return alone, ""
    m = _ANSWER_REASON.match(first)
    if m is None:
        return None, ""
    return m.group(1).lower() == "true", m.group(2).strip()[:200]


def margin_from_top_logprobs(top: Sequence[dict[str, float]] | None, *, positions: int = 3) -> float | None:
    """log P(True) - log P(False) at the first answer token, from per-token top log-probs.

    Token spellings vary by tokenizer ("True", " True", "ĠTrue", "true"); they are pooled.
    When only one side is among the top candidates, the smallest listed log-prob stands
    in as an upper bound for the other, so the margin is a conservative lower bound.
    """
    if not top:
        return None
    for candidates in top[:positions]:
        if not candidates:
            continue
        sides: dict[str, list[float]] = {"true": [], "false": []}
        for token, logprob in candidates.items():
            word = token.strip(_LEAD).lower()
            if word in sides and logprob is not None and math.isfinite(logprob):
                sides[word].append(logprob)
        if not sides["true"] and not sides["false"]:
            continue
        floor = min(v for v in candidates.values() if v is not None and math.isfinite(v))
        t = _logsumexp(sides["true"]) if sides["true"] else floor
        f = _logsumexp(sides["false"]) if sides["false"] else floor
        return t - f
    return None


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


@dataclass(frozen=True)
class JudgePair:
    test_text: str
    train_text: str
    data_type: str = "knowledge"


@dataclass(frozen=True)
class Verdict:
    """What the judge said about one pair. `label` is true, false or error."""

    label: str
    margin: float | None = None
    answer: str = ""
    model: str = ""
    prompt_version: str = PROMPT_VERSION
    data_type: str = "knowledge"
    orders: int = 1
    error: str | None = None
    cached: bool = False
    reason: str = ""  # the judge's one-line reason, after its verdict

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Judge(Protocol):
    model_id: str

    def judge_many(self, pairs: Sequence[JudgePair]) -> list[Verdict]: ...


class VerdictCache:
    """Verdicts by (model, prompt version, data type, order, both texts), in SQLite.

    Each verdict is committed as it arrives, so an interrupted run resumes where it stopped
    and a warm rerun makes no judge calls. Errors are not cached: a rerun retries them.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    @staticmethod
    def key(model: str, data_type: str, order: str, text_a: str, text_b: str, max_chars: int,
            max_tokens: int | None = None) -> str:
        h = hashlib.sha256()
        # A shorter reply (`max_tokens`, for cheap measurement) has the same verdict and margin
        # but no reason: it is kept apart, and the default's keys stay what they were.
        extra = () if max_tokens in (None, DEFAULT_MAX_TOKENS) else (f"max_tokens={max_tokens}",)
        for part in (model, PROMPT_VERSION, data_type, order, str(max_chars), *extra, text_a, text_b):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        return h.hexdigest()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM verdicts WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, json.dumps(value)))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM verdicts").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class VerdictRecord:
    """Judged verdicts as data that can be committed: one JSON line per (model, prompt
    version, data type, order, max_chars, max_tokens, sha256 of each text), with the label,
    margin, answer and reason. The texts are stored only as hashes, but a reason (a reply
    longer than one token) is the model's free text and may quote them.

    Where `VerdictCache` is a private, disposable cache, the record is what a later
    calibration refit reads instead of asking the server again: a verifier refit moves its
    band, and only pairs new to the band need the judge. Lines are kept sorted by identity
    and rewritten atomically after each new verdict, so the same verdicts give the same
    bytes and an interrupted run keeps what it got. One writer at a time: the file is read
    once and rewritten whole (fine for the hundreds of verdicts a CPU judges, not for 10^4).

    `cache_for(judge, pairs)` gives `LLMJudge` a cache view over it (the record is read
    before any call; a new verdict lands in it as it arrives).

    >>> rec = VerdictRecord("verdicts.jsonl")                                             # doctest: +SKIP
    >>> judge = LLMJudge(client, model="qwen-coder-1.5b", max_tokens=1)                      # doctest: +SKIP
    >>> judge.cache = rec.cache_for(judge, pairs); judge.judge_many(pairs)                   # doctest: +SKIP
    """

    FIELDS = ("model", "prompt_version", "data_type", "order", "max_chars", "max_tokens", "a_sha256", "b_sha256")

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._rows: dict[tuple, dict] = {}
        if self.path.exists():
            for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self._rows[tuple(row[f] for f in self.FIELDS)] = row
                except (ValueError, KeyError) as exc:
                    raise JudgeError(f"{self.path}:{n}: not a verdict record line ({exc})") from exc

    @staticmethod
    def identity(model: str, data_type: str, order: str, text_a: str, text_b: str, max_chars: int,
                 max_tokens: int, prompt_version: str = PROMPT_VERSION) -> tuple:
        return (model, prompt_version, data_type, order, int(max_chars), int(max_tokens),
                text_sha256(text_a), text_sha256(text_b))

    def get(self, ident: tuple) -> dict | None:
        """The verdict (`Verdict` fields) recorded under `ident`, or None."""
        with self._lock:
            row = self._rows.get(ident)
        if row is None:
            return None
        return {"label": row["label"], "margin": row["margin"], "answer": row["answer"], "model": row["model"],
                "prompt_version": row["prompt_version"], "data_type": row["data_type"], "reason": row.get("reason", "")}

    def put(self, ident: tuple, verdict: dict) -> None:
        """Record one verdict (errors are never recorded: a rerun asks again) and rewrite the file."""
        if verdict.get("label") not in (TRUE, FALSE):
            return
        row = dict(zip(self.FIELDS, ident))
        row.update(label=verdict["label"], margin=verdict.get("margin"), answer=verdict.get("answer", ""),
                   reason=verdict.get("reason", ""))
        with self._lock:
            self._rows[ident] = row
            self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        lines = (json.dumps(self._rows[k], sort_keys=True, ensure_ascii=False) for k in sorted(self._rows))
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        tmp.replace(self.path)

    def __len__(self) -> int:
        return len(self._rows)

    def cache_for(self, judge: LLMJudge, pairs: Sequence[JudgePair]) -> _RecordCache:
        """A `VerdictCache` stand-in for `judge` over `pairs`: it maps the judge's cache keys of
        both orders of each pair to their record identities."""
        idents = {}
        for p in pairs:
            for order, (a, b) in (("ab", (p.test_text, p.train_text)), ("ba", (p.train_text, p.test_text))):
                idents[judge.cache_key(p.data_type, order, a, b)] = self.identity(
                    judge.model_id, p.data_type, order, a, b, judge.max_chars, judge.max_tokens)
        return _RecordCache(self, idents)


class _RecordCache:
    def __init__(self, record: VerdictRecord, idents: dict[str, tuple]):
        self.record, self.idents = record, idents

    def get(self, key: str) -> dict | None:
        ident = self.idents.get(key)
        return None if ident is None else self.record.get(ident)

    def put(self, key: str, value: dict) -> None:
        if key in self.idents:
            self.record.put(self.idents[key], value)


@dataclass
class JudgeStats:
    calls: int = 0
    cache_hits: int = 0
    parse_retries: int = 0
    errors: int = 0


class LLMJudge:
    """Judges pairs through an OpenAI-compatible client (`curate.models.llm.ChatClient`).

    >>> judge = LLMJudge(client, model="qwen2.5-coder-1.5b", cache=VerdictCache("v.sqlite"))  # doctest: +SKIP
    >>> judge.judge_many([JudgePair(test_text, train_text, "code")])                          # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        both_orders: bool = False,
        cache: VerdictCache | None = None,
        logprobs: int | None = 10,
        max_parse_retries: int = 2,
        max_chars: int = DEFAULT_MAX_CHARS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        request_type: Callable[..., Any] | None = None,
    ):
        if not model:
            raise JudgeError("the judge needs a model name: pass --judge-model or set CURATE_LLM_MODEL")
        self.client = client
        self.model_id = model
        self.both_orders = both_orders
        self.cache = cache
        self.logprobs = logprobs
        self.max_parse_retries = max_parse_retries
        self.max_chars = max_chars
        if max_tokens < 1:
            raise JudgeError("max_tokens must be at least 1 (the verdict word)")
        self.max_tokens = max_tokens
        self._request_type = request_type
        self.stats = JudgeStats()

    def cache_key(self, data_type: str, order: str, text_a: str, text_b: str) -> str:
        """This judge's `VerdictCache` key for one ordered pair."""
        return VerdictCache.key(self.model_id, data_type, order, text_a, text_b, self.max_chars, self.max_tokens)

    def _request(self, data_type: str, a: str, b: str, attempt: int, key: str) -> Any:
        make = self._request_type
        if make is None:
            from curate.models.llm import ChatRequest as make  # the shared client's request type

        # Greedy first; a retry after an unparseable answer samples a little, since the
        # same greedy prompt would only repeat the same bad answer.
        return make(
            messages=messages(data_type, a, b, max_chars=self.max_chars),
            max_tokens=self.max_tokens,
            temperature=0.0 if attempt == 0 else 0.7,
            logprobs=self.logprobs,
            seed=None if attempt == 0 else attempt,
            key=key,
        )

    def judge_many(self, pairs: Sequence[JudgePair], on_verdict: Callable[[int, Verdict], None] | None = None) -> list[Verdict]:
        """Verdicts for `pairs`, in order; cached ones cost no call."""
        for p in pairs:
            if p.data_type not in DATA_TYPES:
                raise JudgeError(f"unknown data type {p.data_type!r}; use one of {', '.join(DATA_TYPES)}")
        orders = ("ab", "ba") if self.both_orders else ("ab",)
        # One job per (pair, order): job results land in `single`.
        single: dict[tuple[int, str], Verdict] = {}
        todo: list[tuple[int, str, str]] = []  # (pair index, order, cache key)
        for i, p in enumerate(pairs):
            for order in orders:
                a, b = (p.test_text, p.train_text) if order == "ab" else (p.train_text, p.test_text)
                key = self.cache_key(p.data_type, order, a, b)
                hit = self.cache.get(key) if self.cache is not None else None
                if hit is not None:
                    single[(i, order)] = replace(Verdict(**hit), cached=True)
                    self.stats.cache_hits += 1
                else:
                    todo.append((i, order, key))

        attempt = 0
        while todo:
            reqs = []
            for i, order, key in todo:
                p = pairs[i]
                a, b = (p.test_text, p.train_text) if order == "ab" else (p.train_text, p.test_text)
                reqs.append(self._request(p.data_type, a, b, attempt, key))

            batch, verdicts = list(todo), {}

            def on_result(j: int, result: Any) -> None:
                # Runs as each answer arrives, so that an interrupted run keeps what it got.
                i, order, key = batch[j]
                verdict = self._verdict(pairs[i].data_type, result)
                verdicts[j] = verdict
                if verdict.label != ERROR and self.cache is not None:
                    self.cache.put(key, verdict.to_dict())

            self.stats.calls += len(reqs)
            results = self.client.chat_many(reqs, on_result=on_result)
            retry: list[tuple[int, str, str]] = []
            for j, result in enumerate(results):
                verdict = verdicts.get(j) or self._verdict(pairs[batch[j][0]].data_type, result)
                i, order, key = batch[j]
                if verdict.label == ERROR and attempt < self.max_parse_retries:
                    retry.append(batch[j])
                else:
                    if j not in verdicts and verdict.label != ERROR and self.cache is not None:
                        self.cache.put(key, verdict.to_dict())
                    single[(i, order)] = verdict
            if retry:
                self.stats.parse_retries += len(retry)
                logger.info("judge: %d unparseable or failed answers, retrying", len(retry))
            todo = retry
            attempt += 1

        out = []
        for i, p in enumerate(pairs):
            verdict = _combine([single[(i, o)] for o in orders])
            if verdict.label == ERROR:
                self.stats.errors += 1
            if on_verdict is not None:
                on_verdict(i, verdict)
            out.append(verdict)
        return out

    def _verdict(self, data_type: str, result: Any) -> Verdict:
        model = getattr(result, "model", None) or self.model_id
        if getattr(result, "error", None):
            return Verdict(ERROR, model=model, data_type=data_type, error=str(result.error)[:300])
        text = getattr(result, "text", None) or ""
        parsed, reason = parse_answer_reason(text)
        if parsed is None:
            return Verdict(ERROR, answer=text[:200], model=model, data_type=data_type, error="unparseable_answer")
        margin = margin_from_top_logprobs(getattr(result, "top_logprobs", None))
        return Verdict(TRUE if parsed else FALSE, margin=margin, answer=text.strip()[:50], model=model, data_type=data_type,
                       reason=reason)


def _combine(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict from those of both orders: margins averaged; labels must agree for True.

    Averaging the margins of (A, B) and (B, A) cancels a judge's lean towards whichever
    text it sees first; without margins, a pair is True only if both orders say so.
    """
    if len(verdicts) == 1:
        return verdicts[0]
    good = [v for v in verdicts if v.label != ERROR]
    if not good:
        return replace(verdicts[0], orders=len(verdicts))
    if len(good) == 1:
        return replace(good[0], orders=len(verdicts))
    margins = [v.margin for v in good if v.margin is not None]
    margin = sum(margins) / len(margins) if len(margins) == len(good) else None
    label = TRUE if all(v.label == TRUE for v in good) else FALSE
    return replace(
        good[0],
        label=label,
        margin=margin,
        answer="/".join(v.answer for v in good),
        orders=len(verdicts),
        cached=all(v.cached for v in good),
    )
