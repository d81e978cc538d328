"""The flows' LLM client spreads requests over every endpoint of a comma-separated `--llm-url`."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from curate.models.llm import ChatRequest  # noqa: E402
from flows.options import LLMOptions, chat_client  # noqa: E402
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
        assert a.chat_calls >= 10 and b.chat_calls >= 10  # both replicas did a share

