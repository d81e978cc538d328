"""The click group both CLIs (`curate`, `decontam`) use: library errors become one line."""

from __future__ import annotations

import sys

import click

from curate.errors import CurateError


class ErrorLineGroup(click.Group):
    """Turns library errors into one clear line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CurateError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
