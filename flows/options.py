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
    local model server (`curate.models.serve_model.ModelServer` on loopback) for `model`, a
    `curate fetch-model` name or a model path (default SmolLM2; `make run` serves
    qwen-coder-1.5b), and stops it at the end. `endpoint`: an OpenAI-compatible server that is
    already running, `model` being its name there.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["off", "serve", "endpoint"] = "off"
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL ending in /v1 (mode=endpoint)")
    model: str | None = Field(default=None, description="model name at the endpoint (mode=endpoint); the model to "
                              "serve (mode=serve: a `curate fetch-model` name or a path; default smollm2)")
    concurrency: int = Field(default=4, ge=1, le=256)
    timeout_s: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "LLMOptions":
        if self.mode == "endpoint" and not (self.base_url and self.model):
            raise ValueError("mode=endpoint needs base_url and model")
        if self.mode == "serve" and self.model:
            from curate.models.fetch_model import MODELS

            # Checked here, not when the server starts after ingest and dedup (minutes in).
            if self.model not in MODELS and not Path(self.model).exists():
                raise ValueError(f"mode=serve: unknown model {self.model!r}; known: {', '.join(MODELS)}, "
                                 "or a Hugging Face directory / .gguf path")
        return self

    @property
    def enabled(self) -> bool:
        return self.mode != "off"


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

    from curate.models.serve_model import ModelServer, ServeConfig  # lazy: only runs that ask for it need it

    with ModelServer(ServeConfig(model=options.model) if options.model else None) as server:
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
    from curate.models.llm import chat_client as make_client, lake_cache_dir

    return make_client(options.base_url, options.model, cache_dir=lake_cache_dir(lake_root),
                       concurrency=options.concurrency, timeout_s=options.timeout_s)
