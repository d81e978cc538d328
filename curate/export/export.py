"""Export the lake as a Hugging Face dataset: Parquet shards plus a README data card.

Only redacted text leaves the lake: the `conversation` column is the PII tagger's
redacted copy, never the raw one, and the export refuses (`ExportError`) while any
conversation it would write has no PII annotation. Free-form columns that may carry raw
text (`metadata`, `source_file`, `user_id`) are never exported.

Columns follow LMSYS-Chat-1M (`conversation_id`, `model`, `conversation`, `turn`,
`language`, `openai_moderation`, `redacted`) plus our tags (`language_code`,
`moderation_flagged`, `topic`, `topic_label`, `duplicate`, `duplicate_of`,
`contaminated`). A tag whose annotation table is absent is a null column, so the schema
never depends on which stages ran.

Every conversation the export leaves out gets an exclusions row (`id, stage, reason,
detail, run_id`) in `<name>.exclusions.parquet` beside the dataset folder, and
`total == kept + sum(dropped_*)`.

>>> from curate.core.lake import Lake                                        # doctest: +SKIP
>>> result = export_dataset(Lake("lake"), "out/export/demo", ExportConfig())  # doctest: +SKIP
>>> datasets.load_dataset(str(result.path), split="train")              # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.errors import ConfigError, CurateError
from curate.core.lake import DIR_MODE, FILE_MODE, Lake, new_run_id, write_parquet_atomic
from curate.core.reasons import Reason

log = logging.getLogger(__name__)

PII_TABLE = "pii"
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

# The exported schema, in column order. LMSYS-Chat-1M's columns first, then our tags.
LMSYS_COLUMNS = ("conversation_id", "model", "conversation", "turn", "language", "openai_moderation", "redacted")
EXCLUSIONS_SCHEMA = pa.schema(
    [("id", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
     ("run_id", pa.string())]
)


class ExportError(CurateError):
    """The export cannot be written as asked (e.g. text that is not redacted)."""


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    """What the export keeps, and where it is pushed. Validated before any data is read.

    The one export config: the CLI, the flows (a Prefect parameter: pydantic validates a
    dataclass) and the library all take it. `repo_id`/`private` say where `push_to_hub`
    goes; the token comes from `HF_TOKEN`, never from here.
    """

    name: str = "chatcurate-demo"
    pretty_name: str | None = None
    drop_duplicates: bool = True
    # variants (same template, other values; dedup's duplicate_kind 'variant') are kept unless asked
    drop_variants: bool = False
    drop_flagged: bool = False
    drop_contaminated: bool = True
    shard_rows: int = 100_000
    license: str = "other"
    task_categories: tuple[str, ...] = ("text-generation",)
    tags: tuple[str, ...] = ("chat", "conversations", "chatcurate")
    repo_id: str | None = None  # push to this Hub dataset repo (needs HF_TOKEN)
    private: bool = True

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$", self.name):
            raise ConfigError(f"export name {self.name!r}: use letters, digits, '.', '_' and '-' (max 96)")
        if self.shard_rows < 1:
            raise ConfigError("shard_rows must be at least 1")
        if not self.license:
            raise ConfigError("license must name a licence id (e.g. 'other', 'cc-by-4.0')")


@dataclass
class ExportResult:
    path: Path  # the dataset folder (README.md + data/)
    exclusions_path: Path
    rows: int
    shards: list[Path]
    stats: dict
    metadata: dict = field(default_factory=dict)  # the card's YAML metadata


# ---- selecting rows -------------------------------------------------------------------
def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


def _pick(cols: set[str], *names: str) -> str | None:
    return next((n for n in names if n in cols), None)


def _latest(con, table: str, alias: str) -> str:
    """A join on `table` that keeps one row per conversation: the latest fit or run.

    Annotation tables are append-only; a refit (topics) or a check with other settings
    (decontam) adds rows, and readers take the newest.
    """
    cols = _columns(con, table)
    order = _pick(cols, "fit_id", "run_id")
    if order is None:
        return f"LEFT JOIN {table} {alias} USING (conversation_id)"
    return (
        f"LEFT JOIN (SELECT * FROM {table} QUALIFY row_number() OVER"
        f" (PARTITION BY conversation_id ORDER BY {order} DESC NULLS LAST) = 1) {alias} USING (conversation_id)"
    )


def select_rows(lake: Lake, config: ExportConfig, *, run_id: str | None = None) -> tuple[pa.Table, pa.Table, dict]:
    """The rows to export (sorted by conversation_id), the exclusions and the counts.

    Raises `ExportError` when a conversation to export has no redacted copy.
    """
    run_id = run_id or new_run_id()
    tables = set(lake.annotation_tables())
    con = lake.connect()
    try:
        if PII_TABLE not in tables:
            n = con.execute("SELECT count(*) FROM conversations").fetchall()[0][0]
            if n:
                raise ExportError(
                    f"refusing to export {n} conversations: the lake has no PII annotation, and only redacted"
                    " text may leave the lake (run the PII tagger first: `curate tag pii`, or the pipeline)"
                )
        joins, select = [], {}
        pii_cols = _columns(con, PII_TABLE) if PII_TABLE in tables else set()
        red_conv = _pick(pii_cols, "redacted_conversation", "conversation")
        red_flag = _pick(pii_cols, "redacted")
        if PII_TABLE in tables and red_conv is None:
            raise ExportError("the pii annotation has no redacted conversation column; cannot export")
        if PII_TABLE in tables:
            joins.append(_latest(con, "pii", "p"))
        select["conversation"] = f"p.{red_conv}" if red_conv else "NULL"
        select["redacted"] = f"coalesce(p.{red_flag}, false)" if red_flag else "false"
        select["_has_pii"] = "p.conversation_id IS NOT NULL" if PII_TABLE in tables else "false"

        if "language" in tables:
            cols = _columns(con, "language")
            joins.append(_latest(con, "language", "l"))
            select["language"] = "l.language" if "language" in cols else "NULL"
            select["language_code"] = "l.language_code" if "language_code" in cols else "NULL"
        if "moderation" in tables:
            cols = _columns(con, "moderation")
            joins.append(_latest(con, "moderation", "m"))
            select["openai_moderation"] = "m.openai_moderation" if "openai_moderation" in cols else "NULL"
            select["moderation_flagged"] = "m.flagged" if "flagged" in cols else "NULL"
        if "topics" in tables:
            cols = _columns(con, "topics")
            joins.append(_latest(con, "topics", "t"))
            tid = _pick(cols, "topic", "topic_id", "cluster")
            tlabel = _pick(cols, "topic_label", "label")
            select["topic"] = f"CAST(t.{tid} AS INTEGER)" if tid else "NULL"
            select["topic_label"] = f"t.{tlabel}" if tlabel else "NULL"
        dup_reason = "NULL"
        if "dedup" in tables:
            cols = _columns(con, "dedup")
            joins.append(_latest(con, "dedup", "d"))
            dup_of = _pick(cols, "duplicate_of")
            capped = "coalesce(d.frequency_capped, false)" if "frequency_capped" in cols else "false"
            variant = ("coalesce(d.duplicate_kind = 'variant', false)"
                       if config.drop_variants and "duplicate_kind" in cols else "false")
            if "is_representative" in cols:
                select["duplicate"] = f"(NOT coalesce(d.is_representative, true) OR {capped} OR {variant})"
            elif dup_of:
                select["duplicate"] = f"(coalesce(d.{dup_of} <> conversation_id, false) OR {capped})"
            var_of = "CAST(d.variant_of AS VARCHAR)" if "variant_of" in cols and config.drop_variants else "NULL"
            select["duplicate_of"] = f"coalesce(CAST(d.{dup_of} AS VARCHAR), {var_of})" if dup_of else "NULL"
            kind = _pick(cols, "duplicate_kind")
            if kind:
                dup_reason = (f"CASE WHEN d.{kind} IS NOT NULL THEN d.{kind} WHEN {capped} THEN 'frequency_capped'"
                              " END")
        select["_dup_reason"] = dup_reason
        if "decontam" in tables:
            joins.append(_latest(con, "decontam", "x"))
            select["contaminated"] = "coalesce(x.contaminated, false)"
            select["_contam_detail"] = "x.benchmarks"
        defaults = {
            "language": "NULL", "language_code": "NULL", "openai_moderation": "NULL", "moderation_flagged": "NULL",
            "topic": "NULL", "topic_label": "NULL", "duplicate": "false", "duplicate_of": "NULL",
            "contaminated": "false", "_contam_detail": "NULL",
        }
        for k, v in defaults.items():
            select.setdefault(k, v)
        query = (
            "SELECT conversation_id, c.model, c.turn, c.user_id AS _user_id, "
            + ", ".join(f"{expr} AS {name}" for name, expr in select.items())
            + " FROM conversations c " + " ".join(joins) + " ORDER BY conversation_id"
        )
        rows = con.sql(query).to_arrow_table()
    finally:
        con.close()
    if "review" in tables:  # a reviewer's accept/reject outranks the stages' flags
        from curate.export.review_decisions import honour_in_export

        rows = honour_in_export(lake, rows)
    return _apply_drops(rows, config, run_id)


def _apply_drops(rows: pa.Table, config: ExportConfig, run_id: str) -> tuple[pa.Table, pa.Table, dict]:
    import pyarrow.compute as pc

    total = rows.num_rows
    n = total
    reasons: list[str | None] = [None] * n
    details: list[str | None] = [None] * n
    ids = rows.column("conversation_id").to_pylist()

    def mark(mask, reason: str, detail_fn: Callable[[int], str]) -> None:
        for i, hit in enumerate(mask):
            if hit and reasons[i] is None:
                reasons[i] = reason
                details[i] = detail_fn(i)

    if "_review_drop" in rows.column_names:  # accepted by a reviewer: dropped whatever the config says
        review_drop, review_detail = rows.column("_review_drop").to_pylist(), rows.column("_review_detail").to_pylist()
        for i, reason in enumerate(review_drop):
            if reason is not None:
                reasons[i], details[i] = reason, review_detail[i]
    if config.drop_duplicates:
        dup = rows.column("duplicate").to_pylist()
        dup_of = rows.column("duplicate_of").to_pylist()
        why = rows.column("_dup_reason").to_pylist()
        mark(dup, str(Reason.EXPORT_DUPLICATE),
             lambda i: json.dumps({"duplicate_of": dup_of[i], "why": None if why[i] is None else str(why[i])}))
    if config.drop_contaminated:
        con = rows.column("contaminated").to_pylist()
        det = rows.column("_contam_detail").to_pylist()
        mark(con, str(Reason.EXPORT_CONTAMINATED), lambda i: json.dumps({"benchmarks": det[i]}, default=str))
    if config.drop_flagged:
        fl = [bool(x) for x in rows.column("moderation_flagged").to_pylist()]
        mark(fl, str(Reason.EXPORT_FLAGGED), lambda i: json.dumps({"moderation_flagged": True}))
    keep = pa.array([r is None for r in reasons])
    kept = rows.filter(keep)
    # Redaction is checked on what is exported, after the drops: a duplicate that is not
    # exported does not need a redacted copy, but every kept row does.
    unredacted = kept.num_rows - pc.sum(kept.column("_has_pii")).as_py() if kept.num_rows else 0
    if unredacted:
        raise ExportError(
            f"refusing to export: {unredacted} conversations have no PII annotation yet (only redacted text may"
            " leave the lake); run the PII tagger over the whole lake first (`curate tag pii`)"
        )
    dropped_idx = [i for i, r in enumerate(reasons) if r is not None]
    exclusions = pa.table(
        {
            "id": [ids[i] for i in dropped_idx],
            "stage": ["export"] * len(dropped_idx),
            "reason": [reasons[i] for i in dropped_idx],
            "detail": [details[i] for i in dropped_idx],
            "run_id": [run_id] * len(dropped_idx),
        },
        schema=EXCLUSIONS_SCHEMA,
    )
    counts: dict[str, int] = {}
    for i in dropped_idx:
        counts[f"dropped_{reasons[i]}"] = counts.get(f"dropped_{reasons[i]}", 0) + 1
    stats = {"total": total, "kept": kept.num_rows, **dict(sorted(counts.items()))}
    assert stats["total"] == stats["kept"] + sum(counts.values())
    return kept, exclusions, stats


def to_export_table(kept: pa.Table) -> pa.Table:
    """The public columns only, in order (internal `_` columns dropped)."""
    public = [c for c in kept.column_names if not c.startswith("_")]
    order = list(LMSYS_COLUMNS) + [c for c in public if c not in LMSYS_COLUMNS]
    table = kept.select(order)
    # A column that is null everywhere has Arrow type null, which `datasets` cannot cast;
    # give it its documented type.
    types = {"language": pa.string(), "language_code": pa.string(), "topic": pa.int32(), "topic_label": pa.string(),
             "moderation_flagged": pa.bool_(), "duplicate_of": pa.string(), "conversation": pa.list_(MESSAGE),
             "openai_moderation": pa.list_(pa.struct([("flagged", pa.bool_())]))}
    for name, typ in types.items():
        if name in table.column_names and pa.types.is_null(table.schema.field(name).type):
            table = table.set_column(table.column_names.index(name), name, pa.nulls(table.num_rows, typ))
    return table.replace_schema_metadata(None)


# ---- the card's YAML metadata -------------------------------------------------------------
def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if n < bound), "n>1T" if n >= 10**12 else "1B<n<10B")


def card_metadata(table: pa.Table, config: ExportConfig, shard_names: list[str]) -> dict:
    """The YAML header of the dataset card: licence, languages, size, tasks, configs, features."""
    import datasets

    codes = sorted({c for c in table.column("language_code").to_pylist() if c}) if "language_code" in table.column_names else []
    features = datasets.Features.from_arrow_schema(table.schema)
    return {
        "license": config.license,
        "language": codes or None,
        "multilinguality": "multilingual" if len(codes) > 1 else "monolingual",
        "size_categories": [size_category(table.num_rows)],
        "task_categories": list(config.task_categories),
        "pretty_name": config.pretty_name or config.name,
        "tags": list(config.tags),
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        "dataset_info": {
            "features": features._to_yaml_list(),
            "splits": [{"name": "train", "num_bytes": table.nbytes, "num_examples": table.num_rows}],
            "dataset_size": table.nbytes,
        },
    }


def render_readme(metadata: dict, body: str) -> str:
    """README.md text: YAML front matter (deterministic key order) plus the card body."""
    import yaml

    meta = {k: v for k, v in metadata.items() if v is not None}
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{header}---\n\n{body.rstrip()}\n"


# ---- writing ---------------------------------------------------------------------------
def _shards(table: pa.Table, rows_per_shard: int) -> list[pa.Table]:
    n = max(1, -(-table.num_rows // rows_per_shard))
    return [table.slice(i * rows_per_shard, rows_per_shard) for i in range(n)]


def _swap_into_place(tmp: Path, dest: Path) -> None:
    """Replace folder `dest` by `tmp`: readers see the old or the new folder, never a mix."""
    old = None
    if dest.exists():
        old = dest.with_name(f".old-{dest.name}-{os.getpid()}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _clean_leftovers(parent: Path, name: str) -> None:
    """Remove temporaries of an export killed half-way (they never became the dataset)."""
    if parent.exists():
        for p in parent.iterdir():
            if p.name.startswith((f".tmp-{name}-", f".old-{name}-")):
                shutil.rmtree(p, ignore_errors=True)


@dataclass
class CardInput:
    """What the card writer gets: the exported table, the same rows with internal columns
    (`_user_id`, ...), the exclusions, the export counts and the YAML metadata."""

    table: pa.Table
    internal: pa.Table
    exclusions: pa.Table
    stats: dict
    metadata: dict


CardWriter = Callable[[CardInput, Path], str]


def export_dataset(
    lake: Lake,
    dest: str | os.PathLike,
    config: ExportConfig | None = None,
    *,
    card: CardWriter | None = None,
    run_id: str | None = None,
) -> ExportResult:
    """Write the dataset folder `dest` (README.md, data/train-*.parquet) atomically.

    `card(CardInput, folder) -> markdown body` writes the card's images into `folder`
    and returns its text; without it the body is a short summary.
    The exclusions go to `<dest>.exclusions.parquet`.
    """
    config = config or ExportConfig()
    dest = Path(dest)
    run_id = run_id or new_run_id()
    kept, exclusions, stats = select_rows(lake, config, run_id=run_id)
    table = to_export_table(kept)
    dest.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _clean_leftovers(dest.parent, dest.name)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".tmp-{dest.name}-"))
    try:
        os.chmod(tmp, DIR_MODE)
        shards = _shards(table, config.shard_rows)
        names = [f"train-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))]
        for shard, name in zip(shards, names):
            (tmp / "data").mkdir(exist_ok=True, mode=DIR_MODE)
            pq.write_table(shard, tmp / "data" / name, compression="zstd")
            os.chmod(tmp / "data" / name, FILE_MODE)
        metadata = card_metadata(table, config, names)
        body = card(CardInput(table, kept, exclusions, stats, metadata), tmp) if card else _summary(table, stats)
        (tmp / "README.md").write_text(render_readme(metadata, body), encoding="utf-8")
        os.chmod(tmp / "README.md", FILE_MODE)
        _swap_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    excl_path = dest.with_name(dest.name + ".exclusions.parquet")
    write_parquet_atomic(exclusions, excl_path)
    log.info("exported %d of %d conversations to %s", stats["kept"], stats["total"], dest)
    return ExportResult(dest, excl_path, table.num_rows, [dest / "data" / n for n in names], stats, metadata)


def _summary(table: pa.Table, stats: dict) -> str:
    lines = ["# Dataset", "", f"{table.num_rows} conversations exported by chatcurate.", ""]
    lines += [f"- {k}: {v}" for k, v in stats.items()]
    return "\n".join(lines)


# ---- the Hub --------------------------------------------------------------------------
def push_to_hub(path: str | os.PathLike, repo_id: str, token: str, *, private: bool = True) -> str:
    """Upload the dataset folder to `repo_id` (a dataset repo). Returns the repo URL.

    The token is passed to the client only; it never appears in logs or in errors
    raised from here.
    """
    if not token:
        raise ConfigError("pushing needs a Hugging Face token (set HF_TOKEN)")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise ConfigError("HF_HUB_OFFLINE is set: unset it (HF_HUB_OFFLINE=0) to push to the Hub")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    failure = None
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(path), repo_id=repo_id, repo_type="dataset",
                          commit_message="chatcurate export")
    except Exception as exc:  # noqa: BLE001 - any client error: reported without the token
        failure = f"{type(exc).__name__}: {str(exc).replace(token, '***')[:300]}"
    if failure is not None:
        # raised outside the handler, so no chained exception carries the token's text
        raise ExportError(f"push to {repo_id} failed: {failure}")
    return f"https://huggingface.co/datasets/{repo_id}"

