"""The `curate` command line: a thin layer over the library.

Each feature keeps its commands in its own module of this package; this file only
assembles them, so features can grow without touching one shared file.
"""

from __future__ import annotations

import logging
import sys

import click

from curate.cli.errors import ErrorLineGroup


@click.group(cls=ErrorLineGroup)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Curate chatbot conversation logs into clean datasets.

    Example: curate ingest logs/ && curate stats
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from curate.cli import ingest as cli_ingest
    from curate.cli import dedup as cli_dedup
    from curate.cli import tag as cli_tag
    from curate.cli import serve as cli_serve
    from curate.cli import pipeline as cli_pipeline
    from curate.cli import review as cli_review

    for module in (cli_ingest, cli_dedup, cli_tag, cli_serve, cli_pipeline, cli_review):
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_register()


if __name__ == "__main__":
    main()
