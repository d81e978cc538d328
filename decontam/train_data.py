"""The training side: the lake, a Parquet/JSONL/CSV file, a saved or hub HF dataset.

Every source becomes parallel lists of texts, row ids and parent rows. A row of the
training side is one text to compare; its parent is the unit that `--write-clean`
drops (a file row, or a whole conversation for the lake and chat-format files).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from curate.core.errors import CurateError
from decontam.errors import TrainDataError

if TYPE_CHECKING:
    from curate.core.lake import Lake

logger = logging.getLogger(__name__)

TEXT_FIELDS = ("text", "prompt", "instruction", "question", "input", "content", "query")
CHAT_FIELDS = ("conversation", "conversations", "messages")
_USER_ROLES = {"user", "human"}
FILE_SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".json", ".csv", ".gz")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")  # ORG/NAME: what the hub accepts
CHECKED_TABLE = "decontam"  # the lake's annotation table of checked conversations (decontam.lake)


@dataclass
class TrainData:
    """Texts to compare, each with a readable id and the index of its parent row."""

    texts: list[str]
    ids: list[str]
    parents: list[int]
    source: str
    kind: str  # "lake", "file", "hf"
    table: pa.Table | None = field(default=None, repr=False)  # the parent rows, for --write-clean
    lake_root: Path | None = None
    # language code per text (the lake's language tag), None where unknown; decides which
    # rows the multilingual channel embeds (decontam.embed_search.other_language_rows)
    langs: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def load_train(spec: str, *, text_field: str | None = None, id_field: str | None = None) -> TrainData:
    """Read the training side named by `spec`.

    `spec` is `lake` or `lake:PATH` (user turns of the lake's conversations), a file
    (.parquet, .jsonl, .json, .csv), a folder saved with `datasets.save_to_disk`, or a
    hub dataset id (`hf:ORG/NAME`, needs a network).

    >>> train = load_train("lake:lake")                        # doctest: +SKIP
    >>> train = load_train("alpaca.jsonl", text_field="instruction")  # doctest: +SKIP
    """
    if spec == "lake" or spec.startswith("lake:"):
        from curate.core import settings

        root = Path(spec[5:]) if spec.startswith("lake:") else settings.lake_root()
        return _from_lake(root)
    path = Path(spec).expanduser()
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "state.json").exists() or (path / "dataset_dict.json").exists()):
        return _from_table(_load_from_disk(path), f"hf-disk:{path}", "hf", text_field, id_field)
    if path.is_dir() and (path / "catalog.duckdb").exists():
        return _from_lake(path)
    if path.is_file():
        return _from_table(_read_file(path), f"file:{path}", "file", text_field, id_field)
    if path.is_dir():
        raise TrainDataError(f"{spec} is a folder but neither a lake nor a saved dataset:"
                             " pass a file, a lake (lake:PATH) or a folder saved with save_to_disk")
    if spec.startswith("hf:") or (_HUB_ID.match(spec) and not path.name.lower().endswith(FILE_SUFFIXES)):
        return _from_table(_load_hub(spec.removeprefix("hf:")), f"hub:{spec}", "hf", text_field, id_field)
    raise TrainDataError(f"no such file: {spec} (check the path; a lake is lake:PATH, a hub dataset hf:ORG/NAME)")


def redacted_user_turns(lake: Lake, key: str | None = None) -> tuple[list[str], list[str], list[str], list[int], int]:
    """Redacted user turns of the lake's conversations (those not yet checked under `key`).

    The one reader of the lake's training side, for the pipeline and `decontam check
    --train lake` alike, so no report quotes what the PII tagger removed. Returns
    (conversation ids in id order, texts, text ids, parent positions, conversations
    without a redacted copy, which wait for the PII tagger).
    """
    tables = lake.annotation_tables()
    if "pii" not in tables:
        raise CurateError("decontam reads the redacted text: run the PII tagger first (`curate tag pii`)")
    con = lake.connect()
    try:
        cols = {r[0] for r in con.execute("DESCRIBE pii").fetchall()}
        red = "redacted_conversation" if "redacted_conversation" in cols else "conversation"
        done = (
            "AND c.conversation_id NOT IN (SELECT conversation_id FROM decontam WHERE check_key = ?)"
            if CHECKED_TABLE in tables and key is not None else ""
        )
        rows = con.execute(
            f"SELECT c.conversation_id, p.{red} FROM conversations c JOIN pii p USING (conversation_id)"
            f" WHERE true {done} ORDER BY c.conversation_id",
            [key] if done else [],
        ).fetchall()
        waiting = con.execute(
            "SELECT count(*) FROM conversations c ANTI JOIN pii p USING (conversation_id)"
        ).fetchall()[0][0]
    finally:
        con.close()
    ids, texts, text_ids, parents = [], [], [], []
    for pos, (cid, conv) in enumerate(rows):
        ids.append(cid)
        for j, m in enumerate(conv or []):
            if m["role"] == "user" and m["content"]:
                texts.append(m["content"])
                text_ids.append(f"{cid}#{j}")
                parents.append(pos)
    return ids, texts, text_ids, parents, int(waiting)


def user_turn_languages(lake: Lake, text_ids: list[str]) -> list[str | None]:
    """The language tagger's ISO 639-1 code of each user turn `<conversation_id>#<message index>`
    (the message's own tag, else its conversation's), None where the lake has no tag or it is unknown.

    decontam's multilingual channel embeds only the turns whose language differs from the
    benchmark's, so the lake's tags keep its cost with the non-English share.
    """
    table = lake.read_annotation("language", ["conversation_id", "language_code", "message_languages"])
    if table is None:
        return [None] * len(text_ids)
    wanted = {t.rsplit("#", 1)[0] for t in text_ids}
    per_turn: dict[str, str | None] = {}
    for cid, conv_code, msgs in zip(*(table.column(c).to_pylist() for c in table.column_names)):
        if cid not in wanted:
            continue
        per_turn[cid] = conv_code  # later parts (a re-tag) override earlier ones
        for m in msgs or []:
            per_turn[f"{cid}#{m['message_index']}"] = m.get("language_code")
    return [per_turn.get(t) or per_turn.get(t.rsplit("#", 1)[0]) for t in text_ids]


def _from_lake(root: Path) -> TrainData:
    """The lake's PII-redacted user turns, read as the pipeline reads them (never the raw text)."""
    from curate.core.lake import Lake

    lake = Lake(root)
    if not lake.exists():
        raise TrainDataError(f"no lake at {root}: check the path, or run `curate ingest` first")
    try:
        convs, texts, ids, parents, waiting = redacted_user_turns(lake)
    except CurateError as exc:
        raise TrainDataError(f"lake {root}: {exc}") from exc
    if waiting:
        raise TrainDataError(f"lake {root}: {waiting} conversations have no PII-redacted copy yet;"
                             " run `curate tag pii` first")
    logger.info("lake %s: %d user turns in %d conversations", root, len(texts), len(convs))
    return TrainData(texts, ids, parents, f"lake:{root}", "lake", table=None, lake_root=root,
                     langs=user_turn_languages(lake, ids))


def _read_file(path: Path) -> pa.Table:
    name = path.name.lower()
    if not os.access(path, os.R_OK):
        raise TrainDataError(f"cannot read {path}: permission denied (check its permissions: chmod +r)")
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if name.endswith((".jsonl", ".ndjson", ".json", ".jsonl.gz")):
            import polars as pl

            if name.endswith(".json"):
                return pl.read_json(path).to_arrow()
            return pl.read_ndjson(path, infer_schema_length=None).to_arrow()
        if name.endswith(".csv"):
            import pyarrow.csv as pacsv

            return pacsv.read_csv(path)
    except Exception as exc:  # the readers raise many types for a broken file
        raise TrainDataError(f"cannot read {path}: {type(exc).__name__}: {str(exc)[:200]}") from exc
    raise TrainDataError(f"cannot read {path}: use .parquet, .jsonl, .json or .csv")


def _load_from_disk(path: Path) -> pa.Table:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    return ds.data.table


def _load_hub(name: str) -> pa.Table:
    try:
        import datasets

        ds = datasets.load_dataset(name, split="train")
    except Exception as exc:
        raise TrainDataError(
            f"cannot load hub dataset {name} ({type(exc).__name__}); offline, save it to a file first"
        ) from exc
    return ds.data.table


def _from_table(table: pa.Table, source: str, kind: str, text_field: str | None, id_field: str | None) -> TrainData:
    columns = table.column_names
    field_name = text_field or next((c for c in TEXT_FIELDS if c in columns), None) or next(
        (c for c in CHAT_FIELDS if c in columns), None
    )
    if field_name is None:
        raise TrainDataError(f"{source}: no text column among {', '.join(columns)}; pass --train-field NAME")
    if field_name not in columns:
        raise TrainDataError(f"{source}: no column {field_name!r}; pass --train-field with one of: {', '.join(columns)}")
    values = table.column(field_name).to_pylist()
    id_field = id_field or next((c for c in ("id", "conversation_id", "uuid") if c in columns), None)
    row_ids = table.column(id_field).to_pylist() if id_field and id_field in columns else None
    texts: list[str] = []
    ids: list[str] = []
    parents: list[int] = []
    for i, value in enumerate(values):
        rid = str(row_ids[i]) if row_ids is not None else str(i)
        if isinstance(value, list):  # chat format: one row per user turn
            for j, msg in enumerate(value):
                text = _user_text(msg)
                if text:
                    texts.append(text)
                    ids.append(f"{rid}#{j}")
                    parents.append(i)
        elif value is not None:
            texts.append(str(value))
            ids.append(rid)
            parents.append(i)
    logger.info("%s: %d texts from %d rows (column %s)", source, len(texts), table.num_rows, field_name)
    return TrainData(texts, ids, parents, source, kind, table=table)


def _user_text(msg: Any) -> str | None:
    if isinstance(msg, str):
        return msg
    if isinstance(msg, dict):
        role = str(msg.get("role", msg.get("from", ""))).lower()
        if role in _USER_ROLES:
            content = msg.get("content", msg.get("value"))
            return content if isinstance(content, str) else None
    return None
