"""Batch functions over the models, for an executor's `map_batches` / `map_actors`
(`curate.core.execution`): embeddings and chat requests, one row each.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from curate.core.errors import ConfigError


class EmbedBatch:
    """Batch function: embeddings of `column` as a `embedding` column (fixed-size list of float32).

    The model loads on first call, inside the worker, so one actor holds one model and the
    object pickles small. Device and batch size follow `curate.models.gpu.plan_embedding`. On one
    H100 a single process is host-bound at ~7k texts/s (docs/scale.md): use several actors
    per GPU, e.g. `map_actors(EmbedBatch, ..., pool_size=4 * gpus, num_gpus=0.25)`.
    """

    def __init__(self, column: str = "text", model: str | None = None):
        self.column, self.model = column, model
        self._embedder = None

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self._embedder is None:
            from curate.models.embed import Embedder
            from curate.models.gpu import plan_embedding

            plan = plan_embedding()
            self._embedder = Embedder(self.model, device=plan.device, batch_size=plan.batch_size)
        texts = [t or "" for t in batch.column(self.column).to_pylist()]
        vecs = self._embedder.embed(texts)
        flat = pa.array(vecs.reshape(-1), pa.float32())
        return batch.append_column("embedding", pa.FixedSizeListArray.from_arrays(flat, vecs.shape[1]))


class ChatBatch:
    """Batch function: one chat request per row of `column` through the shared `ChatClient`.

    Adds `answer` (text or null) and `error` columns. The client is built inside the worker
    on first call (connections and the sqlite cache do not travel); it spreads requests over
    all `base_urls` (replicas of a served model), so N workers x `concurrency` requests are
    in flight. `system` is an optional system prompt.
    """

    def __init__(self, base_urls: Sequence[str], model: str, *, column: str = "prompt", system: str | None = None,
                 max_tokens: int = 64, concurrency: int = 8, timeout_s: float = 60, cache_dir: str | None = None):
        if not base_urls:
            raise ConfigError("ChatBatch needs at least one base URL")
        self.base_urls, self.model, self.column, self.system = list(base_urls), model, column, system
        self.max_tokens, self.concurrency, self.timeout_s, self.cache_dir = max_tokens, concurrency, timeout_s, cache_dir
        self._client = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    def __call__(self, batch: pa.Table) -> pa.Table:
        from curate.models.llm import ChatRequest, chat_client

        if self._client is None:
            self._client = chat_client(self.base_urls, self.model, cache_dir=self.cache_dir,
                                       concurrency=self.concurrency, timeout_s=self.timeout_s)
        reqs = []
        for text in batch.column(self.column).to_pylist():
            messages = ([{"role": "system", "content": self.system}] if self.system else [])
            reqs.append(ChatRequest(messages + [{"role": "user", "content": text or ""}], max_tokens=self.max_tokens))
        results = self._client.chat_many(reqs)
        return batch.append_column("answer", pa.array([r.text for r in results], pa.string())).append_column(
            "error", pa.array([r.error for r in results], pa.string()))
