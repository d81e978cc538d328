"""Coverage-guided fuzzing of the log readers with atheris (libFuzzer for Python).

Each input becomes one log file (its first byte picks the file name, whether the rest
is gzip-compressed, and whether the format is forced) and goes through `ingest` into a
fresh lake. Laws: no exception escapes, and records in = rows kept + rows quarantined,
per file and in the lake. A failure makes libFuzzer write the input to `crash-*` and
exit non-zero.

    .venv/bin/python tests/security/fuzz_readers.py -atheris_runs=3000 -max_len=4096 CORPUS_DIR

`tests/security/test_fuzz_readers.py` runs it bounded, seeded with the demo logs.
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
    from curate.ingest import IngestConfig, ingest
    from curate.lake import Lake

NAMES = ("log.jsonl", "log.json", "log.parquet", "log.jsonl.gz", "log.json.gz")
FORMATS = (None, "openai", "sharegpt", "lmsys")
# Small caps so that a generated bomb or a huge array ends as a quarantine row quickly.
CONFIG = {fmt: IngestConfig(format=fmt, workers=1, chunk_bytes=4096, max_record_bytes=1 << 16,
                            max_array_bytes=1 << 20, max_decompressed_bytes=1 << 22) for fmt in FORMATS}
WORK = Path(tempfile.mkdtemp(prefix="fuzz-readers-"))


def one_input(data: bytes) -> None:
    if not data:
        return
    pick, body = data[0], data[1:]
    name = NAMES[pick % len(NAMES)]
    fmt = FORMATS[(pick // len(NAMES)) % len(FORMATS)]
    if name.endswith(".gz") and pick & 0x80:
        body = gzip.compress(body, compresslevel=1)  # else the raw bytes: a broken gzip stream
    case = Path(tempfile.mkdtemp(dir=WORK))
    try:
        path = case / name
        path.write_bytes(body)
        lake = Lake(case / "lake")
        stats = ingest(lake, [path], CONFIG[fmt])
        (f,) = stats.files
        if f.records_in != f.rows_kept + f.rows_quarantined or sum(f.reasons.values()) != f.rows_quarantined:
            raise AssertionError(f"records not conserved: {f}")
        s = lake.stats()
        if not s["balanced"] or s["records_in"] != f.records_in:
            raise AssertionError(f"lake does not add up: {s}")
    finally:
        shutil.rmtree(case, ignore_errors=True)


def main() -> None:
    logging.disable(logging.WARNING)  # "cannot detect the format" on most inputs
    try:
        atheris.Setup(sys.argv, one_input)
        atheris.Fuzz()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
