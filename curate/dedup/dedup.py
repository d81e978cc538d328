"""The dedup stage: exact, near-duplicate and semantic clusters, written as an annotation.

`run_dedup(lake, DedupConfig(...))` reads the conversations not yet in the `dedup` table,
checks them against each other *and* against everything already deduplicated (persisted
MinHash signatures and faiss index under `index/<table>/`), and appends one row per new
conversation to `annotations/<table>/`. Nothing is deleted; exports choose what to drop.

Columns of the annotation table (one row per conversation):

- `exact_hash`: xxh3-128 of the normalised key text (see `dedup_exact`)
- `exact_cluster`, `near_cluster`, `semantic_cluster`: cluster id per kind (the id of the
  cluster's first kept member; a conversation alone in its cluster carries its own id);
  null for a kind that was not enabled
- `semantic_key`: the embedding-store key of the first user prompt
- `cluster_id`: the cluster over all enabled kinds together (edges of any kind)
- `is_representative`, `duplicate_of`: the member kept for its `cluster_id` and, for the
  others, which conversation they duplicate
- `duplicate_kind` (`exact` | `near` | `semantic`) and `similarity` to `duplicate_of`
  (1.0 for exact, estimated Jaccard for near, cosine for semantic)
- `frequency_rank`, `frequency_capped`, `frequency_cap`: rank of the conversation among
  those with the same exact key, and whether frequency capping drops it
- `key_mode`, `run_id`

Key (`key=`): `user` (all user messages, joined), `first_user` (the opening prompt only: the
"same question asked thousands of times" view) or `conversation` (every message with its role).
Semantic dedup always embeds the first user prompt.

Keep policy (`keep=`): `earliest` (tstamp, then ingestion order), `longest` (most characters
of key text) or `most_turns` (most messages); ties go to the earliest. Representatives are
stable across runs: a conversation kept by an earlier run stays kept, and a later
duplicate points to it even when the policy would now prefer the newcomer.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.dedup.exact import exact_key, normalize_text
from curate.dedup.minhash import (MinHashConfig, components, estimate_jaccard, near_pairs, recall_band_rows,
                                  signatures)
from curate.dedup.semantic import (SemanticConfig, SemanticIndex, last_line, pair_languages_differ,
                                   semantic_static_embedder, tier_candidates, tier_pairs)
from curate.core.errors import ConfigError
from curate.core.lake import Lake, new_run_id, write_parquet_atomic

log = logging.getLogger(__name__)

KEEP_POLICIES = ("earliest", "longest", "most_turns")
KEY_MODES = ("user", "first_user", "conversation")

SCHEMA = pa.schema([
    ("conversation_id", pa.string()),
    ("key_mode", pa.string()),
    ("exact_hash", pa.string()),
    ("exact_cluster", pa.string()),
    ("near_cluster", pa.string()),
    ("semantic_key", pa.string()),
    ("semantic_cluster", pa.string()),
    ("cluster_id", pa.string()),
    ("is_representative", pa.bool_()),
    ("duplicate_of", pa.string()),
    ("duplicate_kind", pa.string()),
    ("similarity", pa.float32()),
    ("frequency_rank", pa.int64()),
    ("frequency_capped", pa.bool_()),
    ("frequency_cap", pa.int64()),
    ("run_id", pa.string()),
    ("variant_of", pa.string()),
    ("variant_probability", pa.float32()),
])


@dataclass(frozen=True, kw_only=True)
class DedupConfig:
    """Dedup settings, validated on construction.

    >>> DedupConfig(semantic=False, keep="longest").keep
    'longest'
    """

    key: str = "user"
    exact: bool = True
    near: bool = True
    semantic: bool = True
    keep: str = "earliest"
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    semantic_config: SemanticConfig = field(default_factory=SemanticConfig)
    frequency_cap: int | None = None
    frequency_cap_percentile: float | None = None
    table: str = "dedup"
    # The pair verifier (curate.models.verify) checks every near and semantic candidate: a pair it
    # calls the same request is a duplicate; the same template with other values is a
    # *variant* (annotated: duplicate_kind 'variant', variant_of; kept by exports unless
    # asked). Semantic candidates come from cosine >= `semantic_candidate` (the verifier,
    # not the cosine, decides). verify=False: the fixed cuts as before.
    verify: bool = True
    semantic_candidate: float = 0.6
    # True: a candidate pair found from both of its ends is scored once, as (smaller key, larger
    # key). Same clusters and variants only while the verifier is symmetric: its `seg_*`
    # features take the first text as the longer one when both are equally long, so it is not
    # quite (12 of 600 random pairs of generated prompts); off by default until it is. False:
    # every (query, neighbour) pair is scored, from each end.
    pairs_once: bool = False
    # With the verifier: a cluster keeps only members the verifier calls the same request as its
    # representative (directly verified, identical, near copies, or scored against it now); the
    # others form clusters of their own. Verified links are not transitive: "Social norms are:"
    # -> "Socialization is:" -> "How can observing other people ... reveal cultural norms?" is
    # a chain of plausible links between three different requests. False: connected components.
    split_chains: bool = True
    # With the verifier: of two semantic duplicate links of one text to two texts the verifier
    # called different requests (a variant or rejected pair), the weaker is dropped
    # (`exclusive_links`): a rewording or translation of one template twin otherwise joins
    # whichever twin is its cluster's representative.
    exclusive_links: bool = True
    # With the verifier: a short text (at most `near_short_chars` characters, normalised) is also
    # a near candidate of texts at estimated Jaccard >= `near_short_threshold` (below the MinHash
    # threshold): two or three typos in a 60-character prompt cost a third of its 5-grams
    # (Jaccard ~.62), so MinHash never proposed such copies; the near model decides. None: off.
    near_short_threshold: float | None = 0.5
    near_short_chars: int = 100
    # With the verifier: a near duplicate (the MinHash stage's) has at most this many words on one
    # side only that are no typo of a word on the other (`verify._swap_words`: "explain" / "fix",
    # "left my job" / "started a new job", "... horizontally and vertically"): a copy differs in
    # typos and punctuation. Such a pair may still be a semantic duplicate (the semantic model
    # decides it there). None: the near model alone decides.
    near_max_swaps: int | None = 0

    def __post_init__(self):
        if self.key not in KEY_MODES:
            raise ConfigError(f"key must be one of {KEY_MODES}, got {self.key!r}")
        if self.keep not in KEEP_POLICIES:
            raise ConfigError(f"keep must be one of {KEEP_POLICIES}, got {self.keep!r}")
        if not (self.exact or self.near or self.semantic):
            raise ConfigError("enable at least one of exact, near, semantic")
        if self.frequency_cap is not None and self.frequency_cap < 1:
            raise ConfigError(f"frequency_cap must be >= 1, got {self.frequency_cap}")
        if self.frequency_cap_percentile is not None:
            if self.frequency_cap is not None:
                raise ConfigError("give frequency_cap or frequency_cap_percentile, not both")
            if not 0.0 < self.frequency_cap_percentile <= 100.0:
                raise ConfigError(f"frequency_cap_percentile must be in (0, 100], got {self.frequency_cap_percentile}")
        if self.near_short_threshold is not None and not 0.0 < self.near_short_threshold < 1.0:
            raise ConfigError(f"near_short_threshold must be in (0, 1) or None, got {self.near_short_threshold}")
        if self.near_short_chars < 1:
            raise ConfigError(f"near_short_chars must be >= 1, got {self.near_short_chars}")
        if self.near_max_swaps is not None and self.near_max_swaps < 0:
            raise ConfigError(f"near_max_swaps must be >= 0 or None, got {self.near_max_swaps}")
        from curate.core.lake import _check_name

        _check_name(self.table)

    def fingerprint(self) -> dict:
        return {"key": self.key, "exact": self.exact, "near": self.near, "semantic": self.semantic,
                "minhash": self.minhash.fingerprint() if self.near else None}


@dataclass
class DedupStats:
    run_id: str
    total: int = 0            # conversations in the lake
    new: int = 0              # conversations deduplicated by this run
    kept: int = 0             # new conversations that are representatives
    dropped_exact: int = 0    # new duplicates per kind (duplicate_kind)
    dropped_near: int = 0
    dropped_semantic: int = 0
    frequency_capped: int = 0
    frequency_cap: int | None = None
    clusters: dict = field(default_factory=dict)   # kind -> clusters of size > 1 touched by this run
    rows_in_clusters: dict = field(default_factory=dict)  # kind -> new rows in clusters of size > 1
    cross_batch: int = 0      # new duplicates whose representative was already in the lake
    variants: int = 0         # new rows kept but annotated as a variant of another (same template, other values)
    verified: dict = field(default_factory=dict)  # kind -> {"candidates", "duplicates", "variants", "rejected"}
    embedded: int = 0
    embeddings_reused: int = 0
    semantic_tier: dict = field(default_factory=dict)  # the cheap-first tier's counts (dedup_semantic.tier_pairs)
    seconds: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


ProgressFn = Callable[[str], None]


def run_dedup(lake: Lake, config: DedupConfig = DedupConfig(), *, embedder=None,
              progress: ProgressFn | None = None) -> DedupStats:
    """Deduplicate conversations not yet in `config.table`; returns stats.

    `embedder` overrides the `Embedder` built from `config.semantic_config.model` (tests
    pass a fake). `progress(step)` is called as each step starts.
    """
    started = datetime.now(timezone.utc)
    stats = DedupStats(run_id=new_run_id())
    say = progress or (lambda step: None)
    index_root = lake.root / "index" / config.table
    _check_fingerprint(index_root, config, embedder)
    with lake.writer_lock():
        con = lake.connect()
        stats.total = con.execute("SELECT count(*) FROM conversations").fetchall()[0][0]
        has_table = config.table in lake.annotation_tables()
        say("reading new conversations")
        new = _read_new(con, config, has_table)
        stats.new = new.num_rows
        if stats.new == 0:
            log.info("dedup: nothing new in %s", lake.root)
            return stats
        _write_fingerprint(index_root, config)
        result = _dedup_batch(lake, con, new, config, stats, index_root, has_table, embedder, say)
        lake.write_annotation(config.table, result, part=stats.run_id)
        lake.record_run(stats.run_id, "dedup", started, stats.as_dict())
    return stats


# ---- reading -----------------------------------------------------------------------------

def _key_sql(mode: str) -> str:
    if mode == "first_user":
        return "coalesce(list_filter(c.conversation, lambda m: m.role = 'user')[1].content, '')"
    if mode == "user":
        return ("array_to_string(list_transform(list_filter(c.conversation, lambda m: m.role = 'user'),"
                " lambda m: coalesce(m.content, '')), chr(10))")
    return ("array_to_string(list_transform(c.conversation,"
            " lambda m: m.role || ': ' || coalesce(m.content, '')), chr(10))")


def _read_new(con, config: DedupConfig, has_table: bool) -> pa.Table:
    anti = f"WHERE c.conversation_id NOT IN (SELECT conversation_id FROM {config.table})" if has_table else ""
    return con.sql(f"""
        SELECT c.conversation_id, c.tstamp, c.source_file, c.source_index,
               len(c.conversation) AS n_messages,
               {_key_sql(config.key)} AS key_text,
               coalesce(list_filter(c.conversation, lambda m: m.role = 'user')[1].content, '') AS first_prompt
        FROM conversations c {anti}
        ORDER BY c.conversation_id""").to_arrow_table()


def _order_info(con, ids: list[str], config: DedupConfig) -> dict[str, tuple]:
    """Sort key per conversation id for the keep policy (smaller is kept)."""
    if not ids:
        return {}
    con.register("_ids", pa.table({"conversation_id": pa.array(ids, pa.string())}))
    rows = con.execute(f"""
        SELECT c.conversation_id, c.tstamp, c.source_file, c.source_index, len(c.conversation),
               length({_key_sql(config.key)})
        FROM conversations c JOIN _ids USING (conversation_id)""").fetchall()
    con.unregister("_ids")
    return {r[0]: _sort_key(config.keep, r[1], r[2], r[3], r[4], r[5]) for r in rows}


def _sort_key(policy: str, tstamp, source_file, source_index, n_messages, length) -> tuple:
    ts = tstamp.timestamp() if tstamp is not None else math.inf
    earliest = (ts, source_file or "", source_index if source_index is not None else 0)
    if policy == "longest":
        return (-(length or 0), *earliest)
    if policy == "most_turns":
        return (-(n_messages or 0), *earliest)
    return earliest


# ---- the batch ---------------------------------------------------------------------------

def _dedup_batch(lake, con, new: pa.Table, config: DedupConfig, stats: DedupStats, index_root,
                 has_table: bool, embedder, say) -> pa.Table:
    ids = new.column("conversation_id").to_pylist()
    n = len(ids)
    key_texts = new.column("key_text").to_pylist()
    t0 = time.perf_counter()
    say("exact keys")
    norm = [normalize_text(t or "") for t in key_texts]
    hashes = [exact_key(t) for t in norm]  # normalize_text is idempotent: same key as exact_key(raw)
    stats.seconds["exact"] = round(time.perf_counter() - t0, 3)

    old = _old_rows(con, config, has_table)
    # Graph nodes: 0..n-1 new conversations, then old conversations, then hash and key nodes.
    node_of: dict[tuple[str, str], int] = {}

    def node(kind: str, name: str) -> int:
        k = (kind, name)
        if k not in node_of:
            node_of[k] = n + len(node_of)
        return node_of[k]

    for i, cid in enumerate(ids):
        node_of[("doc", cid)] = i
    edges: dict[str, list[tuple[int, int]]] = {"exact": [], "near": [], "semantic": []}

    new_hash_set = set(hashes)
    touched_hashes = set(new_hash_set)
    # (kind, text key a, text key b, probability) of pairs the verifier called variants
    variant_links: list[tuple[str, str, str, float]] = []
    for i, h in enumerate(hashes):
        edges["exact"].append((i, node("hash", h)))

    # near: signatures per distinct normalised key text, LSH over the lake's distinct texts
    sig_of: dict[str, np.ndarray] = {}
    near_sim: dict[tuple[str, str], float] = {}
    if config.near:
        t0 = time.perf_counter()
        say("near duplicates (MinHash LSH)")
        stored_h, stored_sig = _load_signatures(index_root / "minhash", config.minhash.num_perm)
        have = set(stored_h)
        fresh = {}
        for h, t in zip(hashes, norm):
            if h not in have and h not in fresh:
                fresh[h] = t
        fresh_h = list(fresh)
        fresh_sig, fresh_has = signatures(list(fresh.values()), config.minhash)
        if fresh_h:
            _save_signatures(index_root / "minhash", fresh_h, fresh_sig, fresh_has, stats.run_id)
        all_h = stored_h + fresh_h
        all_sig = np.concatenate([stored_sig, fresh_sig]) if fresh_h else stored_sig
        all_has = (all_sig != np.uint32(0xFFFFFFFF)).any(axis=1)
        active = np.fromiter((h in new_hash_set for h in all_h), dtype=bool, count=len(all_h))
        mh = config.minhash
        if config.verify and mh.bands is None:
            # every candidate is verified (estimated Jaccard, then the near model): band for recall
            bands, rows = recall_band_rows(mh.threshold, mh.num_perm)
            mh = dataclasses.replace(mh, bands=bands, rows=rows)
        pairs, sims = near_pairs(all_sig, all_has, mh, active=active)
        pos = {h: i for i, h in enumerate(all_h)}
        cand = [(all_h[a], all_h[b], s) for (a, b), s in zip(pairs.tolist(), sims.tolist())]
        short_cand: list[tuple[str, str, float]] = []
        short_cut = config.near_short_threshold
        if config.verify and short_cut is not None and short_cut < mh.threshold:
            extra, extra_sims = _short_near_pairs(all_h, all_sig, all_has, mh, short_cut, {
                h for h, t in zip(hashes, norm) if len(t) <= config.near_short_chars})
            seen = {frozenset(c[:2]) for c in cand}  # with MinHashConfig(verify=False) the pass above has them too
            short_cand = [(all_h[a], all_h[b], s) for (a, b), s in zip(extra.tolist(), extra_sims.tolist())
                          if frozenset((all_h[a], all_h[b])) not in seen]
        if config.verify and (cand or short_cand):
            text_of = _texts_by(con, config, "exact_hash", {h for p in cand + short_cand for h in p[:2]}, hashes,
                                key_texts, ids, has_table)
            # below the MinHash threshold, only pairs of two short texts (the other side may be an old text)
            cand = cand + [c for c in short_cand if c[0] in text_of and c[1] in text_of and max(
                len(normalize_text(text_of[c[0]])), len(normalize_text(text_of[c[1]]))) <= config.near_short_chars]
            cand = _verify_pairs("near", cand, text_of, stats, variant_links, once=config.pairs_once,
                                 max_swaps=config.near_max_swaps)
        for ha, hb, s in cand:
            touched_hashes.update((ha, hb))
            edges["near"].append((node("hash", ha), node("hash", hb)))
            near_sim[(ha, hb)] = near_sim[(hb, ha)] = s
        sig_of = {"_pos": pos, "_sig": all_sig}  # type: ignore[dict-item]
        stats.seconds["near"] = round(time.perf_counter() - t0, 3)

    # semantic: one vector per distinct first prompt, searched in the persisted index
    sem_keys: list[str | None] = [None] * n
    sem_links: set[tuple[str, str]] = set()
    prompts: list[str | None] = [None] * n
    touched_keys: set[str] = set()
    sem_index = None
    emb = static = tier = None
    if config.semantic:
        t0 = time.perf_counter()
        say("semantic duplicates (embeddings + faiss)")
        from curate.models.embed import Embedder, EmbeddingStore, text_key

        emb = embedder or Embedder(config.semantic_config.model)
        prompts = new.column("first_prompt").to_pylist()
        sem_keys = [text_key(emb.model_id, emb.prepare(p or "")) for p in prompts]
        uniq: dict[str, str] = {}
        for k, p in zip(sem_keys, prompts):
            uniq.setdefault(k, p or "")
        folder = index_root / "semantic"
        store = EmbeddingStore(lake.root)
        sc = config.semantic_config
        ukeys = list(uniq)
        # with the verifier, candidates come from a looser cosine and the verifier decides
        cut = min(sc.threshold, config.semantic_candidate) if config.verify else sc.threshold
        static = semantic_static_embedder(sc, emb)
        if static is not None:  # cheap-first: static proposals, the full model re-scores (dedup_semantic.tier_pairs)
            vecs = static.embed(list(uniq.values()))
            sem_index = SemanticIndex.load(folder, vecs.shape[1], sc, index_model_id=static.model_id)
            sem_index.add(ukeys, vecs)
            # with the verifier the tier only proposes: the full model's own k best of the static
            # proposals at full cosine >= the candidate cut go to it, as on the full path;
            # without the verifier the tier decides at `sc.threshold`
            tier_fn = functools.partial(tier_candidates, cut=cut) if config.verify else tier_pairs
            tier = tier_fn(sem_index, ukeys, list(uniq.values()), vecs, lambda ts: store.embed(ts, emb),
                           full_known=lambda k: store.known(emb.model_id, k), config=sc)
            found = tier.pairs
            stats.semantic_tier = {"proposed": tier.proposed, "accepted_static": tier.accepted_static,
                                   "rescored": tier.rescored, "skipped_same_cluster": tier.skipped_same_cluster,
                                   "full_embedded": tier.full_embedded, "distinct_texts": len(ukeys)}
        else:
            vecs = store.embed(list(uniq.values()), emb)
            sem_index = SemanticIndex.load(folder, vecs.shape[1], sc, index_model_id=emb.model_id)
            sem_index.add(ukeys, vecs)
            found = sem_index.pairs(ukeys, vecs, threshold=cut, k=sc.k)
        text_of = lambda keys: _texts_by(con, config, "semantic_key", keys, sem_keys, prompts, ids,  # noqa: E731
                                         has_table)
        if config.verify and sc.last_line and static is None:
            found = found + _last_line_pairs(index_root / "semantic_last", sem_index, ukeys, list(uniq.values()),
                                             vecs, store, emb, sc, cut, found, stats)
        if sc.multilingual or (sc.multilingual is None and config.verify):
            found = found + _multilingual_pairs(index_root / "semantic_multi", ukeys, list(uniq.values()), store, emb,
                                                sc, config.verify, found, text_of, stats)
        stats.embedded, stats.embeddings_reused = store.computed, store.reused
        if config.verify and found:
            text_of = _texts_by(con, config, "semantic_key", {k for p in found for k in p[:2]}, sem_keys, prompts,
                                ids, has_table)
            found = _verify_pairs("semantic", found, text_of, stats, variant_links, once=config.pairs_once,
                                  store=store, exclusive=config.exclusive_links,
                                  units=_copy_units(con, config, edges, node_of, sem_keys, prompts, ids, old)
                                  if config.exclusive_links else None)
        sem_links = {(a, b) for a, b, _ in found} | {(b, a) for a, b, _ in found}
        for a, b, s in found:
            touched_keys.update((a, b))
            edges["semantic"].append((node("key", a), node("key", b)))
        touched_keys.update(ukeys)
        for i, k in enumerate(sem_keys):
            edges["semantic"].append((i, node("key", k)))
        sem_index.save(folder, {"model_id": emb.model_id, "index_model_id": sem_index.index_model_id})
        stats.seconds["semantic"] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    say("clustering")
    # Old conversations that share a hash or key node with this batch join the graph.
    involved = _involved_old(old, touched_hashes, touched_keys, config)
    old_ids = involved.column("conversation_id").to_pylist() if involved is not None else []
    old_cols = {c: involved.column(c).to_pylist() for c in involved.column_names} if involved is not None else {}
    for j, cid in enumerate(old_ids):
        node_of[("doc", cid)] = n + len(node_of)
    # renumber: new docs 0..n-1, old docs next, then hash/key nodes (already allocated above)
    old_pos = {cid: node_of[("doc", cid)] for cid in old_ids}
    for j, cid in enumerate(old_ids):
        edges["exact"].append((old_pos[cid], node("hash", old_cols["exact_hash"][j])))
        if config.semantic and old_cols["semantic_key"][j] is not None:
            edges["semantic"].append((old_pos[cid], node("key", old_cols["semantic_key"][j])))
    total_nodes = n + len(node_of)

    def labels_for(kinds: list[str]) -> np.ndarray:
        pairs = [e for k in kinds for e in edges[k]]
        arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        return components(total_nodes, arr)

    order = _order_info(con, ids, config)
    doc_nodes_old = np.array([old_pos[c] for c in old_ids], dtype=np.int64)

    def cluster_ids(kind_col: str, kinds: list[str]) -> list[str]:
        lab = labels_for(kinds)
        best_old: dict[int, str] = {}
        for j, cid in enumerate(old_ids):
            val = old_cols[kind_col][j] or cid
            l = lab[doc_nodes_old[j]]
            if l not in best_old or val < best_old[l]:
                best_old[l] = val
        first_new: dict[int, str] = {}
        for i in sorted(range(n), key=lambda i: (order[ids[i]], ids[i])):
            first_new.setdefault(lab[i], ids[i])
        out = [best_old.get(lab[i]) or first_new[lab[i]] for i in range(n)]
        sizes = np.bincount(np.concatenate([lab[:n], lab[doc_nodes_old]]), minlength=total_nodes)
        multi = {lab[i] for i in range(n) if sizes[lab[i]] > 1}
        stats.clusters[kind_col.replace("_cluster", "").replace("cluster_id", "all")] = len(multi)
        stats.rows_in_clusters[kind_col.replace("_cluster", "").replace("cluster_id", "all")] = sum(
            1 for i in range(n) if sizes[lab[i]] > 1)
        return out

    enabled = [k for k in ("exact", "near", "semantic") if getattr(config, k)]
    exact_cluster = cluster_ids("exact_cluster", ["exact"]) if config.exact else [None] * n
    near_cluster = cluster_ids("near_cluster", ["exact", "near"]) if config.near else [None] * n
    semantic_cluster = cluster_ids("semantic_cluster", ["semantic"]) if config.semantic else [None] * n
    # The combined graph always includes exact edges: identical texts are also near and semantic duplicates.
    lab = labels_for(sorted(set(enabled) | {"exact"}))
    near_lab_all = labels_for(["exact", "near"]) if config.near else labels_for(["exact"])

    def sem_cosine(pairs: list[tuple[str, str]]) -> list[float]:
        """The full model's cosine of key pairs (nan where no vector is at hand: the verifier embeds)."""
        out = [math.nan] * len(pairs)
        if static is not None:
            for j, (a, b) in enumerate(pairs):
                c = tier.cosine(a, b)
                out[j] = math.nan if c is None else c
            return out
        keys = sorted({k for p in pairs for k in p if k in sem_index.pos})
        vec = dict(zip(keys, sem_index.vectors(keys))) if keys else {}
        for j, (a, b) in enumerate(pairs):
            if a in vec and b in vec:
                out[j] = float(min(np.dot(vec[a], vec[b]), 1.0))
        return out

    # representatives: kept old conversations stay kept; otherwise the keep policy picks
    old_rep_of = {cid: (old_cols["duplicate_of"][j] or cid) for j, cid in enumerate(old_ids)}
    rep_candidates = sorted(set(old_rep_of.values()))
    old_order = _order_info(con, rep_candidates, config)
    rep_for_label: dict[int, str] = {}
    for j, cid in enumerate(old_ids):
        l = lab[doc_nodes_old[j]]
        r = old_rep_of[cid]
        cur = rep_for_label.get(l)
        if cur is None or (old_order.get(r, ()), r) < (old_order.get(cur, ()), cur):
            rep_for_label[l] = r
    cluster_of_label: dict[int, str] = {}
    for j, cid in enumerate(old_ids):
        l = lab[doc_nodes_old[j]]
        val = old_cols["cluster_id"][j] or cid
        if l not in cluster_of_label or val < cluster_of_label[l]:
            cluster_of_label[l] = val
    if config.verify and config.semantic and config.split_chains:
        # a chain of verified links is not proof: every member must be the same request as its
        # cluster's representative, or it leaves for a cluster of its own (split_chains)
        lab = _split_by_representative(
            con, config, lab, ids, order, hashes, sem_keys, prompts, rep_for_label, old, near_lab_all, sem_links,
            sem_cosine, has_table, stats, store=store)
    for i in sorted(range(n), key=lambda i: (order[ids[i]], ids[i])):
        rep_for_label.setdefault(lab[i], ids[i])
        cluster_of_label.setdefault(lab[i], ids[i])

    # what each new row needs to know about its representative
    rep_ids = {rep_for_label[lab[i]] for i in range(n)}
    rep_info = {cid: (hashes[i], sem_keys[i]) for i, cid in enumerate(ids)}
    missing = [r for r in rep_ids if r not in rep_info]
    rep_info.update(_rep_info(old, missing))
    key_vecs = {}
    if config.semantic and sem_index is not None and static is None:
        need = sorted({k for k in sem_keys if k} | {rep_info[r][1] for r in rep_ids if rep_info[r][1]})
        need = [k for k in need if k in sem_index.pos]
        key_vecs = dict(zip(need, sem_index.vectors(need)))
    elif config.semantic and sem_index is not None:  # the tier: full cosine where both were re-scored, else static
        need = sorted({rep_info[r][1] for r in rep_ids if rep_info[r][1]} - tier.static.keys())
        need = [k for k in need if k in sem_index.pos]
        tier.static.update(zip(need, sem_index.vectors(need)))

    exact_lab = labels_for(["exact"])
    near_lab = labels_for(["exact", "near"]) if config.near else None
    rows_dup_of, rows_kind, rows_sim, rows_rep = [], [], [], []
    for i in range(n):
        rep = rep_for_label[lab[i]]
        if rep == ids[i]:
            rows_dup_of.append(None), rows_kind.append(None), rows_sim.append(None), rows_rep.append(True)
            continue
        rh, rk = rep_info.get(rep, (None, None))
        rows_rep.append(False)
        rows_dup_of.append(rep)
        jac = _jaccard(sig_of, hashes[i], rh) if config.near else None
        a, b = key_vecs.get(sem_keys[i]), key_vecs.get(rk)
        cos = float(min(np.dot(a, b), 1.0)) if a is not None and b is not None else None
        if config.semantic and static is not None:
            cos = tier.cosine(sem_keys[i], rk)
        kind, sim = duplicate_kind(
            same_hash=rh == hashes[i], jaccard=jac, cosine=cos, near_cut=config.minhash.threshold,
            semantic_cut=config.semantic_candidate if config.verify else config.semantic_config.threshold,
            same_near_cluster=_same_label(near_lab, i, node_of.get(("hash", rh))),
            near_on=config.near, semantic_on=config.semantic,
        )
        rows_kind.append(kind)
        rows_sim.append(sim)
        if rep not in order:
            stats.cross_batch += 1
        setattr(stats, f"dropped_{kind}", getattr(stats, f"dropped_{kind}") + 1)
    stats.kept = sum(rows_rep)

    # variants: a kept row whose text the verifier called a variant of an earlier text
    variant_of: list[str | None] = [None] * n
    variant_p: list[float | None] = [None] * n
    if variant_links:
        holder = _holders(con, config, variant_links, ids, hashes, sem_keys, has_table)
        by_text: dict[tuple[str, str], list[tuple[str, float]]] = {}
        for kind, ka, kb, p in variant_links:
            by_text.setdefault((kind, ka), []).append((kb, p))
            by_text.setdefault((kind, kb), []).append((ka, p))
        for i in range(n):
            if not rows_rep[i]:
                continue
            best = None
            for kind, key in (("near", hashes[i]), ("semantic", sem_keys[i])):
                for other, p in by_text.get((kind, key), []):
                    cid = holder.get((kind, other))
                    if cid is None or cid == ids[i]:
                        continue
                    node_c = node_of.get(("doc", cid))
                    if node_c is not None and node_c < len(lab) and lab[node_c] == lab[i]:
                        continue  # already in one cluster: a duplicate, not a variant
                    if cid in order and (order[cid], cid) > (order[ids[i]], ids[i]):
                        continue  # of two new rows, the later points at the earlier
                    cand_key = (-p, cid)
                    if best is None or cand_key < best[0]:
                        best = (cand_key, cid, p)
            if best is not None:
                variant_of[i], variant_p[i] = best[1], round(best[2], 4)
                rows_kind[i] = "variant"
                stats.variants += 1

    # frequency capping over exact groups
    ranks, capped, cap = _frequency(con, config, ids, hashes, order, has_table)
    stats.frequency_cap = cap
    stats.frequency_capped = int(sum(capped))
    stats.seconds["cluster"] = round(time.perf_counter() - t0, 3)

    return pa.table({
        "conversation_id": pa.array(ids, pa.string()),
        "key_mode": pa.array([config.key] * n, pa.string()),
        "exact_hash": pa.array(hashes, pa.string()),
        "exact_cluster": pa.array(exact_cluster, pa.string()),
        "near_cluster": pa.array(near_cluster, pa.string()),
        "semantic_key": pa.array(sem_keys, pa.string()),
        "semantic_cluster": pa.array(semantic_cluster, pa.string()),
        "cluster_id": pa.array([cluster_of_label[lab[i]] for i in range(n)], pa.string()),
        "is_representative": pa.array(rows_rep, pa.bool_()),
        "duplicate_of": pa.array(rows_dup_of, pa.string()),
        "duplicate_kind": pa.array(rows_kind, pa.string()),
        "similarity": pa.array(rows_sim, pa.float32()),
        "frequency_rank": pa.array(ranks, pa.int64()),
        "frequency_capped": pa.array(capped, pa.bool_()),
        "frequency_cap": pa.array([cap] * n, pa.int64()),
        "run_id": pa.array([stats.run_id] * n, pa.string()),
        "variant_of": pa.array(variant_of, pa.string()),
        "variant_probability": pa.array(variant_p, pa.float32()),
    }, schema=SCHEMA)


def _short_near_pairs(all_h: list[str], sig: np.ndarray, has: np.ndarray, mh: MinHashConfig, cut: float,
                      short: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs touching a short new text (`short`: its hashes) at estimated Jaccard in [cut,
    mh.threshold), banded for recall at `cut`: the near candidates `near_pairs` misses on short
    texts (`DedupConfig.near_short_threshold`)."""
    active = np.fromiter((h in short for h in all_h), dtype=bool, count=len(all_h))
    if not active.any():
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    bands, rows = recall_band_rows(cut, mh.num_perm)
    pairs, sims = near_pairs(sig, has, dataclasses.replace(mh, threshold=cut, bands=bands, rows=rows, verify=True),
                             active=active)
    below = sims < mh.threshold - 1e-6
    return pairs[below].reshape(-1, 2), sims[below]


def _texts_by(con, config: DedupConfig, column: str, keys: set[str], new_keys: list, new_texts: list, ids: list[str],
              has_table: bool) -> dict[str, str]:
    """The text behind each hash (`exact_hash`: the key text) or embedding key (`semantic_key`:
    the first prompt): from this batch, else from the lake (smallest conversation id first)."""
    out: dict[str, str] = {}
    for k, t, cid in sorted(zip(new_keys, new_texts, ids), key=lambda x: x[2]):
        if k in keys and k not in out:
            out[k] = t or ""
    missing = sorted(keys - set(out))
    if missing and has_table:
        expr = _key_sql(config.key) if column == "exact_hash" else \
            "coalesce(list_filter(c.conversation, lambda m: m.role = 'user')[1].content, '')"
        con.register("_keys", pa.table({"k": pa.array(missing, pa.string())}))
        rows = con.execute(f"""
            SELECT d.{column}, arg_min({expr}, d.conversation_id)
            FROM {config.table} d JOIN _keys ON d.{column} = _keys.k JOIN conversations c USING (conversation_id)
            GROUP BY 1""").fetchall()
        con.unregister("_keys")
        out.update({k: t or "" for k, t in rows})
    return out


def _multilingual_pairs(folder: Path, keys: list[str], texts: list[str], store, emb, sc: SemanticConfig, verify: bool,
                        found: list[tuple[str, str, float]], text_of, stats: DedupStats) -> list[tuple[str, str, float]]:
    """Cross-script candidate pairs from USE-multilingual (`SemanticConfig.multilingual`), not
    already among `found`; each carries the full model's cosine where the store has both vectors
    (what the verifier reads), else the USE one."""
    from curate.models.embed import MultilingualEmbedder, script_language

    multi = MultilingualEmbedder()
    vecs = store.embed(texts, multi)
    index = SemanticIndex.load(folder, vecs.shape[1], sc, index_model_id=multi.model_id)
    index.add(keys, vecs)
    cand = index.pairs(keys, vecs, threshold=sc.multi_candidate if verify else sc.multi_threshold, k=sc.k)
    index.save(folder, {"model_id": multi.model_id, "index_model_id": multi.model_id})
    have = {(a, b) for a, b, _ in found} | {(b, a) for a, b, _ in found}
    cand = [c for c in cand if (c[0], c[1]) not in have]
    words = text_of({k for c in cand for k in c[:2]})
    out, seen = [], set()
    for a, b, s in cand:
        pair = (min(a, b), max(a, b))
        if pair in seen or a not in words or b not in words:
            continue
        seen.add(pair)
        if verify:
            same_cut = sc.multi_same_language
            if not pair_languages_differ(words[a], words[b]) and (same_cut is None or s < same_cut - 1e-6):
                continue  # one language: the full model's channel covers the pair, unless USE finds it much closer
        elif (script_language(words[a]) is None) == (script_language(words[b]) is None):
            continue  # without the verifier the channel's cut was fitted on pairs in two scripts only
        fa, fb = store.known(emb.model_id, a), store.known(emb.model_id, b)
        out.append((pair[0], pair[1], float(fa @ fb) if fa is not None and fb is not None else s))
    stats.semantic_tier = {**stats.semantic_tier, "multilingual_pairs": len(out)}
    return out


def _last_line_pairs(folder: Path, sem_index: SemanticIndex, keys: list[str], texts: list[str], vecs: np.ndarray,
                     store, emb, sc: SemanticConfig, cut: float, found: list[tuple[str, str, float]],
                     stats: DedupStats) -> list[tuple[str, str, float]]:
    """Candidate pairs of the last-line channel (`SemanticConfig.last_line`), not already among
    `found`: this batch's last lines against every whole prompt, and this batch's whole prompts
    against every last line (a persisted index keyed by the prompt's key). Each pair carries
    the two whole prompts' cosine, which is what the verifier reads."""
    lines = [(k, ln) for k, t in zip(keys, texts) if (ln := last_line(t, sc.last_line_words)) is not None]
    index = SemanticIndex.load(folder, vecs.shape[1], sc, index_model_id=emb.model_id)
    line_keys = [k for k, _ in lines]
    line_vecs = store.embed([ln for _, ln in lines], emb) if lines else np.zeros((0, vecs.shape[1]), np.float32)
    index.add(line_keys, line_vecs)
    cand = sem_index.pairs(line_keys, line_vecs, threshold=cut, k=sc.k) + index.pairs(keys, vecs, threshold=cut, k=sc.k)
    index.save(folder, {"model_id": emb.model_id, "index_model_id": emb.model_id})
    have = {(a, b) for a, b, _ in found} | {(b, a) for a, b, _ in found}
    pairs = sorted({(min(a, b), max(a, b)) for a, b, _ in cand if (a, b) not in have})
    ends = sorted({k for p in pairs for k in p})
    whole = dict(zip(ends, sem_index.vectors(ends)))
    out = [(a, b, float(min(np.dot(whole[a], whole[b]), 1.0))) for a, b in pairs]
    stats.semantic_tier = {**stats.semantic_tier, "last_line_pairs": len(out)}
    return out


def _verify_pairs(kind: str, cand: list[tuple[str, str, float]], text_of: dict[str, str], stats: DedupStats,
                  variant_links: list, *, once: bool = False, store=None,
                  exclusive: bool = False, max_swaps: int | None = None,
                  units: tuple[dict[str, int], dict[int, str]] | None = None) -> list[tuple[str, str, float]]:
    """Keep the candidate pairs the verifier calls the same request; record variants.

    `once`: a pair found from both ends (b among a's neighbours and a among b's) is scored
    once, as (smaller key, larger key) with the higher of its two cosines: where the verifier's
    features are symmetric, the clusters and variants are those of scoring both.
    `store` (the lake's `EmbeddingStore`): the multilingual channel's vectors are kept there, so
    decontam's channels read the first prompts' vectors back instead of embedding them again."""
    from curate.models.verify import TextCache, Verifier, _swap_words

    cand = sorted(c for c in cand if c[0] in text_of and c[1] in text_of)
    if once:
        best: dict[tuple[str, str], float] = {}
        for a, b, s in cand:
            key = (a, b) if a < b else (b, a)
            best[key] = max(s, best.get(key, s))
        cand = [(a, b, s) for (a, b), s in sorted(best.items())]
    v = Verifier(kind, store=store)
    a = [text_of[x[0]] for x in cand]
    b = [text_of[x[1]] for x in cand]
    if kind == "near":  # the near model is lexical only: no embedding channel
        zeros = [0.0] * len(cand)
        cache = TextCache()
        decisions = v.decide_many(a, b, cos_full=zeros, cos_multi=zeros, reasons=False, cache=cache)
        if max_swaps is not None:  # a near copy differs in typos, not in words (`DedupConfig.near_max_swaps`)
            decisions = [d if not d.same or _swap_words(cache[x].words, cache[y].words, cache.close) <= max_swaps
                         else dataclasses.replace(d, same=False) for d, x, y in zip(decisions, a, b)]
    else:  # dedup reads no reason: reasons=False gives the same decisions
        decisions = v.decide_many(a, b, cos_full=[x[2] for x in cand], reasons=False)
    kept = []
    st = stats.verified.setdefault(kind, {"candidates": 0, "duplicates": 0, "variants": 0, "rejected": 0})
    for c, d in zip(cand, decisions):
        st["candidates"] += 1
        outcome = pair_outcome(d)
        if outcome == "duplicate":
            st["duplicates"] += 1
            kept.append(c)
        elif outcome == "variant":
            st["variants"] += 1
            variant_links.append((kind, c[0], c[1], d.prob))
        else:
            st["rejected"] += 1
    if exclusive:
        prob = {(c[0], c[1]): d.prob for c, d in zip(cand, decisions)}
        same = {frozenset(c[:2]) for c, d in zip(cand, decisions) if d.same}
        different = {frozenset(c[:2]) for c in cand} - same
        kept, dropped = exclusive_links(kept, prob, different, units=units)
        if dropped:
            st["dropped_conflicting"] = st.get("dropped_conflicting", 0) + dropped
    return kept


def exclusive_links(kept: list[tuple[str, str, float]], prob: dict[tuple[str, str], float],
                    different: set[frozenset], *, units: tuple[dict[str, int], dict[int, str]] | None = None
                    ) -> tuple[list[tuple[str, str, float]], int]:
    """Drop the weaker of two duplicate links of one text to two texts the verifier called
    different requests (`DedupConfig.exclusive_links`): a text is not the same request as both
    "... by Friday" and "... by Monday", and its translation must not join the cluster of the
    twin it resembles less. Returns the links kept and how many pairs were dropped.

    `units` (text -> copy unit, unit -> its head; `_copy_units`: texts that are exact or near
    copies of each other, the head the most readable) makes the copies of one text one node,
    whose verdict against another node is the verdict on the two nodes' heads where the
    verifier scored that pair (else: the same request when any pair of their texts was called so). Without it, a
    rewording linked to a text and to its upper-case or mistyped copy, with the copy's pair to
    the rewording rejected (p .1-.5: the verifier reads such copies less well), lost its link to
    the text itself; and a twin linked to a mistyped copy of the other twin only (the clean
    pair called different) stays apart from it.

    >>> kept = [("u", "a", 0.9), ("u", "b", 0.9)]
    >>> exclusive_links(kept, {("u", "a"): 0.9, ("u", "b"): 0.7}, {frozenset(("a", "b"))})
    ([('u', 'a', 0.9)], 1)
    >>> exclusive_links(kept, {("u", "a"): 0.9, ("u", "b"): 0.7}, {frozenset(("a", "b"))}, units=({"u": 0, "b": 0}, {0: "u"}))
    ([('u', 'a', 0.9), ('u', 'b', 0.9)], 0)
    >>> exclusive_links(kept, {("u", "a"): 0.9, ("u", "b"): 0.7}, {frozenset(("a", "b"))}, units=({"u": 0, "b": 0}, {0: "b"}))
    ([('u', 'b', 0.9)], 1)
    """
    unit_of, first = units if units is not None else ({}, {})

    def node(k: str):
        return ("unit", unit_of[k]) if k in unit_of else ("text", k)

    def head(nd) -> str:
        return first.get(nd[1], "") if nd[0] == "unit" else nd[1]

    def p_of(pair: frozenset) -> float:
        a, b = sorted(pair)
        return max(prob.get((a, b), 0.0), prob.get((b, a), 0.0))

    same_pairs = {frozenset(c[:2]) for c in kept}
    members: dict[frozenset, list[frozenset]] = {}
    for pair in sorted(same_pairs | set(different), key=sorted):
        nodes = frozenset(node(k) for k in pair)
        if len(nodes) == 2:
            members.setdefault(nodes, []).append(pair)
    strength: dict[frozenset, float] = {}  # node pairs called the same request, with their strength
    different = set()
    for nodes, pairs in members.items():
        heads = frozenset(head(nd) for nd in nodes)
        if heads in same_pairs or (heads not in set(pairs) and any(p in same_pairs for p in pairs)):
            strength[nodes] = p_of(heads) if heads in same_pairs else max(p_of(p) for p in pairs if p in same_pairs)
        else:
            different.add(nodes)
    partners: dict[str, list[tuple[float, str]]] = {}
    for pair, p in strength.items():
        a, b = sorted(pair)
        partners.setdefault(a, []).append((p, b))
        partners.setdefault(b, []).append((p, a))
    drop: set[frozenset] = set()
    for u in sorted(partners):
        ranked = sorted(partners[u], key=lambda t: (-t[0], t[1]))
        for i, (_, x) in enumerate(ranked):
            if any(frozenset((x, y)) in different and frozenset((u, y)) not in drop for _, y in ranked[:i]):
                drop.add(frozenset((u, x)))
    out = [c for c in kept if len(nd := frozenset((node(c[0]), node(c[1])))) == 1 or (nd in strength and nd not in drop)]
    return out, len({frozenset(c[:2]) for c in kept} - {frozenset(c[:2]) for c in out})


def _copy_units(con, config: DedupConfig, edges: dict[str, list[tuple[int, int]]], node_of: dict, sem_keys: list,
                prompts: list, ids: list[str], old) -> tuple[dict[str, int], dict[int, str]]:
    """Semantic key -> its copy unit (the exact and near component of the rows with that first
    prompt: this batch's, and the lake's rows that share an exact or near node with them), and
    unit -> the key of its most readable text (`_readability`; keep order breaks ties):
    `exclusive_links` treats a unit's texts as one and reads the verdicts on that text."""
    arr = np.array(edges["exact"] + edges["near"], dtype=np.int64).reshape(-1, 2)
    lab = components(len(ids) + len(node_of), arr)
    members: list[tuple[int, str, str, str]] = []  # (unit, key, text, conversation id)
    for i, k in enumerate(sem_keys):
        if k is not None:
            members.append((int(lab[i]), k, prompts[i] or "", ids[i]))
    if old is not None and old.num_rows:
        # earlier runs' rows whose text (hash node) is in this batch's exact/near graph: a copy
        # run on its own before must count as one (the result must not depend on the batches)
        hashes, keys, cids = (old.column(c).to_pylist() for c in ("exact_hash", "semantic_key", "conversation_id"))
        linked = [(int(lab[node_of[("hash", h)]]), k, cid) for h, k, cid in zip(hashes, keys, cids)
                  if k is not None and ("hash", h) in node_of]
        if linked:
            text_of = _texts_by(con, config, "semantic_key", {k for _, k, _ in linked}, [], [], [], True)
            members += [(u, k, text_of.get(k, ""), cid) for u, k, cid in linked]
    order = _order_info(con, sorted({m[3] for m in members}), config)
    unit_of: dict[str, int] = {}
    first: dict[int, str] = {}
    best: dict[int, tuple] = {}
    for u, k, text, cid in sorted(members, key=lambda m: (order.get(m[3], ()), m[3])):
        unit_of.setdefault(k, u)
        rank = (_readability(text), order.get(cid, ()), cid)
        if u not in best or rank < best[u]:
            best[u], first[u] = rank, k
    return unit_of, first


def _readability(text: str) -> tuple[int, int]:
    """Smaller is easier for the verifier to read: a text in capitals only, then the number of
    words that are no word of the embedding model's vocabulary (typos: "leavse", "commti")."""
    from curate.models.verify import _vocabulary

    vocab = _vocabulary()
    words = re.findall(r"[a-z]{3,}", text.lower())
    shouting = int(any(c.isalpha() for c in text) and text == text.upper())
    return shouting, sum(w not in vocab for w in words)


def split_clusters(clusters: list[tuple[Any, list[Any]]], linked: Callable[[Any, Any], bool],
                   same_many: Callable[[list[tuple[Any, Any]]], list[bool]],
                   neighbours: Callable[[list[Any]], list[list[Any]]]) -> list[tuple[Any, list[Any]]]:
    """Split clusters so that every member is the same request as its cluster's representative.

    `clusters`: (representative, other members in keep order). A member stays when it is
    `linked` to the representative (a direct verified link, the same text) or `same_many`
    (the verifier, asked in one batch per round) calls the pair the same request; the members
    that leave are grouped by `neighbours` (their linked components, each in keep order) and
    each group is split again, its first member the representative. Every round shrinks the
    clusters it splits, so it ends; the result does not depend on the order of `clusters`.

    >>> links = {("b", "a"), ("c", "b")}
    >>> linked = lambda u, r: (u, r) in links or (r, u) in links
    >>> split_clusters([("a", ["b", "c"])], linked, lambda ps: [False] * len(ps), lambda us: [us])
    [('a', ['b']), ('c', [])]
    """
    done: list[tuple[Any, list[Any]]] = []
    todo = list(clusters)
    while todo:
        need: dict[tuple[Any, Any], bool] = {}
        for rep, members in todo:
            for u in members:
                if not linked(u, rep):
                    need.setdefault((u, rep), False)
        asked = list(need)
        for pair, same in zip(asked, same_many(asked) if asked else []):
            need[pair] = bool(same)
        nxt = []
        for rep, members in todo:
            stay = [u for u in members if (u, rep) not in need or need[(u, rep)]]
            leave = [u for u in members if (u, rep) in need and not need[(u, rep)]]
            done.append((rep, stay))
            for group in neighbours(leave) if leave else []:
                if len(group) > 1:
                    nxt.append((group[0], group[1:]))
                else:
                    done.append((group[0], []))
        todo = nxt
    return done


def _split_by_representative(con, config: DedupConfig, lab: np.ndarray, ids: list[str], order: dict, hashes: list[str],
                             sem_keys: list, prompts: list, rep_for_label: dict[int, str], old, near_lab: np.ndarray,
                             sem_links: set[tuple[str, str]], sem_cosine, has_table: bool,
                             stats: DedupStats, *, store=None) -> np.ndarray:
    """Relabel this batch's rows so that each cluster holds only rows the verifier calls the same
    request as its representative (`split_clusters`); rows split off get fresh labels. A unit is
    one (key text, first prompt) pair: identical rows move together. Old rows keep their labels
    (their annotations are written already), and the representative of a cluster with old rows
    stays the old one."""
    from curate.models.verify import Verifier

    n = len(ids)
    by_label: dict[int, list[int]] = {}
    for i in sorted(range(n), key=lambda i: (order[ids[i]], ids[i])):
        by_label.setdefault(int(lab[i]), []).append(i)
    unit_rows: dict[tuple, list[int]] = {}
    near_of: dict[str, int] = {}
    for i in range(n):
        unit_rows.setdefault((hashes[i], sem_keys[i]), []).append(i)
        near_of[hashes[i]] = int(near_lab[i])
    old_reps = sorted({r for l, r in rep_for_label.items() if l in by_label})
    rep_unit = _rep_info(old, old_reps)
    clusters = []
    for l, rows in by_label.items():
        units = list(dict.fromkeys((hashes[i], sem_keys[i]) for i in rows))
        if l in rep_for_label and rep_for_label[l] in rep_unit:
            rep = tuple(rep_unit[rep_for_label[l]])
        else:
            rep, units = units[0], units[1:]
        units = [u for u in units if u != rep]
        if units:
            clusters.append((rep, units))
    if not clusters:
        return lab

    keys_of_near: dict[int, set] = {}  # near label -> the first prompts of its rows (the copies of a text)
    for i in range(n):
        keys_of_near.setdefault(near_of[hashes[i]], set()).add(sem_keys[i])

    def linked(u, r) -> bool:
        if u[0] == r[0] or u[1] == r[1] or (u[1], r[1]) in sem_links:
            return True
        nu, nr = near_of.get(u[0]), near_of.get(r[0])
        if nu is not None and nu == nr:
            return True
        # verified against an exact or near copy of the representative (an upper-case or
        # mistyped copy may be the representative; the verifier reads the clean text better)
        return nr is not None and any((u[1], k) in sem_links for k in keys_of_near.get(nr, ()))

    keys_needed = {k for rep, us in clusters for u in (rep, *us) for k in (u[1],) if k is not None}
    text_of = _texts_by(con, config, "semantic_key", keys_needed, sem_keys, prompts, ids, has_table)

    def same_many(pairs):
        pairs = [(u, r) for u, r in pairs]
        ok = [u[1] in text_of and r[1] in text_of for u, r in pairs]
        ask = [p for p, o in zip(pairs, ok) if o]
        verdict: dict = {}
        if ask:
            # the representative first, as the verified candidate pairs were scored (query, neighbour)
            v = Verifier("semantic", store=store)
            dec = v.decide_many([text_of[r[1]] for _, r in ask], [text_of[u[1]] for u, _ in ask],
                                cos_full=sem_cosine([(r[1], u[1]) for u, r in ask]), reasons=False)
            verdict = {p: d.same for p, d in zip(ask, dec)}
        st = stats.verified.setdefault("representative", {"checked": 0, "split": 0})
        st["checked"] += len(pairs)
        st["split"] += sum(1 for p in pairs if not verdict.get(p, False))
        return [verdict.get(p, False) for p in pairs]

    def neighbours(units):
        """`units` grouped by what links them (the same text, key or near cluster, a verified
        semantic link), groups in order of their first unit, each in `units` order."""
        links: list[tuple[int, int]] = []
        first: dict[tuple, int] = {}
        for j, u in enumerate(units):
            for key in (("h", u[0]), ("k", u[1]), ("n", near_of.get(u[0]))):
                if key[1] is None:
                    continue
                if key in first:
                    links.append((first[key], j))
                else:
                    first[key] = j
        links += [(first[("k", a)], first[("k", b)]) for a, b in sem_links
                  if ("k", a) in first and ("k", b) in first]
        labels = components(len(units), np.array(links, dtype=np.int64).reshape(-1, 2))
        groups: dict[int, list] = {}
        for j, u in enumerate(units):
            groups.setdefault(int(labels[j]), []).append(u)
        return list(groups.values())

    out = lab.copy()
    fresh = int(lab.max()) + 1 if len(lab) else 0
    originals = {rep for rep, _ in clusters}
    for rep, members in split_clusters(clusters, linked, same_many, neighbours):
        if rep in originals:
            continue  # the representative's group keeps the cluster's label
        for u in (rep, *members):
            out[unit_rows[u]] = fresh
        fresh += 1
    return out


def pair_outcome(decision) -> str:
    """A verified candidate pair's outcome: `duplicate` (the same request: merged),
    `variant` (same template, other values: annotated, kept) or `distinct`.

    >>> from curate.models.verify import Decision
    >>> pair_outcome(Decision(same=False, prob=0.2, uncertain=False, variant=True, reason=""))
    'variant'
    """
    if decision.same:
        return "duplicate"
    return "variant" if decision.variant else "distinct"


def duplicate_kind(*, same_hash: bool, jaccard: float | None, cosine: float | None, near_cut: float,
                   semantic_cut: float, same_near_cluster: bool, near_on: bool,
                   semantic_on: bool) -> tuple[str, float | None]:
    """Why a row is a duplicate of its cluster's representative, and the similarity shown:
    `exact` (same key), `near` (estimated Jaccard at the near cut, or linked through a chain
    of near duplicates), else `semantic` (with the cosine to the representative).

    >>> duplicate_kind(same_hash=False, jaccard=0.3, cosine=0.95, near_cut=0.65, semantic_cut=0.6,
    ...                same_near_cluster=False, near_on=True, semantic_on=True)
    ('semantic', 0.95)
    """
    if same_hash:
        return "exact", 1.0
    if jaccard is not None and jaccard >= near_cut - 1e-6:
        return "near", jaccard
    if cosine is not None and cosine >= semantic_cut - 1e-6 and not same_near_cluster:
        return "semantic", cosine
    if near_on and same_near_cluster or not semantic_on:
        return "near", jaccard  # linked through a chain of near duplicates
    return "semantic", cosine


def _holders(con, config: DedupConfig, links, ids, hashes, sem_keys, has_table) -> dict[tuple[str, str], str]:
    """A conversation holding each text of the variant links: this batch's first, else the lake's smallest id."""
    out: dict[tuple[str, str], str] = {}
    for cid, h, k in sorted(zip(ids, hashes, sem_keys)):
        out.setdefault(("near", h), cid)
        if k is not None:
            out.setdefault(("semantic", k), cid)
    if has_table:
        for kind, column in (("near", "exact_hash"), ("semantic", "semantic_key")):
            missing = sorted({x for kd, a, b, _ in links if kd == kind for x in (a, b)} - {k for kk, k in out if kk == kind})
            if not missing:
                continue
            con.register("_keys", pa.table({"k": pa.array(missing, pa.string())}))
            rows = con.execute(f"SELECT d.{column}, min(d.conversation_id) FROM {config.table} d JOIN _keys "
                               f"ON d.{column} = _keys.k GROUP BY 1").fetchall()
            con.unregister("_keys")
            out.update({(kind, k): cid for k, cid in rows})
    return out


def _same_label(labels, i: int, other: int | None) -> bool:
    return labels is not None and other is not None and labels[i] == labels[other]


def _jaccard(sig_of: dict, ha: str, hb: str | None) -> float | None:
    if not sig_of or hb is None:
        return None
    pos, sig = sig_of["_pos"], sig_of["_sig"]
    if ha not in pos or hb not in pos:
        return None
    return float(estimate_jaccard(sig, np.array([[pos[ha], pos[hb]]]))[0])


def _old_rows(con, config: DedupConfig, has_table: bool) -> pa.Table | None:
    if not has_table:
        return None
    return con.sql(
        f"SELECT conversation_id, exact_hash, semantic_key, exact_cluster, near_cluster, semantic_cluster,"
        f" cluster_id, duplicate_of FROM {config.table}").to_arrow_table()


def _involved_old(old: pa.Table | None, hashes: set[str], keys: set[str], config: DedupConfig) -> pa.Table | None:
    if old is None or old.num_rows == 0:
        return None
    import pyarrow.compute as pc

    mask = pc.is_in(old.column("exact_hash"), value_set=pa.array(sorted(hashes), pa.string()))
    if keys:
        mask = pc.or_(mask, pc.fill_null(pc.is_in(old.column("semantic_key"),
                                                   value_set=pa.array(sorted(keys), pa.string())), False))
    return old.filter(mask)


def _rep_info(old: pa.Table | None, ids: list[str]) -> dict[str, tuple]:
    if old is None or not ids:
        return {}
    import pyarrow.compute as pc

    sub = old.filter(pc.is_in(old.column("conversation_id"), value_set=pa.array(ids, pa.string())))
    return {c: (h, k) for c, h, k in zip(sub.column("conversation_id").to_pylist(),
                                         sub.column("exact_hash").to_pylist(), sub.column("semantic_key").to_pylist())}


def _frequency(con, config: DedupConfig, ids, hashes, order, has_table) -> tuple[list[int], list[bool], int | None]:
    from collections import Counter

    old_counts: Counter = Counter()
    if has_table:
        old_counts.update(dict(con.execute(
            f"SELECT exact_hash, count(*) FROM {config.table} GROUP BY 1").fetchall()))
    seen: Counter = Counter()
    ranks = [0] * len(ids)
    for i in sorted(range(len(ids)), key=lambda i: (order[ids[i]], ids[i])):
        seen[hashes[i]] += 1
        ranks[i] = old_counts[hashes[i]] + seen[hashes[i]]
    cap = config.frequency_cap
    if config.frequency_cap_percentile is not None:
        sizes = np.array(list((old_counts + seen).values()))
        cap = int(math.ceil(np.percentile(sizes, config.frequency_cap_percentile))) if sizes.size else None
    capped = [cap is not None and r > cap for r in ranks]
    return ranks, capped, cap


# ---- persisted signatures --------------------------------------------------------------------

def _load_signatures(folder, num_perm: int) -> tuple[list[str], np.ndarray]:
    files = sorted(folder.glob("[!.]*.parquet")) if folder.exists() else []
    if not files:
        return [], np.zeros((0, num_perm), dtype=np.uint32)
    tables = [pq.read_table(f) for f in files]
    t = pa.concat_tables(tables)
    hs = t.column("exact_hash").to_pylist()
    sig = t.column("signature").combine_chunks().values.to_numpy().reshape(-1, num_perm)
    # an interrupted run may have stored a hash twice; keep the first copy
    seen, keep = set(), []
    for i, h in enumerate(hs):
        if h not in seen:
            seen.add(h)
            keep.append(i)
    if len(keep) != len(hs):
        hs = [hs[i] for i in keep]
        sig = sig[keep]
    return hs, np.ascontiguousarray(sig, dtype=np.uint32)


def _save_signatures(folder, hashes: list[str], sig: np.ndarray, has: np.ndarray, part: str) -> None:
    width = sig.shape[1]
    table = pa.table({
        "exact_hash": pa.array(hashes, pa.string()),
        "signature": pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1), pa.uint32()), width),
    })
    write_parquet_atomic(table, folder / f"{part}.parquet")


def _check_fingerprint(index_root, config: DedupConfig, embedder=None) -> None:
    path = index_root / "config.json"
    if not path.exists():
        return
    stored = json.loads(path.read_text())
    want = config.fingerprint()
    if stored != want:
        raise ConfigError(
            f"the lake's `{config.table}` table was built with {stored}, not {want}; "
            f"use the same settings or a new table name (table=...)")
    sem_meta = SemanticIndex.stored_meta(index_root / "semantic")
    if config.semantic and sem_meta is not None:
        model = config.semantic_config.model
        from curate.models.embed import DEFAULT_MODEL, Embedder

        model_id = embedder.model_id if embedder is not None else Embedder(model or DEFAULT_MODEL).model_id
        if sem_meta.get("model_id") != model_id:
            raise ConfigError(f"the semantic index of `{config.table}` uses model {sem_meta.get('model_id')!r}, "
                              f"not {model_id!r}; use it or a new table name")


def _write_fingerprint(index_root, config: DedupConfig) -> None:
    path = index_root / "config.json"
    if not path.exists():
        index_root.mkdir(parents=True, exist_ok=True, mode=0o750)
        path.write_text(json.dumps(config.fingerprint()))
