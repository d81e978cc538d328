"""Coverage-guided fuzzing of the log readers with atheris (libFuzzer for Python).

Each input becomes one log file: its first byte picks the file name, whether the rest is
gzip-compressed, and whether the format is forced. Two targets:

- fuzzing (fast, ~ms an input): sniff the file, read every record (`read_records`),
  normalize each one (`normalize`) and build the kept rows into the lake's Arrow schema.
  Law: no exception escapes but `Rejected` (a quarantine row), and every row fits the schema.
- `--replay DIR` (~1 s an input): every file of DIR (the corpus libFuzzer grew: the inputs
  that reached new code) through a whole `ingest` into a fresh lake, columnar fast path
  included. Law: no exception, and records in = rows kept + rows quarantined, per file and
  in the lake.

A failure makes libFuzzer write the input to `crash-*` and exit non-zero.

    .venv/bin/python tests/security/fuzz_readers.py -runs=20000 -max_len=8192 CORPUS_DIR
    .venv/bin/python tests/security/fuzz_readers.py --replay CORPUS_DIR

`tests/security/test_fuzz_readers.py` runs both, bounded, seeded with the demo logs.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["curate"]):
    import pyarrow as pa

    from curate.core import schema
    from curate.ingest.ingest import IngestConfig, ingest
    from curate.core.lake import Lake
    from curate.ingest.normalize import Rejected, normalize
    from curate.ingest.read_logs import read_records, sniff

NAMES = ("log.jsonl", "log.json", "log.parquet", "log.jsonl.gz", "log.json.gz")
FORMATS = (None, "openai", "sharegpt", "lmsys")
# Small caps so that a generated bomb or a huge array ends as a quarantine row quickly.
CONFIG = {fmt: IngestConfig(format=fmt, workers=1, chunk_bytes=4096, max_record_bytes=1 << 16,
                            max_array_bytes=1 << 20, max_decompressed_bytes=1 << 22) for fmt in FORMATS}
WORK = Path(tempfile.mkdtemp(prefix="fuzz-readers-"))


def _write(data: bytes, folder: Path) -> tuple[Path, IngestConfig]:
    pick, body = data[0], data[1:]
    name = NAMES[pick % len(NAMES)]
    fmt = FORMATS[(pick // len(NAMES)) % len(FORMATS)]
    if name.endswith(".gz") and pick & 0x80:
        body = gzip.compress(body, compresslevel=1)  # else the raw bytes: a broken gzip stream
    path = folder / name
    path.write_bytes(body)
    return path, CONFIG[fmt]


def check_readers(data: bytes) -> None:
    """What ingest does with a file, minus the lake: sniff, read, normalize, build rows."""
    if not data:
        return
    path, config = _write(data, WORK)
    fmt, container = sniff(path)
    fmt = config.format or fmt
    rows = []
    for rec in read_records(path, container, max_record_bytes=config.max_record_bytes,
                            max_decompressed_bytes=config.max_decompressed_bytes,
                            max_array_bytes=config.max_array_bytes):
        if rec.error is not None:
            continue  # a quarantine row
        try:
            fields = normalize(rec.obj, fmt, config.limits)
        except Rejected:
            continue  # a quarantine row
        fields.pop("source_id")
        fields["conversation"] = [{"role": r, "content": c} for r, c in fields["conversation"]]
        rows.append(fields)
    pa.Table.from_pylist(rows, schema=schema.CONVERSATIONS)  # raises if a row does not fit


def check_ingest(data: bytes) -> None:
    """The whole ingest into a fresh lake; records in = kept + quarantined."""
    if not data:
        return
    case = Path(tempfile.mkdtemp(dir=WORK))
    try:
        path, config = _write(data, case)
        lake = Lake(case / "lake")
        (f,) = ingest(lake, [path], config).files
        if f.records_in != f.rows_kept + f.rows_quarantined or sum(f.reasons.values()) != f.rows_quarantined:
            raise AssertionError(f"records not conserved: {f}")
        s = lake.stats()
        if not s["balanced"] or s["records_in"] != f.records_in:
            raise AssertionError(f"lake does not add up: {s}")
    finally:
        shutil.rmtree(case, ignore_errors=True)


def replay(folder: Path) -> int:
    n = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            check_ingest(path.read_bytes())
        except BaseException:
            print(f"replay: {path} fails", file=sys.stderr)
            raise
        n += 1
    print(f"Replayed {n} inputs through ingest", file=sys.stderr)
    return n


def main() -> None:
    logging.disable(logging.WARNING)  # "cannot detect the format" on most inputs
    try:
        if len(sys.argv) == 3 and sys.argv[1] == "--replay":
            replay(Path(sys.argv[2]))
            return
        atheris.Setup(sys.argv, check_readers)
        atheris.Fuzz()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
