import json

from curate.models.llm import ChatClient, Endpoint, ResponseCache
from moderation.llm_tier import LLMTierConfig
from moderation.local import LocalConfig
from moderation.tag import LLM_TABLE, LOCAL_TABLE, merged_sql, tag_moderation_llm, tag_moderation_local
from tests.faults.fault_server import Fault, FaultServer

RULES = LocalConfig(method="rules")


def reply(body):
    text = json.loads(body["messages"][1]["content"].split("\n")[1])
    if "idiot" in text:
        return "This message is rude but I'd say it is safe."  # never valid: recorded as an error
    if "find where you live" in text:
        return json.dumps({"category": "harassment/threatening", "flagged": True, "explanation": "a threat"})
    if "kill myself" in text:
        return json.dumps({"category": "self-harm/intent", "flagged": True, "explanation": "states intent"})
    return json.dumps({"category": "none", "flagged": False, "explanation": "harmless"})


def test_tier1_writes_one_verdict_per_message_and_reruns_do_nothing(small_lake):
    stats = tag_moderation_local(small_lake, RULES)
    assert stats.tagged == stats.total == 6
    con = small_lake.connect()
    per_conv = con.execute(
        f"SELECT len(m.openai_moderation) = len(c.conversation) FROM {LOCAL_TABLE} m JOIN conversations c"
        " USING (conversation_id)").fetchall()
    assert len(per_conv) == 6 and all(ok for (ok,) in per_conv)
    flagged = dict(con.execute(f"SELECT conversation_id, flagged FROM {LOCAL_TABLE}").fetchall())
    assert flagged == {"c0": False, "c1": True, "c2": False, "c3": True, "c4": True, "c5": False}
    # LMSYS shape: categories and scores are structs keyed by the taxonomy names.
    score = con.execute(
        f"""SELECT openai_moderation[1].category_scores."harassment/threatening" FROM {LOCAL_TABLE}
            WHERE conversation_id = 'c1'""").fetchone()[0]
    assert score >= 0.5
    assert stats.extra["messages"] == 13
    again = tag_moderation_local(small_lake, RULES)
    assert again.tagged == 0 and again.skipped_already_tagged == 6


def test_tier2_over_http_records_verdicts_and_errors(small_lake, tmp_path):
    with FaultServer(reply=reply) as srv:
        srv.push(Fault.http(500), Fault.drop())  # transient trouble: the client retries
        client = ChatClient(Endpoint(srv.url, srv.model), concurrency=4, backoff_s=0.01,
                            cache=ResponseCache(tmp_path / "cache.sqlite"))
        stats = tag_moderation_llm(small_lake, client, LLMTierConfig(invalid_retries=1), local_config=RULES)
        calls = srv.chat_calls
    assert stats.tagged == 6  # every conversation gets a row, judged or not
    con = small_lake.connect()
    review = con.execute(f"SELECT sum(len(review_messages)) FROM {LOCAL_TABLE}").fetchone()[0]
    judged, errors = con.execute(f"SELECT sum(judged), sum(errors) FROM {LLM_TABLE}").fetchone()
    assert judged + errors == review  # counts add up: every reviewed message has a verdict or an error
    assert errors == 1 and stats.extra["messages_errors"] == 1
    rows = {(r[0], r[1]): r[2:] for r in con.execute(
        f"SELECT conversation_id, j.message_index, j.category, j.flagged, j.error, j.attempts"
        f" FROM {LLM_TABLE}, unnest(judgements) AS u(j)").fetchall()}
    assert rows[("c1", 0)][:2] == ("harassment/threatening", True)
    assert rows[("c4", 1)][:2] == ("self-harm/intent", True)
    cat, flagged, error, attempts = rows[("c3", 0)]
    assert cat is None and flagged is None and error.startswith("llm_invalid_output") and attempts == 2
    merged = con.execute(merged_sql() + " ORDER BY 1, 2").fetchall()
    assert len(merged) == review
    # The errored message keeps tier 1's flag as the final one; the others take tier 2's.
    assert [r[-1] for r in merged if r[0] == "c3"] == [True]
    assert stats.extra["client"]["retries"] >= 2

    # A rerun makes no calls: every conversation is in the table already.
    with FaultServer(reply=reply) as srv:
        client = ChatClient(Endpoint(srv.url, srv.model), cache=ResponseCache(tmp_path / "cache.sqlite"))
        again = tag_moderation_llm(small_lake, client, local_config=RULES)
        assert srv.chat_calls == 0
    assert again.tagged == 0
    assert calls >= review


def test_tier2_server_down_is_an_error_per_message(small_lake):
    with FaultServer(reply=reply, policy=lambda i, body: Fault.http(503)) as srv:
        client = ChatClient(Endpoint(srv.url, srv.model), max_retries=1, backoff_s=0.01)
        stats = tag_moderation_llm(small_lake, client, local_config=RULES)
    con = small_lake.connect()
    judged, errors = con.execute(f"SELECT sum(judged), sum(errors) FROM {LLM_TABLE}").fetchone()
    assert judged == 0 and errors == stats.extra["messages_errors"] > 0
    assert all(e.startswith("llm_request_failed") for (e,) in con.execute(
        f"SELECT j.error FROM {LLM_TABLE}, unnest(judgements) AS u(j)").fetchall())
