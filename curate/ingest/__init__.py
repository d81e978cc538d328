"""Ingest stage: read chat logs in many formats, normalize them, write the lake (`ingest.ingest`).

`demo.py` writes the demo logs shipped in `demo_logs/`.
"""
