"""Data cards generated from the lake and the export, never written by hand.

`collect_stats` gathers everything the card shows into one JSON-able dict (the
LMSYS-Chat-1M statistics table, distributions by language and model, moderation flag
rates per category, topic clusters, what ingest, dedup, decontam and the export left
out and why); `write_plots` draws it (matplotlib, Agg backend); `render_card` writes the
Markdown. The card holds no timestamps, run ids or machine paths, so the same lake gives
the same card byte for byte: `data_cards/` keeps the demo run's card and a test fails
when it is stale.

Only counts and names reach the card: no conversation text, so nothing the PII tagger
redacted can surface here.

>>> writer = card_writer(Lake("lake"))                                   # doctest: +SKIP
>>> export_dataset(Lake("lake"), "out/export/demo", card=writer)          # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from curate.core.lake import Lake

log = logging.getLogger(__name__)

PLOTS = ("languages", "models", "moderation", "topics", "funnel")
STATS_FILE = "card_stats.json"
TOKENIZER_NAME = "all-MiniLM-L6-v2 WordPiece (bert-base-uncased vocabulary)"
TOP_N = 15


# ---- tokens --------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _tokenizer():
    from tokenizers import Tokenizer

    from curate.models.embed import default_model_path

    tok = Tokenizer.from_file(str(Path(default_model_path()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens(texts: list[str], max_chars: int = 200_000) -> list[int]:
    """Token counts (no special tokens). Texts are cut at `max_chars` to bound the cost."""
    if not texts:
        return []
    enc = _tokenizer().encode_batch([t[:max_chars] for t in texts], add_special_tokens=False)
    return [len(e.ids) for e in enc]


# ---- statistics ------------------------------------------------------------------------------
def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


def _ranked(counter: Counter) -> list[list]:
    return [[k, v] for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))]


def lmsys_table(table: pa.Table, internal: pa.Table) -> dict:
    """LMSYS-Chat-1M's table 1: conversations, models, users, languages, turns, tokens."""
    prompts, responses = [], []
    for conv in table.column("conversation").to_pylist():
        for m in conv or []:
            if m["role"] == "user":
                prompts.append(m["content"] or "")
            elif m["role"] == "assistant":
                responses.append(m["content"] or "")
    p_tok, r_tok = count_tokens(prompts), count_tokens(responses)
    n = table.num_rows
    languages = {x for x in table.column("language").to_pylist() if x and x != "unknown"}
    turns = [t for t in table.column("turn").to_pylist() if t is not None]
    return {
        "conversations": n,
        "models": len({m for m in table.column("model").to_pylist() if m}),
        "users": len({u for u in internal.column("_user_id").to_pylist() if u}) if "_user_id" in internal.column_names else None,
        "languages": len(languages),
        "avg_turns": _r(sum(turns) / len(turns)) if turns else None,
        "avg_prompt_tokens": _r(sum(p_tok) / len(p_tok)) if p_tok else None,
        "avg_response_tokens": _r(sum(r_tok) / len(r_tok)) if r_tok else None,
        "prompts": len(prompts),
        "responses": len(responses),
    }


def _distribution(values: Iterable, missing: str) -> list[list]:
    return _ranked(Counter(v if v not in (None, "") else missing for v in values))


def _moderation(con, tables: list[str]) -> dict | None:
    if "moderation" not in tables:
        return None
    n_conv, n_flag = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE flagged) FROM moderation"
    ).fetchall()[0]
    msgs = con.sql(
        "SELECT conversation_id, v.categories AS cats FROM moderation, unnest(openai_moderation) AS u(v)"
    ).to_arrow_table()
    per_msg: Counter = Counter()
    per_conv: dict[str, set] = {}
    cats_col = msgs.column("cats").combine_chunks() if msgs.num_rows else None
    names = [f.name for f in cats_col.type] if cats_col is not None and pa.types.is_struct(cats_col.type) else []
    ids = msgs.column("conversation_id").to_pylist() if msgs.num_rows else []
    for name in names:
        flags = cats_col.field(name).to_pylist()
        per_msg[name] = sum(1 for f in flags if f)
        per_conv[name] = {ids[i] for i, f in enumerate(flags) if f}
    return {
        "conversations": int(n_conv),
        "messages": msgs.num_rows,
        "flagged_conversations": int(n_flag),
        "flagged_rate": _r(n_flag / n_conv, 4) if n_conv else None,
        "categories": [
            [name, per_msg[name], _r(per_msg[name] / msgs.num_rows, 4) if msgs.num_rows else None,
             len(per_conv[name]), _r(len(per_conv[name]) / n_conv, 4) if n_conv else None]
            for name in sorted(names)
        ],
    }


def _pii(con, tables: list[str]) -> dict | None:
    if "pii" not in tables:
        return None
    n, red = con.execute("SELECT count(*), count(*) FILTER (WHERE redacted) FROM pii").fetchall()[0]
    out = {"conversations": int(n), "redacted_conversations": int(red), "by_kind": []}
    cols = {r[0]: r[1] for r in con.execute("DESCRIBE pii").fetchall()}
    if "counts" in cols:
        counts = con.sql("SELECT counts FROM pii").to_arrow_table().column("counts").combine_chunks()
        if pa.types.is_struct(counts.type):
            import pyarrow.compute as pc

            out["by_kind"] = _ranked(Counter({f.name: int(pc.sum(counts.field(f.name)).as_py() or 0) for f in counts.type}))
    return out


_NULL_LABELS = {"duplicate_kind": "kept (not a duplicate)", "decided_by": "not contaminated"}


def _table_counts(con, table: str, tables: list[str], candidates: tuple[str, ...]) -> dict | None:
    if table not in tables:
        return None
    cols = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    out: dict = {"rows": int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])}
    for col in candidates:
        if col in cols:
            rows = con.execute(f"SELECT CAST({col} AS VARCHAR), count(*) FROM {table} GROUP BY 1").fetchall()
            null = _NULL_LABELS.get(col, "none")
            out[f"by_{col}"] = _ranked(Counter({(null if k is None else k): int(v) for k, v in rows}))
    return out


def collect_stats(lake: Lake, inp) -> dict:
    """Everything the card shows, from the lake and the export (`curate.export.export.CardInput`)."""
    table, internal = inp.table, inp.internal
    con = lake.connect()
    try:
        tables = lake.annotation_tables()
        ingest = lake.stats()
        stats: dict = {
            "name": inp.metadata.get("pretty_name"),
            "lmsys_table": lmsys_table(table, internal),
            "tokenizer": TOKENIZER_NAME,
            "languages": _distribution(table.column("language").to_pylist(), "untagged"),
            "models": _distribution(table.column("model").to_pylist(), "unknown"),
            "moderation": _moderation(con, tables),
            "pii": _pii(con, tables),
            "topics": None,
            "ingest": {
                "source_files": ingest["source_files"],
                "duplicate_files_skipped": ingest["duplicate_files_skipped"],
                "records_in": ingest["records_in"],
                "rows_kept": ingest["rows_kept"],
                "rows_quarantined": ingest["rows_quarantined"],
                "quarantine_reasons": _ranked(Counter(ingest["quarantine_reasons"])),
            },
            "dedup": _table_counts(con, "dedup", tables, ("duplicate_kind", "frequency_capped")),
            "decontam": _table_counts(con, "decontam", tables, ("contaminated", "decided_by")),
            "annotations": tables,
            "export": {k: v for k, v in inp.stats.items()},
            "exclusion_reasons": _ranked(Counter(inp.exclusions.column("reason").to_pylist())),
        }
        if "decontam" in tables:
            rows = con.execute(
                "SELECT b, count(*) FROM decontam, unnest(benchmarks) AS u(b) WHERE contaminated GROUP BY 1"
            ).fetchall()
            stats["decontam"]["by_benchmark"] = _ranked(Counter({k: int(v) for k, v in rows}))
        if "topic" in table.column_names and table.column("topic").null_count < table.num_rows:
            labels = {}
            for t, lab in zip(table.column("topic").to_pylist(), table.column("topic_label").to_pylist()):
                if t is not None:
                    labels.setdefault(t, lab)
            counts = Counter(t for t in table.column("topic").to_pylist() if t is not None)
            stats["topics"] = [[t, labels.get(t), c] for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    finally:
        con.close()
    return json.loads(json.dumps(stats, default=str))  # plain JSON types only


# ---- plots ---------------------------------------------------------------------------------------
def _barh(path: Path, pairs: list[list], title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = pairs[:TOP_N][::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.35 * len(pairs) + 1)), dpi=100)
    ax.barh([str(p[0])[:40] for p in pairs], [p[1] for p in pairs], color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    with warnings.catch_warnings():
        # Labels in scripts the bundled DejaVu font lacks (CJK topic words) are drawn as boxes;
        # matplotlib's warning per glyph would reach the user's terminal.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        fig.tight_layout()
        # no Software/date metadata: the PNG bytes depend on the data only
        fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def write_plots(stats: dict, folder: str | os.PathLike) -> dict[str, str]:
    """Draw the card's PNGs into `folder`; returns {plot: file name} for those drawn."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, str] = {}

    def draw(name: str, pairs: list[list], title: str, xlabel: str) -> None:
        if pairs:
            _barh(folder / f"{name}.png", pairs, title, xlabel)
            drawn[name] = f"{name}.png"

    draw("languages", stats["languages"], "Conversations by language", "conversations")
    draw("models", stats["models"], "Conversations by model", "conversations")
    if stats.get("moderation"):
        draw("moderation", [[c[0], c[2] * 100] for c in stats["moderation"]["categories"] if c[1]],
             "Messages flagged per moderation category", "% of messages")
    if stats.get("topics"):
        draw("topics", [[f"{t[0]}: {t[1] or ''}", t[2]] for t in stats["topics"]], "Topic clusters", "conversations")
    ing, exp = stats["ingest"], stats["export"]
    funnel = [["records read", ing["records_in"]], ["quarantined", ing["rows_quarantined"]],
              ["in the lake", ing["rows_kept"]]]
    funnel += [[k.removeprefix("dropped_").replace("_", " ") + " (dropped)", v] for k, v in exp.items() if k.startswith("dropped_")]
    funnel += [["exported", exp["kept"]]]
    draw("funnel", funnel, "From logs to dataset", "conversations")
    return drawn


# ---- Markdown ------------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _fmt(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.2f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    esc = lambda v: _fmt(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
    return out


def render_card(stats: dict, plots: dict[str, str], image_prefix: str = "") -> str:
    """The card's Markdown body (the YAML header is added by the export)."""
    t = stats["lmsys_table"]
    name = stats.get("name") or "chatcurate dataset"
    img = lambda key, alt: [f"![{alt}]({image_prefix}{plots[key]})", ""] if key in plots else []  # noqa: E731
    L: list[str] = [f"# {name}", ""]
    L += [
        "Chatbot conversations curated by chatcurate: ingested from logs, deduplicated,",
        "tagged (language, PII, moderation, topics), checked for benchmark contamination and exported with",
        "every message **PII-redacted**. This card is generated from the run's statistics; do not edit it by hand.",
        "",
        "## Statistics",
        "",
        "Laid out as in LMSYS-Chat-1M's table of basic statistics.",
        "",
    ]
    L += _md_table(
        ["conversations", "models", "users", "languages", "avg. turns per sample", "avg. tokens per prompt",
         "avg. tokens per response"],
        [[t["conversations"], t["models"], t["users"], t["languages"], t["avg_turns"], t["avg_prompt_tokens"],
          t["avg_response_tokens"]]],
    )
    L += ["", f"Tokens are counted with the {stats['tokenizer']} tokenizer (LMSYS-Chat-1M used Llama's), "
          "on the redacted text. Users are distinct salted user ids; conversations without one are not counted.", ""]

    L += ["## Languages", ""]
    total = max(t["conversations"], 1)
    L += _md_table(["language", "conversations", "share"], [[k, v, _pct(v / total)] for k, v in stats["languages"][:TOP_N]])
    if len(stats["languages"]) > TOP_N:
        L += [f"", f"... and {len(stats['languages']) - TOP_N} more languages."]
    L += [""] + img("languages", "conversations by language")

    L += ["## Models", ""]
    L += _md_table(["model", "conversations", "share"], [[k, v, _pct(v / total)] for k, v in stats["models"][:TOP_N]])
    L += [""] + img("models", "conversations by model")

    L += ["## Moderation", ""]
    mod = stats.get("moderation")
    if mod:
        L += [f"Over all {mod['conversations']:,} conversations in the lake (before any drop): "
              f"{mod['flagged_conversations']:,} flagged ({_pct(mod['flagged_rate'])}), "
              f"{mod['messages']:,} messages scored with the OpenAI moderation taxonomy.", ""]
        L += _md_table(["category", "flagged messages", "share of messages", "flagged conversations", "share of conversations"],
                       [[c[0], c[1], _pct(c[2]), c[3], _pct(c[4])] for c in mod["categories"]])
        L += [""] + img("moderation", "moderation flag rates")
    else:
        L += ["The moderation tagger has not run on this lake.", ""]

    L += ["## Topics", ""]
    if stats.get("topics"):
        L += _md_table(["topic", "label", "conversations"], stats["topics"][:30])
        L += [""] + img("topics", "topic clusters")
    else:
        L += ["The topic tagger has not run on this lake.", ""]

    L += ["## PII", ""]
    pii = stats.get("pii")
    if pii:
        L += [f"{pii['redacted_conversations']:,} of {pii['conversations']:,} conversations had PII replaced by "
              "placeholders (`EMAIL_1`, `NAME_1`, ...) before export; the exported text is the redacted text.", ""]
        if pii["by_kind"]:
            L += _md_table(["kind", "values redacted"], pii["by_kind"]) + [""]
    else:
        L += ["The PII tagger has not run on this lake, so nothing was exported.", ""]

    L += ["## What was removed, and why", ""]
    ing = stats["ingest"]
    L += [f"**Ingest**: {ing['records_in']:,} records read from {ing['source_files']:,} files "
          f"({ing['duplicate_files_skipped']:,} byte-identical files skipped); {ing['rows_kept']:,} kept, "
          f"{ing['rows_quarantined']:,} quarantined:", ""]
    L += _md_table(["reason", "records"], ing["quarantine_reasons"]) if ing["quarantine_reasons"] else ["(none)"]
    L += [""]
    dd = stats.get("dedup")
    if dd:
        L += [f"**Dedup** annotated {dd['rows']:,} conversations:", ""]
        for key, rows in dd.items():
            if key.startswith("by_"):
                L += _md_table([key.removeprefix("by_"), "conversations"], rows) + [""]
    else:
        L += ["**Dedup** has not run on this lake.", ""]
    dc = stats.get("decontam")
    if dc:
        L += [f"**Decontamination** checked {dc['rows']:,} conversations against the benchmarks:", ""]
        for key, rows in dc.items():
            if key.startswith("by_") and rows:
                L += _md_table([key.removeprefix("by_"), "conversations"], rows) + [""]
    else:
        L += ["**Decontamination** has not run on this lake.", ""]
    exp = stats["export"]
    L += [f"**Export**: {exp['total']:,} conversations in the lake, {exp['kept']:,} exported; left out:", ""]
    dropped = [[k.removeprefix("dropped_"), v] for k, v in exp.items() if k.startswith("dropped_")]
    L += (_md_table(["reason", "conversations"], dropped) if dropped else ["(none)"]) + [""]
    L += img("funnel", "from logs to dataset")

    L += ["## Columns", "",
          "`conversation_id`, `model`, `conversation` (redacted messages: role, content), `turn`, `language`, "
          "`openai_moderation` (one verdict per message, as in LMSYS-Chat-1M), `redacted` (whether PII was "
          "replaced), then chatcurate's tags: `language_code`, `moderation_flagged`, `topic`, `topic_label`, "
          "`duplicate`, `duplicate_of`, `contaminated`.", "",
          "## Licence and use", "",
          "The licence is the one in this card's metadata, chosen at export. Conversations come from chatbot "
          "logs: PII was redacted automatically, which can miss things; flagged content may remain unless the "
          "export dropped it.", ""]
    return "\n".join(L)


def card_writer(lake: Lake, *, copy_to: str | os.PathLike | None = None):
    """A `curate.export.export.CardWriter`: stats, plots and body into the dataset folder.

    With `copy_to`, the same card (README.md with its YAML, the PNGs and the stats JSON)
    is also written there, e.g. `data_cards/demo/`; the export writes README.md itself,
    so the copy is made by `copy_card` after the export.
    """

    def write(inp, folder: Path) -> str:
        stats = collect_stats(lake, inp)
        plots = write_plots(stats, folder / "images")
        (folder / STATS_FILE).write_text(json.dumps(stats, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
        return render_card(stats, plots, image_prefix="images/")

    return write


def copy_card(dataset_dir: str | os.PathLike, card_dir: str | os.PathLike) -> Path:
    """Copy the exported card (README.md, card_stats.json, images/) to `card_dir`."""
    src, dst = Path(dataset_dir), Path(card_dir)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "README.md", dst / "README.md")
    if (src / STATS_FILE).exists():
        shutil.copyfile(src / STATS_FILE, dst / STATS_FILE)
    if (dst / "images").exists():
        shutil.rmtree(dst / "images")
    if (src / "images").exists():
        shutil.copytree(src / "images", dst / "images")
    return dst / "README.md"


def diff_cards(fresh: str | os.PathLike, committed: str | os.PathLike) -> list[str]:
    """What differs between a freshly generated card folder and a committed one ([] if none).

    Compares README.md and card_stats.json as text and the images byte for byte: the
    card is deterministic, so any difference means the committed card is stale.
    """
    fresh, committed = Path(fresh), Path(committed)
    problems: list[str] = []
    for name in ("README.md", STATS_FILE):
        a, b = fresh / name, committed / name
        if not b.exists():
            problems.append(f"{b} is missing")
        elif a.read_text(encoding="utf-8") != b.read_text(encoding="utf-8"):
            problems.append(f"{b} differs from the generated one")
    fa = {p.name for p in (fresh / "images").glob("*.png")} if (fresh / "images").exists() else set()
    fb = {p.name for p in (committed / "images").glob("*.png")} if (committed / "images").exists() else set()
    if fa != fb:
        problems.append(f"plots differ: generated {sorted(fa)}, committed {sorted(fb)}")
    for name in sorted(fa & fb):
        if (fresh / "images" / name).read_bytes() != (committed / "images" / name).read_bytes():
            problems.append(f"{committed / 'images' / name} differs from the generated plot")
    return problems
