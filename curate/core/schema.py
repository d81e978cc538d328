"""The canonical conversation schema: one row per conversation.

It holds LMSYS-Chat-1M rows losslessly: the mapped columns carry what the
canonical schema names, and every field we did not map stays in `metadata` (JSON).
"""

from __future__ import annotations

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

CONVERSATIONS = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("source_file", pa.string()),
        ("source_format", pa.string()),
        ("source_index", pa.int64()),
        ("model", pa.string()),
        ("conversation", pa.list_(MESSAGE)),
        ("turn", pa.int32()),
        ("tstamp", pa.timestamp("us", tz="UTC")),
        ("user_id", pa.string()),
        ("content_hash", pa.string()),
        ("metadata", pa.string()),
        ("run_id", pa.string()),
    ]
)

QUARANTINE = pa.schema(
    [
        ("source_file", pa.string()),
        ("source_format", pa.string()),
        ("source_index", pa.int64()),
        ("byte_offset", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.binary()),
        ("run_id", pa.string()),
    ]
)

ROLES = ("system", "user", "assistant")

# Every role spelling seen in the supported formats, mapped to a canonical role.
ROLE_ALIASES: dict[str, str] = {
    "system": "system",
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
    "bard": "assistant",
}
