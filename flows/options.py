"""Typed flow parameters (pydantic, so Prefect validates them and shows their schema).

Secrets never travel as parameters (Prefect stores and displays parameters): the LLM
API key comes from `CURATE_LLM_API_KEY`, the Hub token from `HF_TOKEN`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LLMOptions(BaseModel):
    """Where the LLM tiers (moderation tier 2, topic labels, decontam judge) get a model.

    `off`: no LLM tier runs (the default: offline, minutes). `serve`: the run starts a
    local model server (`curate.models.serve_model.ModelServer`, SmolLM2 on loopback) and stops
    it at the end. `endpoint`: an OpenAI-compatible server that is already running.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["off", "serve", "endpoint"] = "off"
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL ending in /v1 (mode=endpoint)")
    model: str | None = Field(default=None, description="model name at the endpoint (mode=endpoint)")
    concurrency: int = Field(default=4, ge=1, le=256)
    timeout_s: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "LLMOptions":
        if self.mode == "endpoint" and not (self.base_url and self.model):
            raise ValueError("mode=endpoint needs base_url and model")
        return self

    @property
    def enabled(self) -> bool:
        return self.mode != "off"


class ExportOptions(BaseModel):
    """What the export keeps and where it goes. Only redacted text ever leaves the lake."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="chatcurate-demo", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
    drop_duplicates: bool = True
    drop_flagged: bool = False
    drop_contaminated: bool = True
    shard_rows: int = Field(default=100_000, ge=1)
    license: str = "other"
    repo_id: str | None = Field(default=None, description="push to this Hub dataset repo when HF_TOKEN is set")
    private: bool = True


def endpoint_options(base_url: str, model: str, like: LLMOptions) -> LLMOptions:
    return LLMOptions(mode="endpoint", base_url=base_url, model=model, concurrency=like.concurrency,
                      timeout_s=like.timeout_s)


@contextlib.contextmanager
def served_llm(options: LLMOptions) -> Iterator[LLMOptions]:
    """For `mode=serve`, start a local model server for the block and yield endpoint options."""
    if options.mode != "serve":
        yield options
        return
    import os

    from curate.models.serve_model import ModelServer  # lazy: only runs that ask for it need it

    with ModelServer() as server:
        ep = server.endpoint
        # The server's key (if any) travels in the environment, never as a flow parameter.
        previous = os.environ.get("CURATE_LLM_API_KEY")
        if ep.api_key:
            os.environ["CURATE_LLM_API_KEY"] = ep.api_key
        try:
            yield endpoint_options(ep.base_url, ep.model, options)
        finally:
            if ep.api_key:
                if previous is None:
                    os.environ.pop("CURATE_LLM_API_KEY", None)
                else:
                    os.environ["CURATE_LLM_API_KEY"] = previous


def chat_client(options: LLMOptions, lake_root: str | Path):
    """A `ChatClient` for `options` (None when off), caching answers beside the lake."""
    if options.mode == "off":
        return None
    if options.mode == "serve":
        raise ValueError("start the server with served_llm() first; tasks get endpoint options")
    from curate.core import settings
    from curate.models.llm import ChatClient, Endpoint, ResponseCache

    endpoints = [Endpoint(u.strip(), options.model, settings.llm_api_key())
                 for u in (options.base_url or "").split(",") if u.strip()]
    cache = ResponseCache(Path(lake_root) / "_flows" / "llm_cache.sqlite")
    return ChatClient(endpoints, concurrency=options.concurrency, timeout_s=options.timeout_s, cache=cache)
