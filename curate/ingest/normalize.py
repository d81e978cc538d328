"""Map one parsed record of a supported format onto the canonical schema.

Normalisation rules (documented in the README):
- roles are mapped case-insensitively through `schema.ROLE_ALIASES`; any other role
  (tool, function, ...) quarantines the record as `unknown_role`;
- content given as a list of text parts (OpenAI style) is joined with newlines; any
  other non-string content quarantines as `non_string_content`; `null` content counts as
  empty;
- NUL characters are removed from content (recorded in metadata `_normalized`);
- a conversation with no non-empty user message quarantines as `no_user_content`;
- limits: `max_messages` and `max_message_chars` (see `IngestConfig`);
- `user_id` is replaced by a salted SHA-256 (first 32 hex digits);
- `tstamp` accepts Unix seconds (int/float) or ISO-8601 strings; the raw value goes to
  metadata when it is not exactly representable in microseconds;
- every top-level field we do not map, and every extra field of a message, is kept in
  `metadata` (JSON), so LMSYS-Chat-1M rows round-trip losslessly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
import xxhash

from curate.core.reasons import Reason
from curate.core.schema import ROLE_ALIASES

# Field names per format: (id fields, message list fields, role key, content key)
FIELDS = {
    "openai": (("id", "conversation_id"), ("messages",), "role", "content"),
    "sharegpt": (("id", "conversation_id"), ("conversations", "items"), "from", "value"),
    "lmsys": (("conversation_id", "id"), ("conversation",), "role", "content"),
}
TSTAMP_FIELDS = ("tstamp", "timestamp", "created", "created_at")
USER_FIELDS = ("user_id", "user", "judge")


@dataclass(frozen=True, slots=True)
class Limits:
    max_messages: int = 2000
    max_message_chars: int = 1_000_000
    user_id_salt: str = "chatcurate"


class Rejected(Exception):
    """Raised inside normalisation; carries a reason code and a detail."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def content_hash(messages: list[tuple[str, str]]) -> str:
    """xxh3-128 over the canonical (role, content) sequence: identical conversations share it."""
    h = xxhash.xxh3_128()
    for role, content in messages:
        h.update(role.encode())
        h.update(b"\x1f")
        h.update(content.encode("utf-8", errors="surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


def hash_user(value: object, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()[:32]


def _text(value: object, where: str) -> tuple[str, bool]:
    """Content as text; returns (text, had_nul)."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(
        isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text") and isinstance(p.get("text"), str)
        for p in value
    ):
        text = "\n".join(p["text"] for p in value)
    else:
        raise Rejected(Reason.NON_STRING_CONTENT, f"{where}: content is {type(value).__name__}, not text")
    if "\x00" in text:
        return text.replace("\x00", ""), True
    return text, False


def _tstamp(value: object) -> tuple[datetime | None, bool]:
    """Parse a timestamp; second item says whether the raw value must be kept in metadata."""
    if value is None:
        return None, False
    if isinstance(value, bool):
        return None, True
    if isinstance(value, (int, float)):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds since the epoch
            seconds /= 1000.0
        try:
            dt = datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None, True
        exact = isinstance(value, int) or round(seconds * 1e6) / 1e6 == seconds
        return dt, not exact
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None, True
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc), False
    return None, True


def normalize(obj: object, fmt: str, limits: Limits) -> dict:
    """Return the canonical row fields for one record, or raise `Rejected`.

    The returned dict has: source_id, model, conversation, turn, tstamp, user_id,
    content_hash, metadata (JSON string).
    """
    try:
        return _normalize(obj, fmt, limits)
    except RecursionError:
        # str() or repr() of a value nested ~1000 deep (orjson parses up to 1024 levels)
        raise Rejected(Reason.NESTING_TOO_DEEP, "a field is nested too deeply to store") from None
    except orjson.JSONEncodeError as exc:
        # metadata JSON: orjson writes at most 255 levels and 64-bit integers
        reason = Reason.NESTING_TOO_DEEP if "recursion" in str(exc).lower() else Reason.INVALID_FIELD
        raise Rejected(reason, f"an unmapped field cannot be stored as JSON: {exc}"[:300]) from None


def _normalize(obj: object, fmt: str, limits: Limits) -> dict:
    if not isinstance(obj, dict):
        raise Rejected(Reason.NOT_AN_OBJECT, f"record is a JSON {type(obj).__name__}, not an object")
    if fmt not in FIELDS:
        raise Rejected(Reason.UNKNOWN_FORMAT, f"the file's format was not detected; keys: {sorted(obj)[:10]}")
    id_fields, list_fields, role_key, content_key = FIELDS[fmt]
    rest = dict(obj)
    normalized: list[str] = []

    list_field = next((f for f in list_fields if f in rest), None)
    if list_field is None:
        raise Rejected(Reason.MISSING_MESSAGES, f"no {' or '.join(list_fields)} field")
    turns = rest.pop(list_field)
    if not isinstance(turns, list):
        raise Rejected(Reason.MESSAGES_NOT_LIST, f"{list_field} is {type(turns).__name__}, not a list")
    if len(turns) > limits.max_messages:
        raise Rejected(Reason.TOO_MANY_MESSAGES, f"{len(turns)} messages > max_messages={limits.max_messages}")

    messages: list[tuple[str, str]] = []
    extras: dict[str, dict] = {}
    has_user_text = False
    for i, msg in enumerate(turns):
        if not isinstance(msg, dict):
            raise Rejected(Reason.MESSAGE_NOT_OBJECT, f"message {i} is {type(msg).__name__}")
        role_raw = msg.get(role_key, msg.get("role"))
        if role_raw is None:
            raise Rejected(Reason.MISSING_ROLE, f"message {i} has no {role_key!r}")
        role = ROLE_ALIASES.get(role_raw.strip().lower()) if isinstance(role_raw, str) else None
        if role is None:
            raise Rejected(Reason.UNKNOWN_ROLE, f"message {i} role {str(role_raw)[:50]!r} is not mapped")
        content_field = content_key if content_key in msg else ("content" if "content" in msg else content_key)
        text, had_nul = _text(msg.get(content_field), f"message {i}")
        if had_nul:
            normalized.append(f"nul_removed:{i}")
        if len(text) > limits.max_message_chars:
            raise Rejected(
                Reason.MESSAGE_TOO_LARGE,
                f"message {i} has {len(text)} chars > max_message_chars={limits.max_message_chars}",
            )
        if role == "user" and text.strip():
            has_user_text = True
        messages.append((role, text))
        extra = {k: v for k, v in msg.items() if k not in (role_key, content_field)}
        if role_raw != role:
            extra["_role"] = role_raw
        if extra:
            extras[str(i)] = extra
    if not has_user_text:
        raise Rejected(Reason.NO_USER_CONTENT, "no non-empty user message")

    source_id = None
    for f in id_fields:
        if f in rest and rest[f] not in (None, ""):
            value = rest.pop(f)
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise Rejected(Reason.INVALID_FIELD, f"id field {f!r} is {type(value).__name__}")
            source_id = str(value).replace("\x00", "")
            break

    model = rest.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise Rejected(Reason.INVALID_FIELD, f"model is {type(model).__name__}, not a string")

    tstamp = None
    for f in TSTAMP_FIELDS:
        if f in rest:
            raw_ts = rest[f]
            tstamp, keep_raw = _tstamp(raw_ts)
            if not keep_raw:
                rest.pop(f)
            break

    user_id = None
    for f in ("user_id", "user"):
        if f in rest and rest[f] not in (None, ""):
            user_id = hash_user(rest.pop(f), limits.user_id_salt)
            break

    turn = sum(1 for role, _ in messages if role == "user")
    if "turn" in rest and rest["turn"] == turn:
        rest.pop("turn")
    if extras:
        rest["_message_fields"] = extras
    if normalized:
        rest["_normalized"] = normalized
    metadata = orjson.dumps(rest, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS, default=str).decode() if rest else None
    return {
        "source_id": source_id,
        "model": model,
        "conversation": messages,
        "turn": turn,
        "tstamp": tstamp,
        "user_id": user_id,
        "content_hash": content_hash(messages),
        "metadata": metadata,
    }
