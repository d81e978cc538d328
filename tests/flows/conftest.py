import os

import pytest

# Prefect's API server on a loaded 2-core machine can take a minute to answer.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    from flows.testing import ensure_harness

    return ensure_harness()


@pytest.fixture(scope="session")
def demo(tmp_path_factory, prefect_api):
    """One pipeline run over the demo logs, shared by the tests (do not modify it)."""
    from flows.testing import demo_run

    return demo_run(tmp_path_factory.mktemp("demo"))
