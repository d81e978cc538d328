"""The review page of the demo run: its data (default suite) and, in headless chromium, the
keyboard review whose decisions change what the export keeps (`make test-browser`)."""

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_pipeline import PLANTED

from curate.core.lake import Lake

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Screenshots of each section, for a person to look at (git-ignored, like all of out/).
SHOTS = Path(os.environ.get("REVIEW_SCREENSHOTS", REPO / "out" / "review-screenshots"))


def _page_data(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="review-data">(.*?)</script>', html, re.S).group(1))


def _lake_counts(lake: Lake) -> dict:
    con = lake.connect()
    one = lambda q: con.execute(q).fetchone()[0]  # noqa: E731
    pairs = sum(len(json.loads(m)) for (m,) in con.execute(
        "SELECT matches FROM decontam WHERE contaminated").fetchall())
    return {"pairs": pairs, "flagged": one("SELECT count(*) FROM decontam WHERE contaminated"),
            "dups": one("SELECT count(*) FROM dedup WHERE NOT is_representative"),
            "quarantine": one("SELECT count(*) FROM quarantine"),
            "moderation": one("SELECT count(*) FROM moderation WHERE flagged")}


def test_the_pipeline_writes_the_review_page_with_the_lakes_counts(demo):
    path = Path(demo.result["paths"]["review_page"])
    assert path == demo.out / "review" / "index.html"
    data = _page_data(path)
    c = _lake_counts(Lake(demo.lake))
    assert c["pairs"] >= 2 and c["dups"] >= 2 and c["quarantine"] >= 2 and c["moderation"] >= 1  # the demo plants them
    assert data["decontam"]["pairs_total"] == len(data["decontam"]["items"]) == c["pairs"]
    assert data["decontam"]["conversations_flagged"] == c["flagged"]
    assert data["duplicates"]["members_total"] == c["dups"]
    assert data["quarantine"]["total"] == c["quarantine"]
    assert data["moderation"]["moderation_flagged"] == c["moderation"]
    # the run reports' evidence reached the page
    assert any(i["ngrams"].get("report") for i in data["decontam"]["items"])


def test_make_run_prints_where_the_review_page_is(demo):
    from curate.cli.pipeline import format_paths

    assert f"review page:     {demo.out / 'review' / 'index.html'}" in format_paths(demo.result)


def test_no_planted_pii_value_is_on_the_review_page(demo):
    html = (demo.out / "review" / "index.html").read_text(encoding="utf-8")
    assert [v for v in PLANTED if v in html] == []
    assert "EMAIL_1" in html  # the page does show redacted messages


# ---- in the browser ----
@pytest.fixture
def browser(tmp_path):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): `make test-browser` installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={tempfile.mkdtemp()}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    # The system chromedriver, named explicitly: Selenium Manager never runs, nothing is downloaded.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _key(driver, keys: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.TAG_NAME, "body").send_keys(keys)


def _current(driver) -> str:
    return driver.execute_script("const c = document.querySelector('section.on .card.cur'); return c && c.dataset.key;")


def _go_to(driver, key: str, limit: int = 200) -> None:
    for _ in range(limit):
        if _current(driver) == key:
            return
        _key(driver, "j")
    raise AssertionError(f"{key} not reached with j")


def _export(lake: Lake, dest: Path, **options):
    from curate.export.export import ExportConfig, export_dataset

    res = export_dataset(lake, dest, ExportConfig(**options))
    return (set(pq.read_table(res.shards).column("conversation_id").to_pylist()),
            set(pq.read_table(res.exclusions_path).column("id").to_pylist()))


def _text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css).text


@pytest.mark.browser
def test_review_in_the_browser_moves_rows_across_the_export(demo, browser, tmp_path):
    from click.testing import CliRunner
    from flows.testing import copy_run

    from curate.cli import main

    run = copy_run(demo, tmp_path)
    lake = Lake(run.lake)
    page = run.out / "review" / "index.html"
    counts = _lake_counts(lake)

    t0 = time.perf_counter()
    browser.get(page.as_uri())
    assert browser.execute_script("return document.body.dataset.ready") == "1"
    assert time.perf_counter() - t0 < 30  # generous: the timed figure comes from benchmarks/bench_review.py
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    # every section renders with the lake's counts; a screenshot of each
    SHOTS.mkdir(parents=True, exist_ok=True)
    expected = {"1": ("#count-decontam-pairs b", counts["pairs"]), "2": ("#count-dup-members b", counts["dups"]),
                "3": ("#count-quarantine b", counts["quarantine"]), "4": ("#count-mod-flagged b", counts["moderation"])}
    for key, name in zip("1234", ("decontam", "duplicates", "quarantine", "moderation")):
        _key(browser, key)
        assert browser.execute_script("return document.body.dataset.tab") == name
        css, n = expected[key]
        assert int(_text(browser, css)) == n
        browser.save_screenshot(str(SHOTS / f"{name}.png"))
    _key(browser, "1")
    assert len(browser.find_elements("css selector", "#decontam-list .card")) == min(counts["pairs"], 50)
    assert len(browser.find_elements("css selector", "#quarantine-list tr[data-reason]")) == len(
        lake.connect().execute("SELECT DISTINCT reason FROM quarantine").fetchall())

    # a flagged pair and a duplicate the current export treats as the stage decided
    data = _page_data(page)
    pair = next(i for i in data["decontam"]["items"] if i["conversation_id"] == "he-verbatim-0")
    member = next(m for c in data["duplicates"]["clusters"] for m in c["members"] if m["kind"] == "near")
    kept, dropped = _export(lake, tmp_path / "before" / "ds")
    # an accepted duplicate must leave the export: compare under an export that keeps duplicates
    # unless the stage kept this member itself (a variant)
    options = {} if member["conversation_id"] in kept else {"drop_duplicates": False}
    kept, dropped = _export(lake, tmp_path / "before" / "ds", **options)
    assert pair["conversation_id"] in dropped and member["conversation_id"] in kept

    # j/k to the pair, r rejects it; 2, then j to the member, a accepts it; u undoes a third decision
    _go_to(browser, pair["key"])
    _key(browser, "r")
    assert "rejected" in _text(browser, "section.on .card.cur .badge")
    browser.save_screenshot(str(SHOTS / "decontam-decided.png"))
    _key(browser, "k")
    _key(browser, "2")
    _go_to(browser, member["key"])
    _key(browser, "a")
    assert "accepted" in _text(browser, "section.on .card.cur .badge")
    _key(browser, "j")
    _key(browser, "a")
    assert _text(browser, "#n-decisions") == "3"
    _key(browser, "u")
    assert _text(browser, "#n-decisions") == "2"
    assert "undecided" in _text(browser, "section.on .card.cur .badge")
    # the filters narrow the list
    browser.execute_script("document.getElementById('f-ddec').value = 'accept';"
                           "document.getElementById('f-ddec').dispatchEvent(new Event('input'));")
    assert len(browser.find_elements("css selector", "#duplicates-list .card")) == 1
    browser.save_screenshot(str(SHOTS / "duplicates-decided.png"))

    # decisions survive a reload (localStorage), then leave as a JSONL download
    # Chromium hands a page's localStorage writes to its browser process asynchronously: on a
    # loaded machine a reload can come first (seen once in a fresh clone). Decisions that never
    # persist still fail after five reloads.
    for _ in range(5):
        browser.refresh()
        if _text(browser, "#n-decisions") == "2":
            break
        time.sleep(1.0)
    assert _text(browser, "#n-decisions") == "2"
    browser.find_element("css selector", "#export").click()
    target = browser.downloads / "decisions.jsonl"
    for _ in range(100):
        if target.exists() and target.stat().st_size:
            break
        time.sleep(0.1)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert target.read_text() == browser.execute_script("return window.chatcurateReview.decisionsJsonl()")
    assert {(d["section"], d["decision"], d["conversation_id"]) for d in lines} == {
        ("decontam", "reject", pair["conversation_id"]), ("dedup", "accept", member["conversation_id"])}

    # apply them, rerun the export: the two rows changed sides
    res = CliRunner().invoke(main, ["review", "apply", str(target), "--lake", str(run.lake), "--who", "ci"])
    assert res.exit_code == 0, res.output
    assert "recorded 2 decisions" in res.output
    kept2, dropped2 = _export(lake, tmp_path / "after" / "ds", **options)
    assert pair["conversation_id"] in kept2 and member["conversation_id"] in dropped2
    assert kept2 - {pair["conversation_id"]} == kept - {member["conversation_id"]}


def test_a_pipeline_export_after_apply_honours_the_decisions(demo, tmp_path):
    """The export stage's completion marker sees the new review part: the rerun re-exports."""
    from flows.export import export_flow
    from flows.testing import copy_run

    from curate.export.review_decisions import apply_decisions

    run = copy_run(demo, tmp_path)
    before = set(pq.read_table(run.out / "export" / "chatcurate-demo.exclusions.parquet").column("id").to_pylist())
    assert "he-verbatim-1" in before
    path = tmp_path / "decisions.jsonl"
    path.write_text(json.dumps({"section": "decontam", "decision": "reject", "conversation_id": "he-verbatim-1",
                                "benchmark": "humaneval", "test_id": "HumanEval/1", "turn": 0}) + "\n")
    apply_decisions(Lake(run.lake), path)
    stats = export_flow(lake=run.lake, out=run.out)
    after = set(pq.read_table(run.out / "export" / "chatcurate-demo.exclusions.parquet").column("id").to_pylist())
    assert after == before - {"he-verbatim-1"}
    assert stats["kept"] == demo.result["export"]["kept"] + 1
