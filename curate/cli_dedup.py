"""CLI commands for dedup (filled in by its feature)."""

COMMANDS: list = []
