"""CLI commands for pipeline (filled in by its feature)."""

COMMANDS: list = []
