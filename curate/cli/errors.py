"""The click group both CLIs (`curate`, `decontam`) use: library errors become one line."""

from __future__ import annotations

import os
import sys

import click

from curate.core.errors import CurateError


class ErrorLineGroup(click.Group):
    """Turns library errors into one clear line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        # transformers draws a 'Loading weights' bar on every model load (it follows this
        # variable when it is imported): noise between our own lines on stderr
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            return super().invoke(ctx)
        except CurateError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
