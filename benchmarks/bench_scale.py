"""Scale benchmarks: the pipeline's heavy steps locally and on a Ray cluster, and embedding on GPU.

Two parts, each printing a table against a baseline measured in the same run:

`lake`: N generated conversations (default 1M) through ingest and near-duplicate
clustering, first with `LocalExecutor` (the baseline: one process), then on a local Ray
cluster (`ray.init(num_cpus=W)`), with wall time, throughput and peak RSS per worker.

    .venv/bin/python benchmarks/bench_scale.py lake --rows 1000000 --workers 2

`embed`: texts/s of the default embedding model (all-MiniLM-L6-v2) against batch size
and dtype on whatever device torch sees; baseline is `Embedder`'s current default on that
device (float32, batch 256 on CUDA). Needs only torch, sentence-transformers, numpy:

    python3 benchmarks/bench_scale.py embed --model models/minilm-fp16 --texts 50000

`pipeline`: the whole pipeline flow (`flows.pipeline.pipeline`, `--llm off`) over the demo logs,
locally (the baseline) and with its stage tasks on a local Ray cluster, each into a fresh
lake (`--order` says which goes first): seconds per stage, and whether the exports are equal.

    .venv/bin/python benchmarks/bench_scale.py pipeline --workers 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = (
    "the a to of and in is it you that for on how what can with this my be do are write code python function "
    "explain please why list data model error file help me make use like about time from not have will an "
    "which would your more example question answer string number table query user server test value when "
    "world system learning network image text language translate summary story poem email letter recipe"
).split()


def chat_texts(n: int, seed: int = 0) -> list[str]:
    """Chat-prompt-like texts: mostly short, a long tail up to ~400 words (the model cuts at 256 tokens)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = min(400, int(rng.lognormvariate(3.3, 0.9)) + 3)
        out.append(" ".join(rng.choice(WORDS) for _ in range(length)))
    return out


# ---- embed ------------------------------------------------------------------------------

def bench_embed(args: argparse.Namespace) -> list[dict]:
    import torch
    from sentence_transformers import SentenceTransformer

    from curate.models.gpu import plan_embedding

    plan = plan_embedding()
    device = plan.device
    texts = chat_texts(args.texts, seed=1)
    print(f"device {device} ({torch.cuda.get_device_name(0) if device.startswith('cuda') else 'cpu'}); "
          f"plan_embedding chose batch {plan.batch_size} {plan.dtype}; {len(texts)} texts", file=sys.stderr)
    model = SentenceTransformer(args.model, device=device)
    rows = []
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    for dtype in args.dtypes.split(","):
        model = model.half() if dtype == "float16" else model.float()
        model.encode(texts[:2048], batch_size=256, normalize_embeddings=True)  # warm-up: kernels, allocator
        for bs in sizes:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            vecs = model.encode(texts, batch_size=bs, normalize_embeddings=True, convert_to_numpy=True)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0
            rows.append({"dtype": dtype, "batch": bs, "seconds": round(dt, 3),
                         "texts_per_s": round(len(texts) / dt), "peak_gpu_mib": round(peak),
                         "dim": int(vecs.shape[1])})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.procs:
        rows.extend(_embed_processes(args, texts, device))
        t0 = time.perf_counter()
        for lo in range(0, len(texts), 512):
            model.tokenize(texts[lo: lo + 512])
        dt = time.perf_counter() - t0
        rows.append({"dtype": "tokenize-only", "batch": 512, "seconds": round(dt, 3),
                     "texts_per_s": round(len(texts) / dt), "peak_gpu_mib": 0, "dim": 0})
    base = next((r for r in rows if r["dtype"] == "float32" and r["batch"] == 256), rows[0])
    print(f"\nembedding throughput, {args.model}, {len(texts)} texts, device {device}")
    print(f"baseline: float32 batch 256 (Embedder's default on CUDA) = {base['texts_per_s']} texts/s")
    print(f"{'dtype':<20} {'batch':>6} {'seconds':>8} {'texts/s':>9} {'vs base':>8} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['dtype']:<20} {r['batch']:>6} {r['seconds']:>8.2f} {r['texts_per_s']:>9} "
              f"{r['texts_per_s'] / base['texts_per_s']:>7.2f}x {r['peak_gpu_mib']:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "plan": plan.__dict__, "rows": rows}, indent=2))
    return rows


def _embed_worker(model_path: str, texts: list[str], device: str, dtype: str, batch: int, start, q) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device=device)
    model = model.half() if dtype == "float16" else model.float()
    model.encode(texts[:1024], batch_size=batch, normalize_embeddings=True)
    start.wait()
    t0 = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
    q.put(time.perf_counter() - t0)


def _embed_processes(args: argparse.Namespace, texts: list[str], device: str) -> list[dict]:
    """P processes sharing one GPU, each with its own model copy (what a Ray actor pool with
    fractional GPUs does): shows whether one process's host-side work is the bound."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    rows = []
    for procs in [int(p) for p in args.procs.split(",")]:
        start, q = ctx.Barrier(procs + 1), ctx.Queue()
        shards = [texts[i::procs] for i in range(procs)]
        ps = [ctx.Process(target=_embed_worker, args=(args.model, sh, device, "float16", args.proc_batch, start, q))
              for sh in shards]
        for p in ps:
            p.start()
        start.wait()
        t0 = time.perf_counter()
        times = [q.get() for _ in ps]
        wall = time.perf_counter() - t0
        for p in ps:
            p.join()
        rows.append({"dtype": f"float16 x{procs} procs", "batch": args.proc_batch, "seconds": round(wall, 3),
                     "texts_per_s": round(len(texts) / wall), "peak_gpu_mib": 0, "dim": 384,
                     "slowest_proc_s": round(max(times), 3)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- lake: ingest + near-dedup, local vs Ray ---------------------------------------------

def write_corpus(folder: Path, rows: int, files: int, seed: int = 0) -> list[Path]:
    """OpenAI-messages JSONL; about a third of prompts are a near copy of an earlier one."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = [folder / f"chats-{k:03d}.jsonl" for k in range(files)]
    if all(p.exists() for p in paths) and (folder / f".rows-{rows}").exists():
        return paths
    prompts: list[str] = []
    per_file = -(-rows // files)
    n = 0
    for path in paths:
        with open(path, "w", encoding="utf-8") as fh:
            for _ in range(min(per_file, rows - n)):
                if prompts and rng.random() < 0.33:
                    w = rng.choice(prompts).split()
                    w[rng.randrange(len(w))] = rng.choice(WORDS)
                    prompt = " ".join(w)
                else:
                    prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 60)))
                    if len(prompts) < 200_000:
                        prompts.append(prompt)
                answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 80)))
                fh.write(json.dumps({"messages": [{"role": "user", "content": prompt},
                                                  {"role": "assistant", "content": answer}]}) + "\n")
                n += 1
    (folder / f".rows-{rows}").touch()
    return paths


def _chunk_tasks(paths: list[Path]):
    from curate.ingest.read_logs import LineChunk, iter_line_chunks

    for path in paths:
        for item in iter_line_chunks(path, 64 << 20):
            if isinstance(item, LineChunk):
                yield pa_table({"data": [item.data], "first_line": [item.first_line], "offset": [item.offset]})


def pa_table(d: dict):
    import pyarrow as pa

    return pa.table(d)


def normalize_chunk_batch(batch):
    """The heavy part of ingest as a batch function: parse + normalise one chunk of lines
    (the columnar fast path, the per-line path for the rest). Id assignment and the commit
    stay with the single lake writer."""
    import pyarrow as pa

    from curate.ingest.normalize import Limits, Rejected, normalize
    from curate.ingest.normalize_columnar import normalize_chunk
    from curate.ingest.read_logs import LineChunk

    chunk = LineChunk(batch.column("data")[0].as_py(), batch.column("first_line")[0].as_py(),
                      batch.column("offset")[0].as_py())
    limits = Limits(2000, 1_000_000, "chatcurate")
    res = normalize_chunk(chunk, limits)
    slow_kept = rejected = 0
    for rec in res.slow:
        try:
            if rec.error is not None:
                raise Rejected(rec.error, rec.detail)
            normalize(rec.obj, "openai", limits)
            slow_kept += 1
        except Rejected:
            rejected += 1
    return pa.table({"fast": [res.fast.num_rows], "slow_kept": [slow_kept], "rejected": [rejected],
                     "rss_mib": [peak_rss_mib()]})


def first_prompts(lake_root: Path, batch_rows: int):
    from curate.core.lake import Lake

    con = Lake(lake_root).connect()
    reader = con.sql("SELECT conversation[1].content AS text FROM conversations ORDER BY conversation_id"
                     ).to_arrow_reader(batch_rows)
    for rb in reader:
        yield rb.column(0).to_pylist()
    con.close()


def _worker_rss(ray) -> dict[int, float]:
    @ray.remote(num_cpus=1)
    def probe():
        time.sleep(0.2)
        return os.getpid(), peak_rss_mib()

    return dict(ray.get([probe.remote() for _ in range(16)]))


def bench_lake(args: argparse.Namespace) -> list[dict]:
    import numpy as np

    from curate.dedup.minhash import MinHashConfig, cluster
    from curate.dedup.partitioned import PartitionConfig, canonical_labels, cluster_partitioned
    from curate.core.execution import LocalExecutor, RayExecutor
    from curate.ingest.ingest import ingest
    from curate.core.lake import Lake

    work = args.workdir
    t0 = time.perf_counter()
    paths = write_corpus(work / f"corpus-{args.rows}", args.rows, args.files)
    print(f"corpus: {args.rows} conversations in {len(paths)} files ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    rows: list[dict] = []

    def record(step: str, where: str, seconds: float, n: int, rss: float, workers: int, note: str = ""):
        rows.append({"step": step, "executor": where, "workers": workers, "seconds": round(seconds, 1),
                     "rows_per_s": round(n / seconds), "rows_per_s_per_worker": round(n / seconds / workers),
                     "peak_rss_mib_per_worker": round(rss), "note": note})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    # baseline: the real ingest into a lake (single writer, one process)
    import shutil

    lake_root = work / f"lake-{args.rows}"
    shutil.rmtree(lake_root, ignore_errors=True)
    t = time.perf_counter()
    stats = ingest(Lake(lake_root), paths)
    record("ingest (curate.ingest.ingest, commit)", "local", time.perf_counter() - t, stats.total, peak_rss_mib(), 1,
           f"kept {stats.kept}")

    part = PartitionConfig(shards=args.workers * 4, batch_rows=50_000)
    cfg = MinHashConfig()
    texts = [t for b in first_prompts(lake_root, 100_000) for t in b]
    n = len(texts)
    rss0 = peak_rss_mib()
    t = time.perf_counter()
    base = canonical_labels(cluster(texts, cfg))
    record("near-dedup in memory (dedup_minhash.cluster)", "local", time.perf_counter() - t, n,
           peak_rss_mib(), 1, f"{len(set(base.tolist()))} clusters; RSS before {rss0:.0f}")

    executors = [("local", LocalExecutor())]
    if not args.skip_ray:
        executors.append(("ray", RayExecutor(address="local", num_cpus=args.workers, object_store_mb=1000)))
    for name, ex in executors:
        workers = ex.workers
        t = time.perf_counter()
        counts = [b for b in ex.map_batches(normalize_chunk_batch, _chunk_tasks(paths))]
        dt = time.perf_counter() - t
        total = sum(b.column("fast")[0].as_py() + b.column("slow_kept")[0].as_py() + b.column("rejected")[0].as_py()
                    for b in counts)
        rss = max(b.column("rss_mib")[0].as_py() for b in counts)
        record("ingest parse+normalise (map over 4 MB chunks)", name, dt, total, rss, workers)
        t = time.perf_counter()
        labels = cluster_partitioned((texts[lo: lo + part.batch_rows] for lo in range(0, n, part.batch_rows)),
                                     cfg, executor=ex, partition=part, workdir=work)
        dt = time.perf_counter() - t
        same = f"{float((labels == base).mean()):.4%}"
        rss = max(_worker_rss(ex.ray()).values()) if name == "ray" else peak_rss_mib()
        record("near-dedup partitioned (signatures, band shards, merge)", name, dt, n, rss, workers,
               f"same cluster as in-memory: {same} of rows")
        ex.close()

    print(f"\n{args.rows} generated conversations, {len(paths)} files; baseline = local rows of each step")
    print(f"{'step':<55} {'executor':<8} {'workers':>7} {'seconds':>8} {'rows/s':>9} {'rows/s/wkr':>10} "
          f"{'peak RSS MiB/wkr':>16}  note")
    for r in rows:
        print(f"{r['step']:<55} {r['executor']:<8} {r['workers']:>7} {r['seconds']:>8.1f} {r['rows_per_s']:>9} "
              f"{r['rows_per_s_per_worker']:>10} {r['peak_rss_mib_per_worker']:>16}  {r['note']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


def bench_pipeline(args: argparse.Namespace) -> list[dict]:
    import shutil

    import pyarrow.parquet as pq

    from flows.pipeline import DEMO_LOGS, pipeline
    from flows.runners import task_runner_for
    from flows.testing import ensure_harness

    ensure_harness()  # one Prefect API for the driver and the Ray workers
    work = args.workdir / "pipeline"
    shutil.rmtree(work, ignore_errors=True)
    inputs = work / "logs"
    shutil.copytree(DEMO_LOGS, inputs)
    runs: dict[str, dict] = {}
    for name in args.order.split(","):
        flow_, address = pipeline, None
        if name == "ray":
            import ray

            t = time.perf_counter()
            ray.init(num_cpus=args.workers, include_dashboard=False, object_store_memory=200 << 20, log_to_driver=False)
            print(f"ray.init: {time.perf_counter() - t:.1f}s", file=sys.stderr)
            flow_, address = pipeline.with_options(task_runner=task_runner_for("local")), "local"
        t = time.perf_counter()
        result = flow_(lake=work / name / "lake", inputs=[inputs], out=work / name / "out", ray_address=address)
        wall = time.perf_counter() - t
        folder = work / name / "out" / "export" / "chatcurate-demo" / "data"
        export = pq.read_table(sorted(folder.glob("*.parquet"))).sort_by("conversation_id")
        runs[name] = {"wall": wall, "timings": result["timings_s"], "export": export}
        print(json.dumps({"run": name, "wall_s": round(wall, 1), **result["timings_s"]}), file=sys.stderr, flush=True)
    same = runs["ray"]["export"].equals(runs["local"]["export"])
    rows = []
    stages = [k for k in runs["local"]["timings"] if k != "llm_server_start"]
    for stage in stages:
        base, got = runs["local"]["timings"][stage], runs["ray"]["timings"].get(stage)
        rows.append({"stage": stage, "local_s": base, "ray_s": got,
                     "ray_vs_local": round(got / base, 2) if base and got is not None else None})
    rows.append({"stage": "flow call (wall)", "local_s": round(runs["local"]["wall"], 1),
                 "ray_s": round(runs["ray"]["wall"], 1), "ray_vs_local": round(runs["ray"]["wall"] / runs["local"]["wall"], 2)})
    n = runs["local"]["export"].num_rows
    print(f"\npipeline over the demo logs ({n} conversations exported); baseline = local run; "
          f"Ray: local cluster, {args.workers} CPUs; exports equal: {same}")
    print(f"{'stage':<18} {'local s':>8} {'ray s':>8} {'ray/local':>9}")
    for r in rows:
        print(f"{r['stage']:<18} {r['local_s']:>8} {r['ray_s']:>8} {r['ray_vs_local']:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "exports_equal": same}, indent=2))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed", help="embedding texts/s vs batch size on this machine's device")
    e.add_argument("--model", default=None, help="model folder (default: the packaged all-MiniLM-L6-v2)")
    e.add_argument("--texts", type=int, default=50_000)
    e.add_argument("--batch-sizes", default="32,64,128,256,512,1024,2048")
    e.add_argument("--dtypes", default="float32,float16")
    e.add_argument("--procs", default="", help="also run P processes on one GPU, e.g. 2,4,8")
    e.add_argument("--proc-batch", type=int, default=512)
    e.add_argument("--json", default=None)
    lk = sub.add_parser("lake", help="ingest + near-dedup locally and on a local Ray cluster")
    lk.add_argument("--rows", type=int, default=1_000_000)
    lk.add_argument("--files", type=int, default=20)
    lk.add_argument("--workers", type=int, default=2)
    lk.add_argument("--workdir", type=Path, default=REPO / "out" / "bench_scale")
    lk.add_argument("--skip-ray", action="store_true")
    lk.add_argument("--json", default=None)
    pl = sub.add_parser("pipeline", help="the whole pipeline flow over the demo logs, locally and on local Ray")
    pl.add_argument("--workers", type=int, default=3)
    pl.add_argument("--order", default="local,ray", choices=["local,ray", "ray,local"],
                    help="which run goes first (the first pays cold imports and a cold disk cache)")
    pl.add_argument("--workdir", type=Path, default=REPO / "out" / "bench_scale")
    pl.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.cmd == "pipeline":
        bench_pipeline(args)
    elif args.cmd == "embed":
        if args.model is None:
            from curate.models.embed import default_model_path

            args.model = default_model_path()
        bench_embed(args)
    else:
        bench_lake(args)


if __name__ == "__main__":
    main()
