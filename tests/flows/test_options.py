"""The flows' LLM options: the client spreads requests over every endpoint of a comma-separated
`--llm-url`; `--llm serve --llm-model M` serves M (what `make run` does with qwen-coder-1.5b)."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from curate.models.llm import ChatRequest  # noqa: E402
from flows.options import LLMOptions, chat_client, served_llm  # noqa: E402
from tests.faults.fault_server import FaultServer  # noqa: E402


def ask(text: str) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], max_tokens=8)


def test_chat_client_spreads_requests_over_comma_separated_urls(tmp_path):
    with FaultServer() as a, FaultServer() as b:
        options = LLMOptions(mode="endpoint", base_url=f"{a.url}, {b.url}", model="fake-model", concurrency=4)
        client = chat_client(options, tmp_path)
        try:
            assert [e.base_url for e in client.endpoints] == [a.url, b.url]
            results = client.chat_many([ask(f"q{i}") for i in range(40)])
        finally:
            client.cache.close()
        assert [r.text for r in results] == [f"echo: q{i}" for i in range(40)]  # answers in request order
        assert a.chat_calls + b.chat_calls == 40
        # both replicas did a share; how even it is depends on their speed (least busy first), which
        # a loaded machine skews (9 of 40 once): the picking rule itself is checked below
        assert a.chat_calls >= 1 and b.chat_calls >= 1


def test_the_least_busy_endpoint_is_picked_and_ties_go_round_robin():
    from curate.models.llm import ChatClient, Endpoint

    client = ChatClient([Endpoint("http://a/v1", "m"), Endpoint("http://b/v1", "m"), Endpoint("http://c/v1", "m")])
    assert [client._pick_endpoint() for _ in range(6)] == [0, 1, 2, 0, 1, 2]  # idle: round robin
    client._in_flight = [2, 1, 3]
    assert {client._pick_endpoint() for _ in range(6)} == {1}  # busy: the least busy, whatever the turn
    client._in_flight = [1, 0, 0]
    assert {client._pick_endpoint() for _ in range(6)} == {1, 2}  # ties: the least busy take turns



def test_serve_mode_serves_the_model_it_is_given(tmp_path, monkeypatch):
    # A stand-in vLLM (tests/faults/fake_backend) on a model directory: the yielded endpoint
    # names that model, not the default one.
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests" / "faults" / "fake_backend"), str(ROOT)]))
    monkeypatch.setenv("CURATE_VLLM_PYTHON", sys.executable)
    with served_llm(LLMOptions(mode="serve", model=str(model))) as options:
        assert options.mode == "endpoint" and options.model == "my-model"
        client = chat_client(options, tmp_path)
        try:
            assert client.chat(ask("hi")).text == "echo: hi"
        finally:
            client.cache.close()


def test_serve_mode_refuses_an_unknown_model_before_the_run_starts():
    with pytest.raises(ValueError, match="unknown model 'qwen-7b'.*qwen-coder-1.5b"):
        LLMOptions(mode="serve", model="qwen-7b")
    assert LLMOptions(mode="serve", model="qwen-coder-1.5b").model == "qwen-coder-1.5b"
    assert LLMOptions(mode="serve").model is None  # the default model (smollm2)
