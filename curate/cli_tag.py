"""CLI commands for tag (filled in by its feature)."""

COMMANDS: list = []
