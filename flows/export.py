"""Flow: export the lake as a Hugging Face dataset with its generated data card.

Writes `<out>/export/<name>/` (README.md card with YAML metadata, data/train-*.parquet,
images/, card_stats.json), `<out>/export/<name>.exclusions.parquet` and a copy of the
card in `<out>/data_card/` (or `card_dir`). Pushes to the Hub when `config.repo_id` is
set and `HF_TOKEN` is in the environment (the token is never a parameter, never logged).

    python -m flows.export --lake out/lake --out out
"""

import argparse
import dataclasses
import json
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from curate import stages
from curate.core.lake import Lake
from curate.export.export import ExportConfig
from flows.common import fingerprint, lake_state, logger, publish_stats, retry_transient, run_once
from flows.runners import run_task


@task(name="export-dataset", retries=1, retry_delay_seconds=2, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def export_task(lake: str, dest: str, card_dir: str, config: ExportConfig) -> dict:
    tables = Lake(lake).annotation_tables()

    def work() -> dict:
        return stages.run_export(Lake(lake), config, dest=dest, card_dir=card_dir).as_dict()

    where = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("repo_id", "private")}
    key = fingerprint("export", lake_state(lake, tables), tables, where,
                      str(Path(dest).resolve()), str(Path(card_dir).resolve()))
    return run_once(lake, "export", key, work,
                    valid=lambda s: (Path(dest) / "README.md").exists() and (Path(card_dir) / "README.md").exists())


@task(name="push-to-hub", retries=3, retry_delay_seconds=10, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def push_task(path: str, repo_id: str, private: bool) -> str:
    from curate.core import settings
    from curate.export.export import push_to_hub

    return push_to_hub(path, repo_id, settings.hf_token() or "", private=private)


@flow(name="export")
def export_flow(
    lake: Path = Path("out/lake"),
    out: Path = Path("out"),
    config: ExportConfig = ExportConfig(),  # noqa: B008
    card_dir: Path | None = None,
) -> dict:
    """Export the lake (redacted text only) and write the data card."""
    from curate.core import settings

    dest = Path(out) / "export" / config.name
    card_dir = Path(card_dir) if card_dir else Path(out) / "data_card"
    stats = run_task(export_task, str(lake), str(dest), str(card_dir), config)
    if config.repo_id:
        if settings.hf_token():
            stats["pushed_to"] = run_task(push_task, stats["path"], config.repo_id, config.private)
        else:
            logger().warning("export: repo_id=%s given but HF_TOKEN is not set: not pushed", config.repo_id)
    logger().info("export: %s of %s conversations -> %s", stats.get("kept"), stats.get("total"), stats.get("path"))
    publish_stats("export", stats)
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=Path("out/lake"))
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--card-dir", type=Path, default=None)
    parser.add_argument("--name", default="chatcurate-demo")
    parser.add_argument("--keep-duplicates", action="store_true")
    parser.add_argument("--drop-flagged", action="store_true")
    parser.add_argument("--keep-contaminated", action="store_true")
    parser.add_argument("--repo-id", default=None, help="push to this Hub dataset repo (needs HF_TOKEN)")
    args = parser.parse_args(argv)
    config = ExportConfig(name=args.name, drop_duplicates=not args.keep_duplicates, drop_flagged=args.drop_flagged,
                          drop_contaminated=not args.keep_contaminated, repo_id=args.repo_id)
    print(json.dumps(export_flow(lake=args.lake, out=args.out, config=config, card_dir=args.card_dir),
                     indent=2, default=str))


if __name__ == "__main__":
    main()
