"""Core: the lake, its schema, errors, settings, reason codes and the executors.

The bottom layer: imports nothing else from this project (docs/architecture.md).
"""
