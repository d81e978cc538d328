"""Ingest benchmark: chatcurate's ingest against a naive and a C++ JSON baseline.

Generates an OpenAI-messages JSONL (default 1M conversations, about 2 turns and ~1.5 KB
each, with a sprinkling of bad lines), then runs each contender in its own subprocess and
reports conversations/s, MB/s and peak RSS (`ru_maxrss` of that subprocess):

- ``naive``: ``json.loads`` per line, a pandas DataFrame, ``to_parquet`` (bad lines skipped).
- ``pyarrow``: ``pyarrow.json.read_json`` (both cores) on the same file with the bad lines
  removed (it stops at the first bad line, so it cannot quarantine): the practical upper
  bound for parsing this data here. ``pyarrow+write`` adds ``write_table`` (zstd), the
  cost every contender that keeps its result pays.
- ``chatcurate``: ``curate.ingest.ingest`` into a fresh lake (fast columnar path, per-line
  fallback, every bad line quarantined with its reason), zstd Parquet (the default).
- ``chatcurate-snappy``: the same with ``IngestConfig(compression="snappy")``: less CPU for
  larger files (the ``out MB`` column: Parquet written, lake or baseline).
- ``chatcurate (slow path)``: the same with the columnar path switched off.

Run:  .venv/bin/python benchmarks/bench_ingest.py              # 1M conversations
      .venv/bin/python benchmarks/bench_ingest.py --n 200000 --stages   # CPU per fast-path step
      .venv/bin/python benchmarks/bench_ingest.py --n 250000 --n 1000000 --only chatcurate
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WORDS = (
    "the of and to in is you that it for on with as are this be at or have from by not but what all "
    "were when we there can an your which their said if do will each about how up out them then she "
    "many some so these would other into has more her two like him see time could no make than first "
    "been its who now people my made over did down only way find use may water long little very after "
    "words called just where most know get through back much before go good new write our used me man "
    "too any day same right look think also around another came come work three word must because does "
    "part even place well such here take why things help put years different away again off went old "
    "number great tell men say small every found still between name should home big give air line set "
    "own under read last never us left end along while might next sound below saw something thought "
    "both few those always looked show large often together asked house don't world going want school "
    "important until form food keep children feet land side without boy once animals life enough took "
    "python function error install server database query model train dataset token memory thread "
).split()
OTHER = ["café crème brûlée déjà vu", "Привет, как дела? Всё хорошо", "你好，今天天气怎么样？我想去公园散步",
         "こんにちは、元気ですか", "مرحبا كيف حالك", "Grüße aus München, schönes Wetter 😀"]
MODELS = ["gpt-4o", "gpt-4o-mini", "llama-3-8b", "mistral-7b", None]

BAD_LINES = [
    b'{"id": "bad-trunc", "messages": [{"role": "user", "content": "this line was cut',
    b'{"messages": [{"role": "user", "content": "caf\xe9 au lait"}]}',
    b'["an", "array"]',
    b'{"messages": [{"role": "narrator", "content": "Once upon a time"}]}',
    b'{"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "?"}]}',
    b'{"messages": [{"role": "user", "content": {"image": "x.png"}}]}',
    b'{"id": "no-messages", "text": "hello"}',
    b'{"messages": "hello"}',
    b"not json at all",
]


def _text(rng: random.Random, n_words: int) -> str:
    if rng.random() < 0.05:
        return rng.choice(OTHER) + " " + " ".join(rng.choices(WORDS, k=n_words // 2))
    return " ".join(rng.choices(WORDS, k=n_words))


def generate(path: Path, n: int, *, bad_every: int = 500, seed: int = 0) -> tuple[int, int]:
    """Write `n` lines (every `bad_every`-th a bad one); returns (good, bad) line counts."""
    rng = random.Random(seed)
    good = bad = 0
    with open(path, "wb", buffering=1 << 20) as fh:
        for i in range(n):
            if bad_every and i % bad_every == bad_every - 1:
                fh.write(BAD_LINES[(i // bad_every) % len(BAD_LINES)] + b"\n")
                bad += 1
                continue
            turns = rng.choice((1, 1, 2, 2, 2, 3, 3))
            msgs = []
            if rng.random() < 0.2:
                msgs.append({"role": "system", "content": "You are a helpful assistant."})
            for _ in range(turns):
                msgs.append({"role": "user", "content": _text(rng, rng.randint(10, 60))})
                msgs.append({"role": "assistant", "content": _text(rng, rng.randint(40, 160))})
            rec: dict = {}
            if rng.random() < 0.7:
                rec["id"] = f"conv-{i}"
            model = rng.choice(MODELS)
            if model:
                rec["model"] = model
            rec["messages"] = msgs
            fh.write(json.dumps(rec, ensure_ascii=rng.random() < 0.5).encode() + b"\n")
            good += 1
    return good, bad


def strip_bad(src: Path, dst: Path) -> int:
    """Copy `src` without the lines pyarrow.json would choke on; returns the count kept."""
    kept = 0
    bad = set(BAD_LINES)
    with open(src, "rb") as fi, open(dst, "wb", buffering=1 << 20) as fo:
        for line in fi:
            if line.rstrip(b"\n") in bad:
                continue
            fo.write(line)
            kept += 1
    return kept


# ---- contenders, each run in a fresh subprocess ---------------------------------------
def run_naive(src: str, out: str) -> dict:
    import pandas as pd

    rows = []
    bad = 0
    with open(src, "rb") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                bad += 1
                continue
            msgs = rec.get("messages") if isinstance(rec, dict) else None
            # the minimum for a consistent column: a list of {role: str, content: str}
            if not isinstance(msgs, list) or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in msgs
            ):
                bad += 1
                continue
            rows.append({"id": rec.get("id"), "model": rec.get("model"), "messages": rec.get("messages")})
    pd.DataFrame(rows).to_parquet(Path(out) / "naive.parquet")
    return {"records": len(rows) + bad, "out_mb": _parquet_mb(out)}


def _parquet_mb(folder: str) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*.parquet")) / 1e6


def run_pyarrow(src: str, out: str, write: bool = False) -> dict:
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    table = pj.read_json(src, read_options=pj.ReadOptions(block_size=16 << 20))
    if write:
        pq.write_table(table, Path(out) / "pyarrow.parquet", compression="zstd")
        return {"records": table.num_rows, "out_mb": _parquet_mb(out)}
    return {"records": table.num_rows}


def run_chatcurate(src: str, out: str, fast: bool = True, compression: str = "zstd") -> dict:
    from curate.ingest.ingest import IngestConfig, ingest
    from curate.core.lake import Lake

    codec = {} if compression == "zstd" else {"compression": compression}  # --code may name a version without it
    stats = ingest(Lake(Path(out) / "lake"), [src], IngestConfig(fast_path=fast, **codec))
    assert stats.total == stats.kept + stats.quarantined
    return {"records": stats.total, "kept": stats.kept, "quarantined": stats.quarantined,
            "out_mb": _parquet_mb(out)}


CONTENDERS = {
    "naive": (run_naive, "json.loads + pandas + to_parquet"),
    "pyarrow": (run_pyarrow, "pyarrow.json.read_json, both cores (bad lines removed)"),
    "pyarrow+write": (lambda s, o: run_pyarrow(s, o, write=True), "the same + write_table zstd (bad lines removed)"),
    "chatcurate": (run_chatcurate, "curate.ingest.ingest (fast path, zstd)"),
    "chatcurate-snappy": (lambda s, o: run_chatcurate(s, o, compression="snappy"), "curate.ingest.ingest (fast path, snappy)"),
    "chatcurate-slow": (lambda s, o: run_chatcurate(s, o, fast=False), "curate.ingest.ingest (per-line path only)"),
}


def stages(src: Path) -> None:
    """CPU seconds of each step of the fast path, one thread at a time (`--stages`).

    Threads and the machine's load blur where a parallel run spends its time; this runs the
    steps of `ingest`'s fast path one after another on the main thread and times each with
    `time.process_time`: chunking the file, `normalize_chunk` (the columnar parse), the
    main thread's merge (ids, per-line rows, tables), and the Parquet write per codec.
    """
    from concurrent.futures import Future

    from curate.ingest.ingest import ingest as ig
    from curate.core import schema
    from curate.core.lake import AtomicParquetWriter, Lake
    from curate.ingest.normalize_columnar import normalize_chunk
    from curate.ingest.read_logs import RawRecord, iter_line_chunks

    class Collect:  # stands in for a writer: keeps the tables the merge hands over
        def __init__(self) -> None:
            self.tables: list = []
            self.rows = 0

        def write(self, table) -> None:
            self.tables.append(table)
            self.rows += table.num_rows

    config = ig.IngestConfig()
    cpu: dict[str, float] = {}

    def timed(name: str, fn):
        t0 = time.process_time()
        out = fn()
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - t0
        return out

    chunks = timed("chunking (iter_line_chunks)", lambda: list(iter_line_chunks(src, config.max_record_bytes)))
    results = [None if isinstance(c, RawRecord) else timed("normalize_chunk (columnar parse)",
                                                           lambda c=c: normalize_chunk(c, config.limits))
               for c in chunks]
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        lake = Lake(Path(tmp) / "lake").init()
        registry = ig._IdRegistry(lake, set())
        kept, rejects = Collect(), Collect()
        sink = ig._Sink(kept, rejects, ig.FileResult("bench", "ingested"), config.batch_rows)

        def merge() -> None:
            for chunk, res in zip(chunks, results):
                future = None
                if res is not None:
                    future = Future()
                    future.set_result(res)
                ig._drain_one(deque([(chunk, future)]), sink, config.limits, registry, "bench", "run", {"fast": 0, "records": 0})
            sink.flush_rows()

        timed("merge (ids, per-line rows, tables)", merge)
        sink.close()
        for codec in ("zstd", "snappy", "none"):
            def write(codec=codec) -> None:
                w = AtomicParquetWriter(Path(tmp) / f"{codec}.parquet", schema.CONVERSATIONS, compression=codec,
                                        use_dictionary=ig._DICT_COLUMNS)
                for table in kept.tables:
                    w.write(table)
                w.commit()
            timed(f"Parquet write, {codec}", write)
    rows = kept.rows
    print(f"{src.name}: {rows:,} kept rows, {len(chunks)} chunks; CPU seconds one step at a time")
    print(f"{'step':38s} {'CPU s':>7s} {'CPU s per 1M rows':>18s}")
    for name, sec in cpu.items():
        print(f"{name:38s} {sec:>7.2f} {sec * 1e6 / rows:>18.1f}")


def _child(name: str, src: str, out: str) -> None:
    fn = CONTENDERS[name][0]
    t0 = time.perf_counter()
    res = fn(src, out)
    res["seconds"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    res["maxrss_kb"] = usage.ru_maxrss
    res["cpu_s"] = usage.ru_utime + usage.ru_stime  # all threads; less sensitive to the load than wall time
    print("RESULT " + json.dumps(res))


def measure(name: str, src: Path, code: Path = REPO) -> dict:
    """Run one contender in a subprocess; peak RSS is that child's ru_maxrss. `code` is the
    checkout whose `curate` the child imports (another version, for before/after)."""
    with tempfile.TemporaryDirectory(dir=src.parent) as out:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name, str(src), out],
            cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(code)},
        )
        if proc.returncode:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
        # The child reports its own ru_maxrss (RUSAGE_SELF): RUSAGE_CHILDREN here would be
        # the maximum over every contender run so far.
        return json.loads(line[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, action="append", help="conversations per file (repeatable); default 1000000")
    ap.add_argument("--only", action="append", choices=list(CONTENDERS), help="contenders to run (repeatable)")
    ap.add_argument("--dir", default=None, help="where to write the generated files (default: a temp dir)")
    ap.add_argument("--bad-every", type=int, default=500, help="one bad line every N lines (default 500)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--code", type=Path, default=REPO,
                    help="root of the checkout whose curate package the contenders import (default: this one), "
                         "e.g. an older version from `git archive REV curate | tar -x -C DIR`")
    ap.add_argument("--stages", action="store_true",
                    help="instead of the contenders: CPU seconds of each fast-path step, one thread at a time")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    sizes = args.n or [1_000_000]
    names = args.only or list(CONTENDERS)
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for n in sizes:
        src = workdir / f"openai_{n}.jsonl"
        clean = workdir / f"openai_{n}_clean.jsonl"
        if not src.exists():
            t0 = time.perf_counter()
            good, bad = generate(src, n, bad_every=args.bad_every)
            print(f"generated {src} ({n:,} lines, {bad:,} bad, {src.stat().st_size / 1e6:.0f} MB) "
                  f"in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        if args.stages:
            stages(src)
            continue
        if any(n.startswith("pyarrow") for n in names) and not clean.exists():
            strip_bad(src, clean)
        for name in names:
            path = clean if name.startswith("pyarrow") else src
            load = os.getloadavg()[0]  # the machine is shared: say how busy it was
            res = measure(name, path, args.code.resolve())
            res["load"] = load
            res.update(name=name, n=n, mb=path.stat().st_size / 1e6)
            results.append(res)
            print(f"{name:16s} n={n:>9,} {res['seconds']:7.1f}s {n / res['seconds']:>9,.0f} conv/s "
                  f"{res['mb'] / res['seconds']:6.0f} MB/s  cpu {res['cpu_s']:6.1f}s  "
                  f"peak {res['maxrss_kb'] / 1024:6.0f} MiB", file=sys.stderr)
    if not args.stages:
        report(results, names, sizes)
    if not args.keep and not args.dir:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()


def report(results: list[dict], names: list[str], sizes: list[int]) -> None:
    print()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min);"
          " load = 1-min load average when each contender started")
    print(f"{'contender':18s} {'conversations':>13s} {'seconds':>8s} {'CPU s':>7s} {'conv/s':>10s} {'MB/s':>7s} "
          f"{'peak RSS MiB':>13s} {'out MB':>7s} {'kept':>9s} {'quarantined':>11s} {'load':>5s}")
    for r in results:
        out_mb = f"{r['out_mb']:.0f}" if "out_mb" in r else "-"
        print(f"{r['name']:18s} {r['n']:>13,} {r['seconds']:>8.1f} {r['cpu_s']:>7.1f} {r['n'] / r['seconds']:>10,.0f} "
              f"{r['mb'] / r['seconds']:>7.0f} {r['maxrss_kb'] / 1024:>13.0f} {out_mb:>7s} {r.get('kept', '-')!s:>9s} "
              f"{r.get('quarantined', '-')!s:>11s} {r['load']:>5.1f}")
    print()
    for name in names:
        base = next((r for r in results if r["name"] == "naive" and r["n"] == sizes[-1]), None)
        mine = next((r for r in results if r["name"] == name and r["n"] == sizes[-1]), None)
        if base and mine and name != "naive":
            print(f"{name}: {base['seconds'] / mine['seconds']:.2f}x the naive baseline at n={sizes[-1]:,}")
    for name in names:
        peaks = [(r["n"], r["maxrss_kb"] / 1024) for r in results if r["name"] == name]
        if len(peaks) > 1:
            print(f"{name} peak RSS by input size: " + ", ".join(f"{n:,}: {m:.0f} MiB" for n, m in peaks))


if __name__ == "__main__":
    main()
