"""Prefect flows: thin orchestration over the library stages.

`flows.pipeline` runs ingest -> dedup -> tag -> decontam -> export in order; each stage
also has its own flow module. The libraries (`curate/`, `decontam/`, `moderation/`)
never import prefect; everything Prefect-specific lives here.

Importing this package sets the offline defaults Prefect needs before prefect itself
is imported (a project-local `PREFECT_HOME`, no analytics, a startup timeout for the
ephemeral API server that survives a busy 2-core machine). Values already in the
environment win.
"""

from __future__ import annotations

import os
from pathlib import Path

_DEFAULTS = {
    "PREFECT_HOME": str(Path.cwd() / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # the ephemeral API server is a subprocess; on a loaded 2-core machine it can take a
    # minute to answer, and Prefect's own default gives up after 20 seconds
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
for _name, _value in _DEFAULTS.items():
    os.environ.setdefault(_name, _value)
