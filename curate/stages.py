"""The stage contract: one function per stage, `run_<stage>(lake, config, *, ...) -> StageStats`.

`config` says how the stage behaves (a frozen dataclass next to the stage, validated before
any data is read; None means its defaults); keyword arguments say on what and with what
(input files, output folders, a model client, a progress callback). Each returns a
`curate.core.stats.StageStats`: rows in, rows kept, rows dropped by reason, seconds, and the
stage's own figures in `details`.

The flows (`flows/`) and the CLI call these functions, by name: grep finds every caller.

>>> stats = run_dedup(Lake("lake"), DedupConfig(semantic=False))   # doctest: +SKIP
>>> stats.total, stats.kept, stats.dropped                          # doctest: +SKIP
(66, 40, {'exact': 22, 'near': 4})
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.core.stats import StageStats

if TYPE_CHECKING:
    from curate.core.lake import Lake
    from curate.dedup.dedup import DedupConfig
    from curate.export.export import ExportConfig
    from curate.ingest.ingest import IngestConfig
    from curate.models.llm import ChatClient
    from curate.review.page import ReviewConfig
    from curate.tag.language import LanguageConfig
    from curate.tag.pii import PIIConfig
    from curate.tag.topics import TopicsConfig
    from decontam.lake import LakeCheckConfig
    from moderation.llm_tier import LLMTierConfig
    from moderation.local import LocalConfig

Progress = Callable[..., None] | None


def run_ingest(lake: Lake, config: IngestConfig | None = None, *, inputs: Iterable[str | os.PathLike],
               progress: Progress = None) -> StageStats:
    """Read the log files under `inputs` into the lake (files already held are skipped)."""
    from curate.ingest.ingest import ingest

    t0 = time.perf_counter()
    stats = ingest(lake, list(inputs), config, progress=progress)
    counts = stats.as_dict()
    counts["per_file"] = [
        {"path": f.path, "action": f.action, "records_in": f.records_in, "rows_kept": f.rows_kept,
         "rows_quarantined": f.rows_quarantined}
        for f in stats.files
    ]
    return StageStats.from_counts("ingest", counts, seconds=time.perf_counter() - t0)


def run_dedup(lake: Lake, config: DedupConfig | None = None, *, progress: Progress = None) -> StageStats:
    """Mark exact, near and semantic duplicates (the `dedup` annotation table)."""
    from curate.dedup.dedup import DedupConfig, run_dedup as dedup

    t0 = time.perf_counter()
    stats = dedup(lake, config or DedupConfig(), progress=progress)
    return StageStats.from_counts("dedup", stats.as_dict(), seconds=time.perf_counter() - t0)


def _tagged(stage: str, stats: Any, t0: float) -> StageStats:
    """A tagger drops nothing: every conversation it saw is kept, `tagged` of them by this run."""
    counts = stats.as_dict()
    return StageStats(stage, total=counts["total"], kept=counts["total"], seconds=round(time.perf_counter() - t0, 3),
                      run_id=counts.get("run_id"), details=counts)


def run_tag_pii(lake: Lake, config: PIIConfig | None = None, *, progress: Progress = None) -> StageStats:
    """Redact PII into the `pii` table (every later stage that quotes text reads it)."""
    from curate.tag.pii import tag_pii

    t0 = time.perf_counter()
    return _tagged("tag_pii", tag_pii(lake, config, progress=progress), t0)


def run_tag_language(lake: Lake, config: LanguageConfig | None = None, *, progress: Progress = None) -> StageStats:
    """Detect each conversation's languages (the `language` table)."""
    from curate.tag.language import tag_language

    t0 = time.perf_counter()
    return _tagged("tag_language", tag_language(lake, config, progress=progress), t0)


def run_tag_moderation(lake: Lake, config: LocalConfig | None = None, *, progress: Progress = None) -> StageStats:
    """Moderation tier 1, on this machine (the `moderation` table)."""
    from moderation.tag import tag_moderation_local

    t0 = time.perf_counter()
    return _tagged("tag_moderation", tag_moderation_local(lake, config, progress=progress), t0)


def run_tag_moderation_llm(lake: Lake, config: LLMTierConfig | None = None, *, client: ChatClient,
                           progress: Progress = None) -> StageStats:
    """Moderation tier 2: the served model reviews what tier 1 was unsure of."""
    from moderation.tag import tag_moderation_llm

    t0 = time.perf_counter()
    return _tagged("tag_moderation_llm", tag_moderation_llm(lake, client, config, progress=progress), t0)


def run_tag_topics(lake: Lake, config: TopicsConfig | None = None, *, client: ChatClient | None = None,
                   progress: Progress = None) -> StageStats:
    """Cluster first prompts into topics, labelled by the served model when `client` is given."""
    from curate.tag.topics import tag_topics

    t0 = time.perf_counter()
    return _tagged("tag_topics", tag_topics(lake, config, client=client, progress=progress), t0)


def run_decontam(lake: Lake, config: LakeCheckConfig | None = None, *, judge: Any = None,
                 progress: Progress = None) -> StageStats:
    """Check new conversations (redacted text) against benchmarks; writes the reports."""
    from decontam.lake import LakeCheckConfig, check_lake

    config = config or LakeCheckConfig()
    t0 = time.perf_counter()
    counts = check_lake(lake, list(config.benchmarks), config.check, judge=judge, report_dir=config.report_dir,
                        progress=progress)
    return StageStats.from_counts("decontam", counts, seconds=time.perf_counter() - t0)


def run_export(lake: Lake, config: ExportConfig | None = None, *, dest: str | os.PathLike,
               card_dir: str | os.PathLike | None = None) -> StageStats:
    """Export the kept conversations (redacted text only) to `dest` with the data card;
    a copy of the card goes to `card_dir` when given."""
    from curate.export.data_card import card_writer, copy_card
    from curate.export.export import export_dataset

    t0 = time.perf_counter()
    result = export_dataset(lake, dest, config, card=card_writer(lake))
    counts = {**result.stats, "path": str(result.path), "exclusions": str(result.exclusions_path)}
    if card_dir is not None:
        counts["card"] = str(copy_card(result.path, card_dir))
    counts["shards"] = len(result.shards)
    return StageStats.from_counts("export", counts, seconds=time.perf_counter() - t0)


def run_review(lake: Lake, config: ReviewConfig | None = None, *, out_dir: str | os.PathLike,
               decontam_reports: Sequence[str | os.PathLike] = ()) -> StageStats:
    """Write the review page (`out_dir/index.html`); it drops nothing."""
    from curate.review.page import write_review_page

    t0 = time.perf_counter()
    path = write_review_page(lake, out_dir, config, decontam_reports=list(decontam_reports))
    return StageStats("review", seconds=round(time.perf_counter() - t0, 3),
                      details={"path": str(path), "bytes": Path(path).stat().st_size})


TAGGERS: dict[str, Callable[..., StageStats]] = {
    "pii": run_tag_pii, "language": run_tag_language, "moderation": run_tag_moderation,
    "moderation_llm": run_tag_moderation_llm, "topics": run_tag_topics,
}
