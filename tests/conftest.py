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
DEMO_LOGS = REPO / "curate" / "demo_logs"


@pytest.fixture
def lake(tmp_path):
    from curate.lake import Lake

    return Lake(tmp_path / "lake")


def needs_testbed(*parts: str) -> Path:
    path = TESTBED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/testbed is optional)")
    return path
