"""Fit a judge calibration on the paper's pairs protocol (cosine + margin) for a served model.

Since the pair verifier decides by default, `decontam check` asks the judge only about the
verifier's uncertain band, and the calibration that matters there is fitted on band pairs:
`benchmarks/eval_judge_band.py` (pairs, judge --split calibration, fit) writes that one
(`Calibration.fused_verifier`; shipped for qwen-coder-1.5b). This script fits the older
form (`fused`: cosine and margin), which decides where the verifier is off
(`CheckConfig(verifier=False)`); it wrote the advisory smollm2.json.

The judge's True-minus-False margin (first answer token, prompt `PROMPT_VERSION`) and the
MiniLM cosine are fitted on a stratified sample of the test bed's *calibration split*
(`decontam.testbed.calibration_pairs`: items past the first 100, never scored): up to
`--per-set` positives and as many negatives from each set. With it shipped, `decontam check
--judge --judge-model smollm2` needs no calibration step (`decontam.calibrate.shipped`).

    .venv/bin/python benchmarks/fit_judge_calibration.py --judge-url http://127.0.0.1:8766/v1 \\
        --judge-model smollm2 [--per-set 12] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TESTBED = REPO.parent / "shared" / "testbed" / "llm-decontaminator"


def sample(pairs, per_set: int, seed: int = 0):
    """Up to `per_set` positives and `per_set` negatives of each set, drawn with a fixed seed."""
    out = []
    for name in sorted({p.set_name for p in pairs}):
        for label in (True, False):
            group = [p for p in pairs if p.set_name == name and p.label == label]
            rng = random.Random(f"{seed}:{name}:{label}")
            out += rng.sample(group, min(per_set, len(group)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--testbed", default=str(TESTBED))
    ap.add_argument("--judge-url", required=True)
    ap.add_argument("--judge-model", required=True)
    ap.add_argument("--per-set", type=int, default=12)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--out", help="default: decontam/calibrations/<model>.json")
    args = ap.parse_args()
    from curate.models.llm import ChatClient, Endpoint
    from decontam.calibrate import fit_calibration
    from decontam.judge import LLMJudge
    from decontam.testbed import calibration_pairs

    pairs = sample(calibration_pairs(args.testbed), args.per_set)
    client = ChatClient([Endpoint(args.judge_url, args.judge_model, None)], concurrency=args.concurrency, timeout_s=300)
    judge = LLMJudge(client, model=args.judge_model)
    t0, c0 = time.perf_counter(), time.process_time()
    cal = fit_calibration(pairs, judge=judge, progress=lambda m: print(m, file=sys.stderr))
    secs = time.perf_counter() - t0
    cal.fitted_on.update({"script": "benchmarks/fit_judge_calibration.py", "per_set": args.per_set,
                          "split": "test bed calibration split (items past 100)", "seconds": round(secs, 1),
                          "seconds_per_pair": round(secs / max(len(pairs), 1), 2)})
    # only the judge's part ships: the embedding's cut stays the check's own default
    cal = dataclasses.replace(cal, cosine_cut=None, embed_model=None)
    out = Path(args.out or REPO / "decontam" / "calibrations" / f"{args.judge_model}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    cal.save(out)
    print(f"{out}: {len(pairs)} pairs in {secs:.0f} s ({time.process_time() - c0:.0f} CPU s here); quality {cal.quality}; "
          f"margin cuts {cal.margin_cuts}; judge stats {judge.stats}")


if __name__ == "__main__":
    main()
