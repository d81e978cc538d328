"""CLI: curate dedup."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn
from rich.table import Table

from curate.cli.ingest import embed_runtime_option, embed_threads_option, get_lake, json_option, lake_option


@click.command()
@lake_option
@click.option("--key", type=click.Choice(["user", "first_user", "conversation"]), default="user", show_default=True,
              help="Text that defines a duplicate: all user prompts, the first one, or the whole conversation.")
@click.option("--keep", type=click.Choice(["earliest", "longest", "most_turns"]), default="earliest",
              show_default=True, help="Which member of a cluster is kept.")
@click.option("--exact/--no-exact", default=True, show_default=True, help="Exact duplicates of normalised text.")
@click.option("--near/--no-near", default=True, show_default=True, help="Near duplicates (MinHash LSH).")
@click.option("--semantic/--no-semantic", default=True, show_default=True, help="Semantic duplicates (embeddings + faiss).")
@click.option("--near-threshold", type=float, default=0.65, show_default=True, help="Jaccard similarity for near duplicates.")
@click.option("--near-short-threshold", type=float, default=0.5, show_default=True,
              help="With the verifier: texts of at most --near-short-chars characters are also near candidates from "
                   "this Jaccard (a few typos cost a short prompt many shingles); 0: off.")
@click.option("--near-short-chars", type=int, default=100, show_default=True,
              help="What counts as a short text for --near-short-threshold (normalised characters).")
@click.option("--near-max-swaps", type=int, default=0, show_default=True,
              help="With the verifier: words on one side only, not typos of a word on the other side, that a near "
                   "duplicate may have ('explain' / 'fix'); -1: no limit (the near model alone decides).")
@click.option("--num-perm", type=int, default=128, show_default=True, help="MinHash permutations.")
@click.option("--shingle", type=click.Choice(["char", "word"]), default="char", show_default=True,
              help="Shingles: byte n-grams of the normalised text, or word n-grams.")
@click.option("--ngram", type=int, default=5, show_default=True, help="Shingle size.")
@click.option("--semantic-threshold", type=float, default=0.9, show_default=True,
              help="Cosine similarity for semantic duplicates.")
@click.option("--model", default=None, help="Embedding model name or path (default: offline all-MiniLM-L6-v2).")
@click.option("--semantic-multilingual/--no-semantic-multilingual", default=None,
              help="Also find translations of a prompt (USE-multilingual; default: on, and the pair verifier "
                   "decides each pair of prompts in two languages).")
@click.option("--frequency-cap", type=int, default=None, help="Keep at most N copies of a prompt (frequency capping).")
@click.option("--frequency-cap-percentile", type=float, default=None,
              help="Cap at this percentile of prompt repeat counts (e.g. 99.9).")
@embed_threads_option
@embed_runtime_option
@click.option("--table", default="dedup", show_default=True, help="Annotation table to write.")
@json_option
def dedup(lake_root, key, keep, exact, near, semantic, near_threshold, near_short_threshold, near_short_chars,
          near_max_swaps, num_perm, shingle, ngram, semantic_threshold, model, semantic_multilingual, frequency_cap,
          frequency_cap_percentile, table, as_json):
    """Find exact, near and semantic duplicates; write the `dedup` annotation table.

    Only conversations not yet in the table are processed, checked against each other and
    against the whole lake. Nothing is deleted: exports choose what to drop.

    Example: curate dedup --lake lake --keep longest --frequency-cap 100
             curate dedup --lake lake --no-semantic-multilingual
             curate dedup --lake lake --near-max-swaps -1 --near-short-threshold 0
    """
    from curate.dedup.dedup import DedupConfig, run_dedup
    from curate.dedup.minhash import MinHashConfig
    from curate.dedup.semantic import SemanticConfig

    config = DedupConfig(
        key=key, keep=keep, exact=exact, near=near, semantic=semantic,
        minhash=MinHashConfig(threshold=near_threshold, num_perm=num_perm, shingle=shingle, ngram=ngram),
        semantic_config=SemanticConfig(threshold=semantic_threshold, model=model, multilingual=semantic_multilingual),
        frequency_cap=frequency_cap, frequency_cap_percentile=frequency_cap_percentile, table=table,
        near_short_threshold=near_short_threshold or None, near_short_chars=near_short_chars,
        near_max_swaps=None if near_max_swaps == -1 else near_max_swaps,
    )
    lake = get_lake(lake_root)
    err = Console(stderr=True)
    with Progress(SpinnerColumn(), "[progress.description]{task.description}", TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("dedup", total=None)
        stats = run_dedup(lake, config, progress=lambda step: bar.update(task, description=step))
    if as_json:
        click.echo(json.dumps(stats.as_dict(), indent=2))
        return
    if stats.new == 0:
        click.echo(f"nothing new: all {stats.total} conversations are already in `{table}`")
        return
    out = Table(title=f"dedup run {stats.run_id}: {stats.new} new of {stats.total} conversations")
    for col in ("kind", "clusters (size > 1)", "rows in clusters", "dropped as duplicate"):
        out.add_column(col, justify="left" if col == "kind" else "right")
    for kind in ("exact", "near", "semantic"):
        if getattr(config, kind):
            out.add_row(kind, str(stats.clusters.get(kind, 0)), str(stats.rows_in_clusters.get(kind, 0)),
                        str(getattr(stats, f"dropped_{kind}")))
    out.add_row("all", str(stats.clusters.get("all", 0)), str(stats.rows_in_clusters.get("all", 0)),
                str(stats.new - stats.kept), style="bold")
    Console().print(out)
    extra = [f"kept {stats.kept}", f"cross-batch duplicates {stats.cross_batch}"]
    if stats.frequency_cap is not None:
        extra.append(f"frequency cap {stats.frequency_cap}: {stats.frequency_capped} capped")
    if config.semantic:
        extra.append(f"embedded {stats.embedded}, reused {stats.embeddings_reused}")
    click.echo("; ".join(extra))


COMMANDS = [dedup]
