"""Stable snake_case reason codes for every quarantined or excluded row, defined in one place."""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    # ingest: the record could not be read
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    RECORD_TOO_LARGE = "record_too_large"
    DECOMPRESSED_TOO_LARGE = "decompressed_too_large"
    NESTING_TOO_DEEP = "nesting_too_deep"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_FORMAT = "unknown_format"
    NOT_A_LOG_FILE = "not_a_log_file"
    CORRUPT_PARQUET = "corrupt_parquet"
    # ingest: the record does not fit the canonical schema
    MISSING_MESSAGES = "missing_messages"
    MESSAGES_NOT_LIST = "messages_not_list"
    MESSAGE_NOT_OBJECT = "message_not_object"
    MISSING_ROLE = "missing_role"
    UNKNOWN_ROLE = "unknown_role"
    NON_STRING_CONTENT = "non_string_content"
    NO_USER_CONTENT = "no_user_content"
    MESSAGE_TOO_LARGE = "message_too_large"
    TOO_MANY_MESSAGES = "too_many_messages"
    INVALID_FIELD = "invalid_field"
    # ingest: the record collides with one already in the lake
    DUPLICATE_ID_CONFLICT = "duplicate_id_conflict"
    DUPLICATE_RECORD = "duplicate_record"
    # moderation LLM tier: a message got no verdict
    LLM_INVALID_OUTPUT = "llm_invalid_output"
    LLM_REQUEST_FAILED = "llm_request_failed"
    # export: a conversation left out of the exported dataset
    EXPORT_DUPLICATE = "duplicate"
    EXPORT_CONTAMINATED = "benchmark_contamination"
    EXPORT_FLAGGED = "moderation_flagged"

    def __str__(self) -> str:  # so f-strings and Arrow columns carry the code
        return self.value


REASON_HELP: dict[str, str] = {
    "invalid_utf8": "the record's bytes are not valid UTF-8",
    "invalid_json": "the record is not valid JSON (truncated, malformed)",
    "record_too_large": "the record exceeds max_record_bytes",
    "decompressed_too_large": "the stream decompresses past max_decompressed_bytes (a zip bomb?); the rest is not read",
    "nesting_too_deep": "the record parses but is nested too deeply to store or hash",
    "not_an_object": "the record is JSON but not an object",
    "unknown_format": "the file's log format could not be detected (pass --format)",
    "not_a_log_file": "no record of the file fits a log format (a manifest, dataset_info.json): the file is one record",
    "corrupt_parquet": "a Parquet file's footer or a data page cannot be read; the rest of the file is one record",
    "missing_messages": "no messages/conversations field",
    "messages_not_list": "the messages field is not a list",
    "message_not_object": "a message is not an object",
    "missing_role": "a message has no role",
    "unknown_role": "a message role is not one of the mapped roles",
    "non_string_content": "a message content is not text",
    "no_user_content": "the conversation has no non-empty user message",
    "message_too_large": "a message exceeds max_message_chars",
    "too_many_messages": "the conversation exceeds max_messages",
    "invalid_field": "a mapped field (model, tstamp, ...) has an unusable type",
    "duplicate_id_conflict": "the id is already in the lake with different content",
    "duplicate_record": "the same id with the same content is already in the lake",
    "llm_invalid_output": "the model's answers failed schema validation on every attempt",
    "llm_request_failed": "the model server did not answer after the client's retries",
    "duplicate": "export: dedup marked the conversation a duplicate of a kept one",
    "benchmark_contamination": "export: the conversation quotes or rephrases a benchmark item",
    "moderation_flagged": "export: moderation flagged a message (drop_flagged)",
}
