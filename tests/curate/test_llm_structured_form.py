"""ChatClient sends a JSON schema in the form the server takes: OpenAI's/vLLM's `json_schema`, or
llama-cpp-python's `{"type": "json_object", "schema": ...}` when the server refuses the first
(llama-cpp-python 0.3.36 answers HTTP 500 to it, so every structured call failed, #17)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from curate.core.errors import ConfigError  # noqa: E402
from curate.models.llm import ChatClient, ChatRequest, Endpoint, as_json_object  # noqa: E402
from tests.faults.fault_server import Fault, FaultServer  # noqa: E402

pytestmark = pytest.mark.timeout(60)

SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "topic_label", "schema": SCHEMA, "strict": True}}
# What llama-cpp-python 0.3.36's server answers to a json_schema response_format (HTTP 500).
LLAMACPP_REFUSAL = json.dumps({"error": {"message": (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}"), "type": "internal_server_error"}}
).encode()


def ask(text: str) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], response_format=JSON_SCHEMA, max_tokens=8)


def llamacpp_like(i: int, body: dict) -> Fault:
    form = (body.get("response_format") or {}).get("type")
    return Fault.http(500, body=LLAMACPP_REFUSAL) if form == "json_schema" else Fault.ok()


def client_for(srv: FaultServer, **kw) -> ChatClient:
    return ChatClient(Endpoint(srv.url, srv.model), backoff_s=0.01, timeout_s=5, concurrency=1, **kw)


def test_a_server_that_refuses_json_schema_gets_json_object_with_the_schema_from_then_on():
    with FaultServer(policy=llamacpp_like) as srv:
        client = client_for(srv)
        results = client.chat_many([ask(f"q{i}") for i in range(5)])
        assert [json.loads(r.text)["echo"] for r in results] == [f"q{i}" for i in range(5)]
        assert all(r.ok and r.attempts == 1 for r in results)
        forms = [b["response_format"] for b in srv.chat_bodies()]
    # One refused call, then every request (the refused one again at once) in llama.cpp's form.
    assert forms[0] == JSON_SCHEMA
    assert forms[1:] == [{"type": "json_object", "schema": SCHEMA}] * 5
    assert client.stats.calls == srv.chat_calls == 6 and client.stats.retries == 0


def test_an_error_that_does_not_name_the_form_is_retried_as_it_was():
    # A plain 500 (a busy vLLM) is no reason to drop the schema's form: retried unchanged.
    with FaultServer() as srv:
        srv.push(Fault.http(500))
        client = client_for(srv)
        assert client.chat(ask("q")).ok
        assert [b["response_format"] for b in srv.chat_bodies()] == [JSON_SCHEMA] * 2
        assert client.stats.retries == 1


def test_a_server_that_took_json_schema_keeps_it():
    with FaultServer() as srv:
        client = client_for(srv)
        assert client.chat(ask("first")).ok
        srv.push(Fault.http(500, body=LLAMACPP_REFUSAL))  # later trouble that happens to name the form
        assert client.chat(ask("second")).ok
        assert [b["response_format"]["type"] for b in srv.chat_bodies()] == ["json_schema"] * 3


def test_forms_can_be_fixed_and_requests_without_a_schema_are_left_alone():
    with FaultServer() as srv:
        client = client_for(srv, structured_form="json_object")
        assert client.chat(ask("q")).ok
        assert client.chat(ChatRequest([{"role": "user", "content": "plain"}], max_tokens=8)).ok
        first, second = srv.chat_bodies()
        assert first["response_format"] == {"type": "json_object", "schema": SCHEMA}
        assert "response_format" not in second
    assert as_json_object({"response_format": {"type": "json_object"}}) is None
    with pytest.raises(ConfigError, match="structured_form"):
        ChatClient(Endpoint("http://127.0.0.1:1/v1", "m"), structured_form="grammar")
