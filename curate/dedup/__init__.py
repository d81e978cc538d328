"""Dedup stage: exact, MinHash near and semantic duplicates (`dedup.run_dedup`).

`exact`, `minhash`, `semantic` hold each tier; `partitioned` the out-of-core MinHash clustering.
"""
