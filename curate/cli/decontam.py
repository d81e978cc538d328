"""The `decontam` command line: a thin layer over `decontam.check.run_check` and friends."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from curate.cli.errors import ErrorLineGroup


@click.group(cls=ErrorLineGroup)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Find benchmark items, verbatim or rephrased, in training data.

    Example: decontam check --train train.jsonl --benchmark humaneval
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


def _client(url: str | None, model: str | None, concurrency: int, cache_dir: Path | None, timeout_s: float = 60):
    from curate.core import settings
    from curate.models.llm import chat_client
    from decontam.errors import JudgeError

    url = url or settings.llm_base_url()
    model = model or settings.llm_model()
    if not url or not model:
        raise JudgeError(
            "the judge needs a served model: pass --judge-url http://127.0.0.1:8000/v1 --judge-model NAME "
            "(or set CURATE_LLM_BASE_URL and CURATE_LLM_MODEL; `curate serve-model` starts one)"
        )
    return chat_client(url, model, cache_dir=cache_dir, concurrency=concurrency, timeout_s=timeout_s), model


_JUDGE_OPTIONS = [
    click.option("--judge-url", help="OpenAI-compatible base URL(s), comma-separated (default: CURATE_LLM_BASE_URL)."),
    click.option("--judge-model", help="Served model name (default: CURATE_LLM_MODEL)."),
    click.option("--concurrency", default=8, show_default=True, help="Judge requests in flight."),
]


def _judge_options(f):
    for opt in reversed(_JUDGE_OPTIONS):
        f = opt(f)
    return f


@main.command()
@click.option("--train", "train_spec", required=True, help="lake, lake:PATH, a .parquet/.jsonl/.csv file, a saved HF dataset folder, or hf:ORG/NAME.")
@click.option("--train-field", help="Text column of the training file (default: text, prompt, instruction, ... or chat turns).")
@click.option("--benchmark", "benchmarks", multiple=True, required=True, help="Registered name (see `decontam benchmarks`) or a local file; repeat for several.")
@click.option("--text-field", help="Text column of local benchmark files.")
@click.option("--template", help="Python format template over a benchmark file's columns, e.g. '{question}\\n{answer}'.")
@click.option("--data-type", type=click.Choice(["code", "number_substitution", "math", "knowledge"]), help="Judge prompt variant for all benchmarks (default: per benchmark).")
@click.option("--ngram-n", default=13, show_default=True, help="n-gram length of the overlap stage.")
@click.option("--no-ngram", is_flag=True, help="Skip the n-gram stage.")
@click.option("--no-embeddings", is_flag=True, help="Skip the embedding stage (and so the judge).")
@click.option("--top-k", type=int, default=None,
              help="Training neighbours per benchmark item, each judged by the pair verifier [10].")
@click.option("--lexical-k", type=int, default=None,
              help="Also hand the verifier the N rows sharing the most rare words with each item, e.g. 5 [0: off].")
@click.option("--cosine-threshold", type=float, help="Embedding decision cut-off (default: calibration's, else 0.68).")
@click.option("--no-attribution", is_flag=True, help="Flag a row for every item above the cut, not only for the item it is closest to.")
@click.option("--no-cascade", is_flag=True, help="Send every candidate to the judge.")
@click.option("--cascade-high", type=float, default=None, help="Flag without the judge above this cosine [0.90].")
@click.option("--cascade-floor", type=float, default=None, help="Clear without the judge below this cosine [0.0].")
@click.option("--judge/--no-judge", "use_judge", default=False, help="Ask the LLM judge about candidates in the band.")
@_judge_options
@click.option("--both-orders", is_flag=True, help="Judge each pair in both orders to cancel position bias.")
@click.option("--calibration", type=click.Path(dir_okay=False), help="Calibration JSON from `decontam calibrate`; without one the judge is advisory.")
@click.option("--index-type", type=click.Choice(["flat", "fp16", "sq8"]), default="flat", show_default=True, help="faiss index type.")
@click.option("--multilingual/--no-multilingual", default=None,
              help="Also search training rows in another language than the benchmark's with USE-multilingual "
                   "(default: on; the lake's language tags, else the script or a Latin-script row's stop words, pick the rows).")
@click.option("--bench-lang", default="en", show_default=True, help="ISO 639-1 language of the benchmarks.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=".cache/decontam", show_default=True, help="Index, verdict and response caches.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write decontam_report.md and .json here.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of Markdown.")
@click.option("--write-clean", type=click.Path(dir_okay=False), help="Write the training data minus contaminated rows (.parquet or .jsonl).")
@click.option("--fail-over", type=float, help="Exit 1 when any benchmark's contamination rate exceeds this percentage.")
@click.option("--limit", type=int, help="Use only the first N items of each benchmark.")
def check(train_spec, train_field, benchmarks, text_field, template, data_type, ngram_n, no_ngram, no_embeddings,
          top_k, lexical_k, cosine_threshold, no_attribution, no_cascade, cascade_high, cascade_floor, use_judge, judge_url, judge_model,
          concurrency, both_orders, calibration, index_type, multilingual, bench_lang, cache_dir, out_dir, as_json,
          write_clean, fail_over, limit):
    """Check training data for benchmark contamination.

    \b
    Examples:
      decontam check --train train.jsonl --benchmark humaneval
      decontam check --train lake --benchmark humaneval --benchmark mmlu --out out/ --fail-over 1
      decontam check --train zh_chat.jsonl --benchmark humaneval --no-multilingual
      decontam check --train data.parquet --benchmark humaneval --judge \\
          --judge-url http://127.0.0.1:8000/v1 --judge-model qwen --calibration cal.json
    """
    from decontam.benchmarks import load_benchmark
    from decontam.calibrate import Calibration
    from decontam.check import (
        DEFAULT_ATTRIBUTION_TOLERANCE, DEFAULT_CASCADE_FLOOR, DEFAULT_CASCADE_HIGH, CheckConfig, run_check,
    )
    from decontam.judge import LLMJudge, VerdictCache
    from decontam.report import to_json, to_markdown, write_reports
    from decontam.train_data import load_train

    # the training side first: a wrong path or field fails in the first second, not after the models load
    data = load_train(train_spec, text_field=train_field)
    cache = Path(cache_dir) if cache_dir else None
    config = CheckConfig(
        ngram_n=ngram_n, use_ngram=not no_ngram, use_embeddings=not no_embeddings,
        **({} if top_k is None else {"top_k": top_k}), **({} if lexical_k is None else {"lexical_k": lexical_k}),
        cosine_threshold=cosine_threshold, cascade=not no_cascade,
        attribution_tolerance=None if no_attribution else DEFAULT_ATTRIBUTION_TOLERANCE,
        cascade_high=DEFAULT_CASCADE_HIGH if cascade_high is None else cascade_high,
        cascade_floor=DEFAULT_CASCADE_FLOOR if cascade_floor is None else cascade_floor,
        data_type=data_type, index_type=index_type, cache_dir=cache,
        calibration=Calibration.load(calibration) if calibration else None,
        **({} if multilingual is None else {"multilingual": multilingual}), bench_lang=bench_lang,
    )
    judge = None
    if use_judge:
        client, model = _client(judge_url, judge_model, concurrency, cache)
        verdict_cache = VerdictCache(cache / "verdicts.sqlite") if cache is not None else None
        judge = LLMJudge(client, model=model, both_orders=both_orders, cache=verdict_cache)
        if config.calibration is None:
            from dataclasses import replace

            from decontam.calibrate import shipped

            cal = shipped(model)
            if cal is not None:  # the default served judge (`curate serve-model`) needs no calibration step
                config = replace(config, calibration=cal)
                _progress(f"judge calibration: the one shipped for {model} (prompt {cal.prompt_version}, "
                          f"{cal.fitted_on.get('judged', '?')} calibration pairs)")
    benches = [load_benchmark(b, text_field=text_field, template=template, limit=limit) for b in benchmarks]
    result = run_check(data, benches, config, judge=judge, progress=_progress)
    if out_dir:
        md, js = write_reports(result, out_dir)
        _progress(f"reports: {md}, {js}")
    click.echo(to_json(result) if as_json else to_markdown(result))
    if write_clean:
        from decontam.clean import write_clean as _write_clean

        stats = _write_clean(data, result, write_clean)
        _progress(f"clean data: {write_clean} ({stats})")
    if fail_over is not None:
        worst = max((b.rate * 100 for b in result.benchmarks), default=0.0)
        if worst > fail_over:
            _progress(f"contamination {worst:.2f}% exceeds --fail-over {fail_over}%")
            sys.exit(1)


@main.command()
@click.option("--benchmark", required=True, help="Registered name or local file.")
@click.option("--text-field", help="Text column of a local benchmark file.")
@click.option("--style", required=True, help="paraphrase, restructure, translate:LANG or code:LANG.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Output JSONL (id, text, original).")
@click.option("--limit", type=int, help="Only the first N items.")
@_judge_options
def rephrase(benchmark, text_field, style, out_path, limit, judge_url, judge_model, concurrency):
    """Write rephrased versions of a benchmark with an LLM, to measure a detector.

    \b
    Example:
      decontam rephrase --benchmark humaneval --style code:C --out humaneval_c.jsonl \\
          --judge-url http://127.0.0.1:8000/v1 --judge-model qwen
    """
    from decontam.benchmarks import load_benchmark
    from decontam.rephrase import parse_style, rephrase_benchmark

    parse_style(style)
    bench = load_benchmark(benchmark, text_field=text_field, limit=limit)
    client, _ = _client(judge_url, judge_model, concurrency, None, timeout_s=300)
    stats = rephrase_benchmark(bench, client, style, out_path)
    click.echo(json.dumps(stats))


@main.command()
@click.option("--testbed", type=click.Path(file_okay=False, exists=True), help="The reference tool's data folder (calibration split: items past the first 100).")
@click.option("--pairs", "pairs_path", type=click.Path(dir_okay=False, exists=True), help="JSONL of labelled pairs: a, b, label, data_type.")
@click.option("--reviewed", "reviewed_lake", type=click.Path(file_okay=False, exists=True), help="A lake whose review decisions (`curate review apply`) add labelled pairs: accepted flags positive, rejected negative.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Calibration JSON to write.")
@click.option("--judge/--no-judge", "use_judge", default=False, help="Also fit the judge's margin cut-off.")
@_judge_options
@click.option("--cache-dir", type=click.Path(file_okay=False), default=".cache/decontam", show_default=True)
def calibrate(testbed, pairs_path, reviewed_lake, out_path, use_judge, judge_url, judge_model, concurrency, cache_dir):
    """Fit the cosine and judge-margin cut-offs on labelled pairs (never the ones you score).

    \b
    Example:
      decontam calibrate --testbed ../shared/testbed/llm-decontaminator --out cal.json \\
          --judge --judge-url http://127.0.0.1:8000/v1 --judge-model qwen
      decontam calibrate --reviewed lake --out cal.json   # a reviewer's accepted/rejected pairs
    """
    from decontam.calibrate import fit_calibration
    from decontam.errors import CalibrationError
    from decontam.judge import LLMJudge, VerdictCache
    from decontam.testbed import LabelledPair, calibration_pairs

    if testbed and pairs_path or not (testbed or pairs_path or reviewed_lake):
        raise CalibrationError("pass one of --testbed DIR and --pairs FILE, and/or --reviewed LAKE")
    pairs = []
    if testbed:
        pairs = calibration_pairs(testbed)
    elif pairs_path:
        with open(pairs_path, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        pairs = [LabelledPair("pairs", r["a"], r["b"], bool(r["label"]), r.get("data_type", "knowledge"), i) for i, r in enumerate(rows)]
    if reviewed_lake:
        from decontam.testbed import labelled_pairs

        reviewed = labelled_pairs(reviewed_lake)
        _progress(f"{len(reviewed)} reviewed pairs from {reviewed_lake} "
                  f"({sum(p.label for p in reviewed)} accepted, {sum(not p.label for p in reviewed)} rejected)")
        pairs = list(pairs) + reviewed
    judge = None
    if use_judge:
        cache = Path(cache_dir)
        client, model = _client(judge_url, judge_model, concurrency, cache)
        judge = LLMJudge(client, model=model, cache=VerdictCache(cache / "verdicts.sqlite"))
    cal = fit_calibration(pairs, judge=judge, progress=_progress)
    cal.save(out_path)
    click.echo(json.dumps({"out": out_path, "cosine_cut": cal.cosine_cut, "margin_cuts": cal.margin_cuts, "quality": cal.quality}))


@main.command("benchmarks")
def list_benchmarks():
    """List the registered benchmarks.

    Example: decontam benchmarks
    """
    from decontam.benchmarks import registry

    for name, where in sorted(registry().items()):
        click.echo(f"{name}\t{where}")


if __name__ == "__main__":
    main()
