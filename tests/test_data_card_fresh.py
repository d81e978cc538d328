"""The committed data card of the demo run (data_cards/demo) is what the pipeline generates.

When this fails, a stage changed what the demo run produces: regenerate the card with
`make card` and commit it.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "data_cards" / "demo"

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from flows.testing import demo_run

    return demo_run(tmp_path_factory.mktemp("demo"))


def test_committed_card_is_fresh(demo):
    from curate.export.data_card import diff_cards

    problems = diff_cards(demo.out / "data_card", COMMITTED)
    assert problems == [], (
        "data_cards/demo is stale; regenerate it with `make card` and commit it\n"
        + "\n".join(problems)
    )


def test_committed_card_parses_and_holds_no_run_specific_values():
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(COMMITTED / "README.md")
    assert card.data.license and card.data.size_categories and card.data.task_categories
    assert card.data.configs and card.data.dataset_info["features"]
    text = (COMMITTED / "README.md").read_text()
    import re

    assert not re.search(r"\d{8}T\d{6}-[0-9a-f]{8}", text)  # run ids
    assert "/tmp/" not in text and str(REPO) not in text
    for img in re.findall(r"\]\((images/[^)]+)\)", text):
        assert (COMMITTED / img).exists(), img


def test_diff_cards_catches_a_stale_card(tmp_path):
    import shutil

    from curate.export.data_card import diff_cards

    shutil.copytree(COMMITTED, tmp_path / "card")
    assert diff_cards(COMMITTED, tmp_path / "card") == []
    readme = tmp_path / "card" / "README.md"
    readme.write_text(readme.read_text().replace("conversations", "chats", 1))
    assert diff_cards(COMMITTED, tmp_path / "card")
