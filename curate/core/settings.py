"""Environment settings: endpoints, secrets and locations, read in one place.

Only secrets, endpoints and locations come from the environment; stage behaviour
lives in the config dataclasses next to each stage.
"""

from __future__ import annotations

import os
from pathlib import Path


def lake_root() -> Path:
    """The lake root: `CURATE_LAKE`, else `./lake`."""
    return Path(os.environ.get("CURATE_LAKE", "lake"))


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def llm_base_url() -> str | None:
    return env("CURATE_LLM_BASE_URL")


def llm_model() -> str | None:
    return env("CURATE_LLM_MODEL")


def llm_api_key() -> str | None:
    return env("CURATE_LLM_API_KEY")


def hf_token() -> str | None:
    return env("HF_TOKEN")
