"""Tagging stage: annotation tables beside the conversations (`tagging.run_tagger`).

Taggers: `language`, `pii` (with `names`), `topics`. Moderation lives in the `moderation` package.
"""
