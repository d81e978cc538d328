"""One OpenAI-compatible chat client for every model call in the project.

The moderation LLM tier and the decontam judge both talk to a served model
(vLLM, a llama.cpp server, a hosted API) through `ChatClient`. It bounds
concurrency, times out every attempt, retries transient failures with
exponential backoff and jitter, spreads requests over several endpoints, and
caches successful answers in sqlite so a rerun makes no repeat calls.

It never guesses: when every attempt failed, the result carries `error` and no
text, and the caller records an error verdict. Failures are not cached, so the
next run retries exactly the pending work.

Build clients with `chat_client` (comma-separated replica URLs, CURATE_LLM_* defaults, the
answers cached in `<cache_dir>/llm_responses.sqlite`; for a lake, `lake_cache_dir(lake)`):

    >>> client = chat_client("http://127.0.0.1:8000/v1", "smollm2", cache_dir=lake_cache_dir("lake"))  # doctest: +SKIP
    >>> [res] = client.chat_many([ChatRequest([{"role": "user", "content": "Hi"}])])  # doctest: +SKIP
    >>> res.text, res.error                                                            # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import itertools
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from curate.core import settings
from curate.core.errors import ConfigError, LLMError

log = logging.getLogger(__name__)

# Retry-After from a server is honoured, but never beyond this: a server that
# asks for an hour must not stall a pipeline run silently.
MAX_RETRY_AFTER_S = 60.0
MAX_BACKOFF_S = 30.0
# Retry jitter from a generator of our own: the global `random` state belongs to the caller, and a
# client thread drawing from it changes it under other threads (Hypothesis warns when that
# happens during one of its strategies).
_JITTER = random.Random()
_RETRY_STATUS = {408, 409, 425, 429}
# How a server takes a JSON schema for structured output. OpenAI and vLLM: `response_format`
# {"type": "json_schema", "json_schema": {"schema": ...}}. llama-cpp-python's server (0.3.36)
# answers that with HTTP 500 and takes {"type": "json_object", "schema": ...} instead.
STRUCTURED_FORMS = ("auto", "json_schema", "json_object")


def as_json_object(body: dict[str, Any]) -> dict[str, Any] | None:
    """`body` with a json_schema `response_format` rewritten to llama.cpp's json_object form, else None."""
    rf = body.get("response_format")
    if not (isinstance(rf, dict) and rf.get("type") == "json_schema"):
        return None
    schema = (rf.get("json_schema") or {}).get("schema")
    if schema is None:
        return None
    return {**body, "response_format": {"type": "json_object", "schema": schema}}


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: base URL (ending in /v1), model name, optional key.

    The key never shows in repr, logs or error messages.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"LLM base URL must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ConfigError("LLM model name is empty; set CURATE_LLM_MODEL or pass model=")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def __repr__(self) -> str:
        key = "'***'" if self.api_key else "None"
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    __str__ = __repr__

    @classmethod
    def from_env(cls) -> list[Endpoint]:
        """Endpoints from CURATE_LLM_BASE_URL (comma-separated for replicas), CURATE_LLM_MODEL, CURATE_LLM_API_KEY."""
        return endpoints(None, None)


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request.

    `logprobs` is the number of top alternatives wanted per generated token;
    `response_format` is passed through as OpenAI's structured-output object,
    e.g. {"type": "json_schema", "json_schema": {"name": "v", "schema": {...}}};
    `extra_body` adds server-specific fields (e.g. vLLM's `structured_outputs`);
    `key` is the caller's own id and takes no part in the request or its cache key.
    """

    messages: list[dict] = field(hash=False)
    max_tokens: int = 256
    temperature: float = 0.0
    logprobs: int | None = None
    response_format: dict | None = field(default=None, hash=False)
    key: str | None = field(default=None, compare=False)
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    extra_body: dict | None = field(default=None, hash=False)

    def body(self, model: str) -> dict[str, Any]:
        """The JSON body sent to /chat/completions."""
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = self.logprobs
        if self.response_format is not None:
            body["response_format"] = self.response_format
        if self.stop:
            body["stop"] = list(self.stop)
        if self.seed is not None:
            body["seed"] = self.seed
        if self.extra_body:
            body.update(self.extra_body)
        return body

    def cache_hash(self) -> str:
        """sha256 of the canonical request JSON (model excluded: it is the other half of the key)."""
        body = self.body(model="")
        del body["model"]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChatResult:
    """The answer to one request. `error` is set (and `text` is None) when all retries failed.

    `top_logprobs` has one dict per generated token, {token: logprob} over the
    top-k alternatives the server returned, in the server's order.
    """

    text: str | None
    top_logprobs: list[dict[str, float]] | None
    model: str
    cached: bool = False
    error: str | None = None
    key: str | None = None
    finish_reason: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ClientStats:
    """Counters of one ChatClient: HTTP calls made, cache hits, retries, final errors."""

    requests: int = 0
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    ok: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class ResponseCache:
    """Successful chat answers in a sqlite file, keyed by (model, request hash).

    Safe across threads and processes: WAL journal, a busy timeout, and one
    connection per thread.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        created = not self.path.exists()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " model TEXT NOT NULL, request_sha256 TEXT NOT NULL, response TEXT NOT NULL,"
                " created_at REAL NOT NULL, PRIMARY KEY (model, request_sha256))"
            )
        if created:
            # Answers can quote the conversations they were asked about: owner-only.
            os.chmod(self.path, 0o600)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            # Switching a new file to WAL takes an exclusive lock that does not wait on the busy
            # timeout: concurrent openers get "database is locked" at once, so retry briefly.
            for attempt in range(100):
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 99:
                        raise
                    time.sleep(0.01 * (1 + attempt % 10))
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, model: str, request_sha256: str) -> dict | None:
        row = self._conn().execute(
            "SELECT response FROM responses WHERE model = ? AND request_sha256 = ?", (model, request_sha256)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, model: str, request_sha256: str, response: dict) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO responses (model, request_sha256, response, created_at) VALUES (?, ?, ?, ?)",
            (model, request_sha256, json.dumps(response, ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        return self._conn().execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _Retryable(Exception):
    """An attempt failed in a way worth another try."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Fatal(Exception):
    """An attempt failed in a way another try cannot fix (e.g. 400, 401)."""


class ChatClient:
    """Async OpenAI-compatible chat client with bounded concurrency, retries and a cache.

    Example:
        >>> client = ChatClient(Endpoint.from_env(), concurrency=8)
        >>> results = client.chat_many(requests, on_result=lambda i, r: print(i, r.text))
        >>> client.stats.as_dict()
    """

    def __init__(
        self,
        endpoints: Endpoint | Sequence[Endpoint],
        *,
        concurrency: int = 8,
        timeout_s: float = 60,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        cache: ResponseCache | None = None,
        structured_form: str = "auto",
    ):
        self.endpoints: list[Endpoint] = [endpoints] if isinstance(endpoints, Endpoint) else list(endpoints)
        if not self.endpoints:
            raise ConfigError("ChatClient needs at least one Endpoint")
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        if structured_form not in STRUCTURED_FORMS:
            raise ConfigError(f"structured_form must be one of {STRUCTURED_FORMS}, got {structured_form!r}")
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.cache = cache
        self.stats = ClientStats()
        self._secrets = sorted({e.api_key for e in self.endpoints if e.api_key}, key=len, reverse=True)
        self._in_flight = [0] * len(self.endpoints)
        # Per endpoint, the structured-output form it takes; "auto" until a json_schema
        # request gets an answer (json_schema) or is refused while json_object is taken.
        self._forms = [structured_form] * len(self.endpoints)
        self._rr = itertools.count()
        self._loop_state: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore, httpx.AsyncClient] | None = None

    @classmethod
    def from_env(cls, **kwargs: Any) -> ChatClient:
        """A client over the endpoints named by CURATE_LLM_* environment variables."""
        return cls(Endpoint.from_env(), **kwargs)

    def __repr__(self) -> str:
        return f"ChatClient(endpoints={self.endpoints!r}, concurrency={self.concurrency})"

    # -- public API -----------------------------------------------------------------

    async def achat(self, req: ChatRequest) -> ChatResult:
        """Answer one request; never raises for server trouble, returns a result with `error` instead."""
        self.stats.requests += 1
        digest = req.cache_hash()
        if self.cache is not None:
            for model in dict.fromkeys(e.model for e in self.endpoints):
                hit = self.cache.get(model, digest)
                if hit is not None:
                    self.stats.cache_hits += 1
                    return ChatResult(
                        text=hit["text"],
                        top_logprobs=hit.get("top_logprobs"),
                        model=hit.get("model", model),
                        cached=True,
                        key=req.key,
                        finish_reason=hit.get("finish_reason"),
                    )
        semaphore, http = self._state()
        async with semaphore:
            result, endpoint_model = await self._call_with_retries(http, req)
        if result.error is None:
            self.stats.ok += 1
            if self.cache is not None:
                # Stored under the endpoint's model name, the one later lookups use.
                self.cache.put(
                    endpoint_model,
                    digest,
                    {
                        "text": result.text,
                        "top_logprobs": result.top_logprobs,
                        "model": result.model,
                        "finish_reason": result.finish_reason,
                    },
                )
        else:
            self.stats.errors += 1
        return result

    def chat_many(
        self,
        reqs: Sequence[ChatRequest],
        *,
        on_result: Callable[[int, ChatResult], None] | None = None,
    ) -> list[ChatResult]:
        """Answer many requests concurrently (at most `concurrency` in flight); results keep input order.

        `on_result(index, result)` is called as each finishes, e.g. to write
        verdicts incrementally so an interrupted run loses nothing.
        """

        async def run_all() -> list[ChatResult]:
            try:
                async def one(i: int, r: ChatRequest) -> ChatResult:
                    res = await self.achat(r)
                    if on_result is not None:
                        on_result(i, res)
                    return res

                return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(reqs))))
            finally:
                await self.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run_all())
        # Called from inside a running loop (a notebook): run ours in a worker thread.
        box: list[Any] = []

        def worker() -> None:
            try:
                box.append(asyncio.run(run_all()))
            except BaseException as exc:  # re-raised in the caller's thread
                box.append(exc)

        t = threading.Thread(target=worker, name="chat_many", daemon=True)
        t.start()
        t.join()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def chat(self, req: ChatRequest) -> ChatResult:
        """Answer one request synchronously."""
        return self.chat_many([req])[0]

    async def aclose(self) -> None:
        """Close the HTTP connections of the current event loop."""
        if self._loop_state is not None:
            _, _, http = self._loop_state
            self._loop_state = None
            await http.aclose()

    # -- internals ------------------------------------------------------------------

    def _state(self) -> tuple[asyncio.Semaphore, httpx.AsyncClient]:
        # Semaphores and connection pools belong to one event loop; chat_many runs
        # a fresh loop each call, so the state is rebuilt when the loop changes.
        loop = asyncio.get_running_loop()
        if self._loop_state is None or self._loop_state[0] is not loop:
            http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s),
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
                follow_redirects=False,
            )
            self._loop_state = (loop, asyncio.Semaphore(self.concurrency), http)
        return self._loop_state[1], self._loop_state[2]

    def _pick_endpoint(self) -> int:
        # Least busy first; ties broken round robin so idle replicas share the load.
        start = next(self._rr) % len(self.endpoints)
        order = [(start + k) % len(self.endpoints) for k in range(len(self.endpoints))]
        return min(order, key=lambda i: self._in_flight[i])

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(MAX_BACKOFF_S, self.backoff_s * (2**attempt)) * _JITTER.uniform(0.5, 1.5)
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, MAX_RETRY_AFTER_S))
        return backoff

    async def _call_with_retries(self, http: httpx.AsyncClient, req: ChatRequest) -> tuple[ChatResult, str]:
        last_error = "no attempt made"
        model = self.endpoints[0].model
        attempt = 0
        for attempt in range(self.max_retries + 1):
            idx = self._pick_endpoint()
            endpoint = self.endpoints[idx]
            model = endpoint.model
            self._in_flight[idx] += 1
            self.stats.calls += 1
            try:
                # The whole attempt has one deadline: httpx's read timeout restarts
                # on every byte, so a server dripping bytes would otherwise never time out.
                result = await asyncio.wait_for(self._attempt(http, idx, req), timeout=self.timeout_s)
                return ChatResult(
                    text=result.text,
                    top_logprobs=result.top_logprobs,
                    model=result.model,
                    cached=False,
                    error=None,
                    key=req.key,
                    finish_reason=result.finish_reason,
                    attempts=attempt + 1,
                ), model
            except _Fatal as exc:
                last_error = self._scrub(str(exc))
                log.warning("LLM request %s to %s failed, not retrying: %s", req.key or "", endpoint.base_url, last_error)
                break
            except (_Retryable, asyncio.TimeoutError, httpx.TransportError) as exc:
                retry_after = getattr(exc, "retry_after", None)
                if isinstance(exc, asyncio.TimeoutError):
                    last_error = f"timed out after {self.timeout_s:g}s"
                elif isinstance(exc, httpx.TransportError):
                    last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                else:
                    last_error = str(exc)
                last_error = self._scrub(last_error)
                if attempt < self.max_retries:
                    delay = self._delay(attempt, retry_after)
                    self.stats.retries += 1
                    log.info(
                        "LLM request %s to %s: %s; retry %d/%d in %.2fs",
                        req.key or "", endpoint.base_url, last_error, attempt + 1, self.max_retries, delay,
                    )
                    await asyncio.sleep(delay)
                else:
                    log.warning(
                        "LLM request %s to %s failed after %d attempts: %s",
                        req.key or "", endpoint.base_url, attempt + 1, last_error,
                    )
            finally:
                self._in_flight[idx] -= 1
        failed = ChatResult(
            text=None, top_logprobs=None, model=model, cached=False, error=last_error,
            key=req.key, attempts=attempt + 1,
        )
        return failed, model

    async def _attempt(self, http: httpx.AsyncClient, idx: int, req: ChatRequest) -> ChatResult:
        endpoint = self.endpoints[idx]
        headers = {"Content-Type": "application/json"}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        body = req.body(endpoint.model)
        json_object = as_json_object(body)
        form = self._forms[idx]
        if json_object is not None and form == "json_object":
            body = json_object

        async def post(b: dict) -> httpx.Response:
            return await http.post(f"{endpoint.base_url}/chat/completions",
                                   content=json.dumps(b, ensure_ascii=False).encode("utf-8"), headers=headers)

        resp = await post(body)
        if json_object is not None and form == "auto":
            if resp.status_code == 200:
                self._forms[idx] = "json_schema"
            elif resp.status_code in (400, 422, 500) and "response_format" in resp.text and "json_schema" in resp.text:
                # A server that names the form it refuses (llama-cpp-python 0.3.36: HTTP 500, "('body',
                # 'response_format', 'type') ... Input should be 'text' or 'json_object' ... 'json_schema'")
                # is asked again at once in llama.cpp's json_object form; kept for the endpoint if answered.
                retry = await post(json_object)
                self.stats.calls += 1
                if retry.status_code == 200:
                    log.info("%s refuses response_format json_schema (HTTP %d); sending json_object with the "
                             "schema (llama.cpp's form) from now on", endpoint.base_url, resp.status_code)
                    self._forms[idx] = "json_object"
                    resp = retry
        if resp.status_code != 200:
            detail = _short(resp.text)
            message = f"HTTP {resp.status_code} from {endpoint.base_url}: {detail}"
            if resp.status_code in _RETRY_STATUS or resp.status_code >= 500:
                raise _Retryable(message, _retry_after(resp.headers.get("retry-after")))
            raise _Fatal(message)
        try:
            payload = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Retryable(f"unparseable JSON body from {endpoint.base_url}: {_short(resp.text)!r}") from exc
        return parse_chat_response(payload, endpoint.model)


def parse_chat_response(payload: Any, default_model: str) -> ChatResult:
    """Read text, finish reason and per-token top logprobs out of an OpenAI chat.completion body."""
    try:
        choice = payload["choices"][0]
        message = choice["message"]
        text = message.get("content")
    except (KeyError, IndexError, TypeError) as exc:
        raise _Retryable(f"malformed chat completion (no choices[0].message): {_short(json.dumps(payload))!r}") from exc
    if not isinstance(text, str):
        raise _Retryable("chat completion has no text content")
    top: list[dict[str, float]] | None = None
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
        top = []
        for tok in logprobs["content"]:
            alts = tok.get("top_logprobs") or []
            entry = {a["token"]: float(a["logprob"]) for a in alts if "token" in a and a.get("logprob") is not None}
            if not entry and "token" in tok and tok.get("logprob") is not None:
                entry = {tok["token"]: float(tok["logprob"])}
            top.append(entry)
    model = payload.get("model") if isinstance(payload.get("model"), str) else default_model
    return ChatResult(
        text=text, top_logprobs=top, model=model or default_model, finish_reason=choice.get("finish_reason")
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(text: str, limit: int = 200) -> str:
    text = text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def require_ok(result: ChatResult) -> str:
    """The text of a successful result, else LLMError naming the failure."""
    if result.error is not None or result.text is None:
        raise LLMError(f"LLM request {result.key or ''} failed: {result.error}; check the server and rerun")
    return result.text


# ---- the one way to build a client -----------------------------------------------------
CACHE_FILE = "llm_responses.sqlite"


def lake_cache_dir(lake_root: str | os.PathLike) -> Path:
    """Where a lake keeps its caches (answers, decontam indexes): `<lake>/_cache`."""
    return Path(lake_root) / "_cache"


def endpoints(base_urls: str | Sequence[str] | None, model: str | None, *, api_key: str | None = None) -> list[Endpoint]:
    """Endpoints for `base_urls` (a list, or comma-separated replicas) and `model`, each
    defaulting to CURATE_LLM_BASE_URL / CURATE_LLM_MODEL; the key to CURATE_LLM_API_KEY."""
    urls = base_urls if base_urls is not None else settings.llm_base_url()
    model = model or settings.llm_model()
    if isinstance(urls, str):
        urls = urls.split(",")
    urls = [u.strip() for u in (urls or []) if u and u.strip()]
    if not urls or not model:
        raise ConfigError(
            "no LLM configured: pass a base URL and a model, or set CURATE_LLM_BASE_URL (e.g. http://127.0.0.1:8000/v1)"
            " and CURATE_LLM_MODEL; `curate serve-model` starts one"
        )
    key = api_key if api_key is not None else settings.llm_api_key()
    return [Endpoint(u, model, key) for u in urls]


def chat_client(base_urls: str | Sequence[str] | None, model: str | None, *, cache_dir: str | os.PathLike | None = None,
                api_key: str | None = None, **options: Any) -> ChatClient:
    """A `ChatClient` over `endpoints(base_urls, model)`, caching answers in
    `<cache_dir>/llm_responses.sqlite` (no cache without `cache_dir`). `options` go to
    `ChatClient` (concurrency, timeout_s, max_retries, backoff_s)."""
    cache = ResponseCache(Path(cache_dir) / CACHE_FILE) if cache_dir is not None else None
    return ChatClient(endpoints(base_urls, model, api_key=api_key), cache=cache, **options)
