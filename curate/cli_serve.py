"""CLI commands for serve (filled in by its feature)."""

COMMANDS: list = []
