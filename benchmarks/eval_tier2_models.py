"""Tier-2 moderation and topic labels: one served-model candidate against another, same prompts.

For each model (`NAME=PATH.gguf`, or a name from `curate.models.fetch_model.MODELS` looked up under
`--models-dir`), the script asks it, with the prompts, parsing and retry rules of the
pipeline (`moderation.llm_tier.LLMModerator`, `curate.tag.topics.llm_labels`):

- **moderation**: a sample of `tests/data/moderation_heldout.jsonl` (every `--every`-th row
  by id; `--every 1` is the whole set, the set of `eval_moderation.py`'s held-out tier-2 row),
  scored with `moderation.evaluate.agreement`;
- **topic labels**: the `--topics` largest clusters of a lake that `curate tag topics` (or the
  pipeline) has fitted, their examples chosen as the tagger chooses them (8 nearest the
  centroid + 4 random, seed 0), each answer checked with `parse_label` (a label that is not a
  topic name, "MENU" or "no specific topic", is rejected);
- **seconds per call**: wall and process CPU seconds of each request, with the load average.

Two ways to reach a model:
- `--backend transformers` (default): in this process, the GGUF dequantized by transformers
  (bf16), greedy decoding, the chat template of the GGUF. What a server's json_schema grammar
  does is emulated: the moderation answer is prefilled with `{"category": "` and the model
  picks a category greedily, token by token, among the allowed ones (flagged follows; the
  explanation is not generated); a topic label is prefilled with `{"label": "` and generated
  up to the closing quote. `--no-grammar`: free generation, as `--structured none` on a server.
  Runs on a CPU or a CUDA GPU (`--device`).
- `--llm-url URL --llm-model NAME` (one model): a served endpoint (vLLM, llama.cpp) through
  `ChatClient`, with `response_format` json_schema as the pipeline sends it.
- `--serve vllm|llamacpp` (each `--model` in turn): the script starts the model server as the
  pipeline does (`curate.models.serve_model.ModelServer`: vLLM from `.venv-vllm` on the safetensors
  directory, or llama-cpp-python on the GGUF file), talks to it through `ChatClient` with the
  pipeline's concurrency (`--concurrency`, 4), and stops it. Seconds per call are the batch's
  wall seconds divided by its calls (throughput at that concurrency) and the server's CPU
  seconds (process tree) per call, with the load average; the server's start-up is timed apart.

`--multi-every N` adds every N-th row (by id) of `tests/data/moderation_multi_eval.jsonl`
(abusive and benign-with-trigger-word messages in 8 languages, tier 1's held-out set) to the
moderation sample; figures are given overall, per set and per language. Neither set is
fitted on by anything tier 2 uses (the prompts were written before these runs).

    python benchmarks/eval_tier2_models.py --model smollm2 --model qwen-coder-1.5b \\
        --every 5 --topics 3 --topics-lake out/lake --retries 0 --json out/tier2.json
    python benchmarks/eval_tier2_models.py --serve llamacpp --model smollm2 --model qwen-coder-1.5b \
        --every 1 --multi-every 3 --topics 20 --topics-lake out/lake --json out/tier2-llamacpp.json
    python benchmarks/eval_tier2_models.py --check      # quick self-test, no model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate.models.llm import ChatRequest, ChatResult  # noqa: E402
from moderation.evaluate import agreement, load_eval_set  # noqa: E402

HELDOUT = REPO / "tests/data/moderation_heldout.jsonl"
MULTI = REPO / "tests/data/moderation_multi_eval.jsonl"


def sample_rows(rows: list[dict], every: int) -> list[dict]:
    """Every `every`-th row in id order (systematic sample; the set is grouped by category)."""
    if every < 1:
        raise ValueError(f"--every must be >= 1, got {every}")
    return sorted(rows, key=lambda r: r["id"])[::every]


class TransformersChat:
    """The slice of `ChatClient` that the taggers use (`chat_many`), answered in-process.

    Each request is timed on its own (wall and process CPU seconds); `response_format` is
    ignored (no grammar), everything else of the request is honoured.
    """

    def __init__(self, gguf: Path, name: str, *, device: str = "cpu", dtype: str = "bfloat16", threads: int | None = None,
                 grammar: bool = True):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.grammar = grammar
        self.name = name
        self.device = device
        t0, c0 = time.perf_counter(), time.process_time()
        self.tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                          dtype=getattr(torch, dtype)).to(device).eval()
        self.load_s = (round(time.perf_counter() - t0, 1), round(time.process_time() - c0, 1))
        print(f"  [{name}] loaded in {self.load_s} s (wall, CPU)", file=sys.stderr, flush=True)
        self.calls: list[dict] = []

    def chat_many(self, reqs: list[ChatRequest]) -> list[ChatResult]:
        return [self._one(r) for r in reqs]

    def _prompt_ids(self, req: ChatRequest, prefill: str = ""):
        text = self.tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False) + prefill
        return self.tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(self.device)

    def _one(self, req: ChatRequest) -> ChatResult:
        schema = ((req.response_format or {}).get("json_schema") or {}) if self.grammar else {}
        if schema.get("name") == "moderation_verdict":
            return self._timed(req, self._enum_choice)
        if schema.get("name") == "topic_label":
            return self._timed(req, self._label)
        return self._timed(req, self._free)

    def _timed(self, req: ChatRequest, fn) -> ChatResult:
        t0, c0 = time.perf_counter(), time.process_time()
        text, n_prompt, n_new, finish = fn(req)
        self.calls.append({"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2),
                           "prompt_tokens": n_prompt, "new_tokens": n_new})
        print(f"  [{self.name}] call {len(self.calls)}: {self.calls[-1]} {text[:70]!r}", file=sys.stderr, flush=True)
        return ChatResult(text=text, top_logprobs=None, model=self.name, key=req.key, attempts=1, finish_reason=finish)

    def _enum_choice(self, req: ChatRequest):
        """What a json_schema grammar lets the model do for the first field: pick one enum value.

        The answer is prefilled with `{"category": "`, then decoded greedily token by token among
        the tokens that continue some category name followed by its closing quote (as a
        grammar engine masks logits). `flagged` follows from the category and the explanation
        is not generated (not needed for accuracy; a grammar would not force `flagged` to agree,
        so this is slightly kind to the model).
        """
        torch = self.torch
        from moderation.llm_tier import VERDICT_SCHEMA

        prefill = '{"category": "'
        ids = self._prompt_ids(req, prefill)
        full = self.tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False) + prefill
        cands = {}
        for v in VERDICT_SCHEMA["properties"]["category"]["enum"]:
            t = self.tok(full + v + '"', add_special_tokens=False)["input_ids"]
            if t[: ids.shape[1] - 1] != ids[0, :-1].tolist():
                raise RuntimeError(f"tokenization of the prefill is not stable for {v!r}")
            cands[v] = t[ids.shape[1] - 1:]  # the last prefill token may merge with the value
        with torch.inference_mode():
            out = self.model(ids[:, :-1], use_cache=True)
            chosen: list[int] = []
            alive = dict(cands)
            while True:
                allowed = sorted({t[len(chosen)] for t in alive.values() if len(t) > len(chosen)})
                logits = out.logits[0, -1]
                nxt = allowed[0] if len(allowed) == 1 else max(allowed, key=lambda a: float(logits[a]))
                chosen.append(nxt)
                alive = {v: t for v, t in alive.items() if t[: len(chosen)] == chosen}
                done = [v for v, t in alive.items() if len(t) == len(chosen)]
                if done:
                    cat = done[0]
                    break
                out = self.model(torch.tensor([[nxt]], device=self.device), past_key_values=out.past_key_values,
                                 use_cache=True)
        text = json.dumps({"category": cat, "flagged": cat != "none", "explanation": "(not generated)"})
        return text, int(ids.shape[1]), len(chosen), "stop"

    def _label(self, req: ChatRequest):
        """A grammar's topic label: prefilled `{"label": "`, free text up to the closing quote."""
        prefill = '{"label": "'
        ids = self._prompt_ids(req, prefill)
        text, n_new, finish = self._generate(req, ids, stop='"')
        return prefill + text.split('"')[0] + '"}', int(ids.shape[1]), n_new, finish

    def _free(self, req: ChatRequest):
        ids = self._prompt_ids(req)
        text, n_new, finish = self._generate(req, ids)
        return text, int(ids.shape[1]), n_new, finish

    def _generate(self, req: ChatRequest, ids, stop: str | None = None):
        torch = self.torch
        kw: dict = {"max_new_tokens": req.max_tokens, "pad_token_id": self.tok.eos_token_id}
        if stop:
            kw |= {"stop_strings": [stop], "tokenizer": self.tok}
        if req.temperature and req.temperature > 0:
            torch.manual_seed(req.seed or 0)
            kw |= {"do_sample": True, "temperature": req.temperature, "top_p": 1.0, "top_k": 0}
        else:
            kw |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        with torch.inference_mode():
            out = self.model.generate(ids, **kw)
        new = out[0, ids.shape[1]:]
        return (self.tok.decode(new, skip_special_tokens=True), int(new.shape[0]),
                "length" if new.shape[0] >= req.max_tokens else "stop")


class TimedClient:
    """Wraps a served `ChatClient`: one request at a time, each timed."""

    def __init__(self, client, name: str):
        self.client, self.name, self.calls, self.load_s = client, name, [], None

    def chat_many(self, reqs):
        out = []
        for r in reqs:
            t0, c0 = time.perf_counter(), time.process_time()
            out.extend(self.client.chat_many([r]))
            self.calls.append({"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2)})
        return out


class ServedClient:
    """A served model through the pipeline's `ChatClient`: each batch timed (wall, server CPU)."""

    def __init__(self, server, *, concurrency: int, timeout_s: float = 900.0):
        from curate.models.llm import ChatClient

        self.server, self.name, self.concurrency = server, server.config.name, concurrency
        self.client = ChatClient(server.endpoint, concurrency=concurrency, timeout_s=timeout_s, max_retries=1)
        self.load_s = (round(server.healthy_after_s or 0.0, 1), None)
        self.calls: list[dict] = []
        self.batches: list[dict] = []
        self._cpu_seen: dict[int, float] = {}

    def _server_cpu_s(self) -> float:
        """CPU seconds of the server's process tree so far; a process that has exited keeps its last reading."""
        import psutil

        try:
            root = psutil.Process(self.server.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except (psutil.NoSuchProcess, AttributeError):
            procs = []
        for p in procs:
            try:
                t = p.cpu_times()
                self._cpu_seen[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return sum(self._cpu_seen.values())

    def chat_many(self, reqs):
        t0, c0 = time.perf_counter(), self._server_cpu_s()
        out = self.client.chat_many(reqs)
        wall, cpu = time.perf_counter() - t0, self._server_cpu_s() - c0
        n = max(len(reqs), 1)
        self.batches.append({"calls": len(reqs), "wall_s": round(wall, 2), "server_cpu_s": round(cpu, 2),
                             "loadavg": [round(x, 2) for x in os.getloadavg()]})
        self.calls.extend({"wall_s": round(wall / n, 2), "cpu_s": round(cpu / n, 2)} for _ in reqs)
        print(f"  [{self.name}] batch of {len(reqs)}: {self.batches[-1]}", file=sys.stderr, flush=True)
        return out


def topic_examples(lake_path: str, n_topics: int) -> dict[int, dict]:
    """{topic_id: {size, keyword_label, served_label, examples}} of the lake's latest fit, largest first."""
    import numpy as np

    from curate.core.lake import Lake
    from curate.tag.topics import TopicsConfig, _first_prompts, _latest_fit, _redacted_prompts

    lake = Lake(lake_path)
    cfg = TopicsConfig()
    fit = _latest_fit(lake)
    if fit is None:
        raise SystemExit(f"{lake_path} has no topic_labels: run `curate tag topics --lake {lake_path}` first")
    fit_id = fit.column("fit_id")[0].as_py()
    con = lake.connect()
    try:
        rows = con.execute(
            "SELECT t.conversation_id, t.topic_id, t.distance FROM topics t WHERE t.fit_id = ? "
            "ORDER BY t.conversation_id", [fit_id]).fetchall()
    finally:
        con.close()
    ids = [r[0] for r in rows]
    con = lake.connect()
    try:
        # a relation, not a DB-API result: Arrow output straight from DuckDB, without its copy warning
        conv = con.sql("SELECT conversation_id, conversation FROM conversations WHERE conversation_id IN "
                       "(SELECT unnest($1))", params=[ids]).to_arrow_table()
    finally:
        con.close()
    by_id = dict(zip(conv.column("conversation_id").to_pylist(), _first_prompts(conv)))
    prompts, _ = _redacted_prompts(lake, ids, [by_id.get(i, "") for i in ids])
    topic = np.array([r[1] for r in rows])
    dist = np.array([r[2] for r in rows])
    meta = {r["topic_id"]: r for r in fit.select(["topic_id", "size", "keyword_label", "topic_label"]).to_pylist()}
    order = sorted(meta, key=lambda t: (-meta[t]["size"], t))[:n_topics]
    rng = np.random.default_rng(cfg.seed)
    out = {}
    for t in sorted(meta):  # same rng draws, in the same order, as the tagger's _label
        m = np.flatnonzero(topic == t)
        if not len(m):
            continue
        nearest = m[np.argsort(dist[m], kind="stable")[: cfg.n_nearest]]
        rest = np.setdiff1d(m, nearest)
        rand = rng.choice(rest, size=min(cfg.n_random, len(rest)), replace=False) if len(rest) else []
        if t in order:
            out[t] = {"size": meta[t]["size"], "keyword_label": meta[t]["keyword_label"],
                      "lake_label": meta[t]["topic_label"], "examples": [prompts[i] for i in [*nearest, *rand]]}
    return {t: out[t] for t in order if t in out}


def evaluate(client, rows: list[dict], topics: dict[int, dict], retries: int, structured: str = "response_format") -> dict:
    from curate.tag.topics import TopicsConfig, llm_labels
    from moderation.llm_tier import LLMModerator, LLMTierConfig

    res: dict = {"model": client.name, "load_s": client.load_s}
    if rows:
        llm = LLMModerator(client, LLMTierConfig(invalid_retries=retries, structured=structured))
        n0 = len(client.calls)
        js = llm.judge([r["text"] for r in rows], keys=[r["id"] for r in rows])
        preds = [(j.flagged, j.category) if j.ok else (None, None) for j in js]
        res["moderation"] = _agreement_all(rows, preds)
        res["moderation"]["calls"] = len(client.calls) - n0
        res["moderation"]["by_set"] = {
            k: _agreement_all([r for r in rows if _set_of(r) == k], [p for r, p in zip(rows, preds) if _set_of(r) == k])
            for k in sorted({_set_of(r) for r in rows})}
        res["verdicts"] = [{"id": r["id"], "label": r["label"], "category": j.category, "error": j.error,
                            "explanation": j.explanation} for r, j in zip(rows, js)]
    if topics:
        got = llm_labels(client, {t: v["examples"] for t, v in topics.items()}, TopicsConfig(label_retries=retries, structured=structured))
        res["topics"] = [{"topic": t, "size": v["size"], "keywords": v["keyword_label"], "label": got[t][0],
                          "error": got[t][1]} for t, v in topics.items()]
    calls = client.calls
    walls = sorted(c["wall_s"] for c in calls)
    res["calls"] = calls
    res["seconds_per_call"] = {
        "n": len(calls),
        "median_wall_s": walls[len(walls) // 2] if walls else None,
        "mean_wall_s": round(sum(walls) / len(walls), 2) if walls else None,
        "mean_cpu_s": round(sum(c["cpu_s"] for c in calls) / len(calls), 2) if calls else None,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    return res


def _set_of(row: dict) -> str:
    return f"multi-{row['lang']}" if "lang" in row else "heldout-en"


def _agreement_all(rows: list[dict], preds: list) -> dict:
    """`agreement`, plus accuracy over every row (an error counts as wrong, not as skipped)."""
    out = agreement(rows, preds)
    right = sum(p[0] is not None and p[0] == (r["label"] != "none") for r, p in zip(rows, preds))
    out["accuracy_all"] = round(right / len(rows), 3) if rows else None
    return out


def load_rows(every: int, multi_every: int) -> list[dict]:
    rows = sample_rows(load_eval_set(HELDOUT), every) if every else []
    if multi_every:
        rows += sample_rows(load_eval_set(MULTI), multi_every)
    return rows


def resolve(spec: str, models_dir: Path) -> tuple[str, Path]:
    name, _, path = spec.partition("=")
    if path:
        return name, Path(path)
    from curate.models.fetch_model import model_paths

    p = model_paths(name, models_dir).gguf
    if not p.exists():
        raise SystemExit(f"{p} missing: `curate fetch-model {name} --models-dir {models_dir}` (or NAME=PATH.gguf)")
    return name, p


def _served(args, name: str) -> ServedClient:
    from curate.models.serve_model import ModelServer, ServeConfig

    log = Path(args.server_log_dir) / f"serve-{args.serve}-{name}.log" if args.server_log_dir else None
    server = ModelServer(ServeConfig(backend=args.serve, model=name, models_dir=args.models_dir,
                                     dtype=args.serve_dtype, log_path=log, startup_timeout_s=1200))
    print(f"  [{name}] starting {args.serve} server", file=sys.stderr, flush=True)
    server.start()
    print(f"  [{name}] healthy after {server.healthy_after_s:.1f} s", file=sys.stderr, flush=True)
    return ServedClient(server, concurrency=args.concurrency)


def self_check() -> None:
    """No model: the sample is systematic and stratified enough, and a fake client is scored as the tier scores it."""
    rows = load_eval_set(HELDOUT)
    s = sample_rows(rows, 5)
    assert [r["id"] for r in s] == ["h000", "h005", "h010", "h015", "h020", "h025", "h030"], [r["id"] for r in s]
    assert len({r["label"].split("/")[0] for r in s}) == 6  # the five parents and none
    assert len(sample_rows(rows, 1)) == len(rows) == 33
    mixed = load_rows(1, 3)
    assert len(mixed) == 33 + 64 and len({_set_of(r) for r in mixed}) == 9, len(mixed)
    assert _agreement_all(mixed[:2], [(True, "harassment"), (None, None)])["accuracy_all"] == 0.5

    class Fake:
        name, load_s = "fake", None

        def __init__(self):
            self.calls = []

        def chat_many(self, reqs):
            out = []
            for r in reqs:
                self.calls.append({"wall_s": 0.0, "cpu_s": 0.0})
                text = r.messages[1]["content"]
                if "PROMPTS" in text:
                    ans = '{"label": "MENU"}'  # not a topic name: must come back as an error
                elif "rat" in text:
                    ans = '{"category": "harassment", "flagged": true, "explanation": "insult"}'
                else:
                    ans = 'none'  # not JSON: must be an error, never a verdict
                out.append(ChatResult(text=ans, top_logprobs=None, model="fake", key=r.key))
            return out

    res = evaluate(Fake(), s[:2], {7: {"size": 2, "keyword_label": "x", "examples": ["a", "b"]}}, retries=0)
    m = res["moderation"]
    assert (m["errors"], m["flag_accuracy"], m["calls"]) == (1, 1.0, 2), m
    assert res["topics"][0]["label"] is None and "not a topic name" in res["topics"][0]["error"], res["topics"]
    assert res["seconds_per_call"]["n"] == 3
    print("eval_tier2_models check: ok")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=[], help="NAME or NAME=PATH.gguf (repeatable)")
    p.add_argument("--models-dir", default=os.environ.get("CURATE_MODELS_DIR", "models"))
    p.add_argument("--llm-url")
    p.add_argument("--llm-model")
    p.add_argument("--every", type=int, default=1, help="held-out sample: every N-th row by id (1 = all 33, 0 = none)")
    p.add_argument("--multi-every", type=int, default=0,
                   help="add every N-th row of moderation_multi_eval.jsonl (192 rows, 8 languages; 0 = none)")
    p.add_argument("--structured", default="response_format", choices=["response_format", "vllm", "none"],
                   help="how structured output is asked for: response_format (json_schema; a llama.cpp server, which "
                        "refuses that, gets json_object with the schema: ChatClient switches), vllm, or none (prompt only)")
    p.add_argument("--ids", help="comma-separated row ids: keep only these of the sample (rerun a few rows)")
    p.add_argument("--serve", choices=["vllm", "llamacpp"], help="start each --model on this server backend")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight to a served model (pipeline: 4)")
    p.add_argument("--serve-dtype", help="vLLM --dtype (default: the pipeline's, float32 on a CPU)")
    p.add_argument("--server-log-dir", default=None, help="keep each server's log here")
    p.add_argument("--topics", type=int, default=0, help="label this many of the largest clusters")
    p.add_argument("--topics-lake")
    p.add_argument("--retries", type=int, default=2, help="retries of an invalid answer (the pipeline's: 2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--threads", type=int)
    p.add_argument("--no-grammar", action="store_true",
                   help="transformers backend: free generation (as --structured none), no grammar emulation")
    p.add_argument("--json", help="write all results here")
    p.add_argument("--check", action="store_true", help="self-test without a model")
    args = p.parse_args(argv)
    if args.check:
        return self_check()
    rows = load_rows(args.every, args.multi_every)
    if args.ids:
        keep = set(args.ids.split(","))
        rows = [r for r in rows if r["id"] in keep]
    topics = topic_examples(args.topics_lake, args.topics) if args.topics else {}
    results = []
    if args.serve:
        clients = [lambda n=n: _served(args, n) for n in args.model]
    elif args.llm_url:
        from curate.models.llm import ChatClient, Endpoint

        clients = [lambda: TimedClient(ChatClient(Endpoint(args.llm_url, args.llm_model), concurrency=1, timeout_s=600),
                                       args.llm_model)]
    else:
        clients = [lambda n=n, g=g: TransformersChat(g, n, device=args.device, dtype=args.dtype, threads=args.threads,
                                                           grammar=not args.no_grammar)
                   for n, g in (resolve(s, Path(args.models_dir)) for s in args.model)]
    for make in clients:
        client = make()
        r = evaluate(client, rows, topics, args.retries, args.structured)
        results.append(r)
        if isinstance(client, ServedClient):
            r["backend"], r["concurrency"], r["batches"] = args.serve, args.concurrency, client.batches
            r["server_start_s"] = client.load_s[0]
            client.server.stop()
        m, s = r.get("moderation", {}), r["seconds_per_call"]
        print(f"\n== {r['model']} (load {r['load_s']} s wall/CPU)")
        if m:
            print(f"moderation, {m['n']} held-out rows: errors {m['errors']}, accuracy (errors wrong) "
                  f"{m['accuracy_all']}, flag acc {m['flag_accuracy']}, precision {m['precision']}, recall {m['recall']}, "
                  f"FP {m['false_positives']}, category agr {m['category_agreement']}")
            for k, b in m["by_set"].items():
                print(f"  {k:<11} n={b['n']:<3} acc {b['accuracy_all']} errors {b['errors']} recall {b['recall']} "
                      f"FP {b['false_positives']}")
            for v in r["verdicts"]:
                print(f"  {v['id']} {v['label']:<24} -> {v['category'] or 'ERROR: ' + (v['error'] or '')[:90]}")
        for t in r.get("topics", []):
            print(f"  topic {t['topic']} (n={t['size']}, keywords {t['keywords']!r}) -> "
                  f"{t['label']!r}" + (f" ERROR {t['error'][:90]}" if t["error"] else ""))
        print(f"seconds per call: {s}")
        del client
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
