"""Where batch work runs: in this process, or across the workers of a Ray cluster.

The heavy stages are batch functions `fn(pa.Table) -> pa.Table` (a tagger's `tag_batch`,
MinHash signatures, embedding, judge calls). An executor maps one over a stream of
batches and yields the results *in input order*, so the caller's code, and its output,
are the same whichever executor runs it:

>>> ex = executor_for(None)                           # no address: LocalExecutor
>>> [t.num_rows for t in ex.map_batches(lambda t: t, [pa.table({"a": [1, 2]})])]
[2]

`executor_for(address)` picks the executor: an explicit address, else `CURATE_RAY_ADDRESS`,
else local. Addresses are Ray's: `auto` (a cluster started with `ray start` on this
machine), `ray://head:10001` (Ray Client), `host:6379`, or `local` (start a private Ray
instance in this process, for tests and benchmarks). Ray is imported only when an address
is given; without `pip install 'chatcurate[ray]'` that raises `MissingDependencyError`.

Three shapes of work:
- `map_batches(fn, batches)`: stateless functions as Ray tasks, a bounded window of
  batches in flight (memory stays flat however long the stream is).
- `map_actors(factory, batches, pool_size=, num_gpus=)`: stateful work such as embedding,
  one model per actor: `factory()` runs once per actor and returns the batch function.
- `map_parquet(fn, paths)`: batches read from Parquet files by the workers themselves
  (Ray Data's `read_parquet` + `map_batches`), so the driver never holds the input. The
  files must be on storage every worker sees (a shared filesystem, or one machine).

The Prefect side (running flows' tasks on the same cluster) lives in `flows/runners.py`:
libraries never import prefect.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from curate.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

BatchFn = Callable[[pa.Table], pa.Table]
RAY_ADDRESS_ENV = "CURATE_RAY_ADDRESS"
RAY_INSTALL_HINT = "pip install 'chatcurate[ray]'"


def ray_address(explicit: str | None = None) -> str | None:
    """The Ray address to use: `explicit`, else `CURATE_RAY_ADDRESS`, else None (stay local)."""
    if explicit:
        return explicit
    value = os.environ.get(RAY_ADDRESS_ENV, "").strip()
    return value or None


def import_ray():
    """`ray`, or MissingDependencyError naming the install that fixes it."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(f"running on a Ray cluster needs Ray: {RAY_INSTALL_HINT}") from exc
    return ray


@dataclass(frozen=True, kw_only=True)
class RayConfig:
    """How to reach (or start) a Ray cluster.

    `address`: see the module docstring; `local` starts a private instance with
    `num_cpus` CPUs and an object store of `object_store_mb`. `max_in_flight` bounds the
    batches submitted but not yet collected (per executor), which bounds memory.
    """

    address: str = "local"
    num_cpus: int | None = None
    object_store_mb: int | None = None
    max_in_flight: int | None = None
    runtime_env: dict | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not self.address:
            raise ConfigError("Ray address is empty: pass --ray-address auto|local|ray://host:10001 or leave it out")
        for name in ("num_cpus", "object_store_mb", "max_in_flight"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")

    def init_kwargs(self) -> dict:
        """Keyword arguments for `ray.init` (also what `flows.runners` hands Prefect's Ray runner)."""
        kwargs: dict = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False,
                        "configure_logging": False}
        if self.address != "local":
            kwargs["address"] = self.address
        else:
            if self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            if self.object_store_mb is not None:
                kwargs["object_store_memory"] = self.object_store_mb << 20
        if self.runtime_env:
            kwargs["runtime_env"] = self.runtime_env
        return kwargs


class LocalExecutor:
    """Runs every batch in this process, in order. The baseline and the default."""

    name = "local"

    @property
    def workers(self) -> int:
        return 1

    def map_batches(self, fn: BatchFn, batches: Iterable[pa.Table], *, num_cpus: float = 1,
                    num_gpus: float = 0) -> Iterator[pa.Table]:
        for batch in batches:
            yield fn(batch)

    def map_actors(self, factory: Callable[[], BatchFn], batches: Iterable[pa.Table], *, pool_size: int = 1,
                   num_cpus: float = 1, num_gpus: float = 0) -> Iterator[pa.Table]:
        fn = factory()
        for batch in batches:
            yield fn(batch)

    def map_parquet(self, fn: BatchFn, paths: Sequence[str | os.PathLike], *, columns: list[str] | None = None,
                    batch_size: int = 20_000, num_cpus: float = 1) -> Iterator[pa.Table]:
        return self.map_batches(fn, iter_parquet(paths, columns=columns, batch_size=batch_size))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def iter_parquet(paths: Sequence[str | os.PathLike], *, columns: list[str] | None = None,
                 batch_size: int = 20_000) -> Iterator[pa.Table]:
    """Batches of at most `batch_size` rows from Parquet files, in file order."""
    import pyarrow.parquet as pq

    for path in paths:
        pf = pq.ParquetFile(path)
        for rb in pf.iter_batches(batch_size=batch_size, columns=columns):
            if rb.num_rows:
                yield pa.Table.from_batches([rb])


def _run_batch(fn: BatchFn, batch: pa.Table) -> pa.Table:
    return fn(batch)


class _BatchActor:
    """Holds one instance of the batch function (one model per actor)."""

    def __init__(self, factory: Callable[[], BatchFn]):
        self.fn = factory()

    def run(self, batch: pa.Table) -> pa.Table:
        return self.fn(batch)


class RayExecutor:
    """Runs batches as Ray tasks or actors on the cluster at `config.address`.

    Results come back in input order. Connecting happens on first use; `close()`
    shuts down a Ray instance this executor started itself (never a shared cluster).
    """

    name = "ray"

    def __init__(self, config: RayConfig | None = None, **kwargs):
        self.config = config or RayConfig(**kwargs)
        self._ray = None
        self._started_here = False
        self._remote_run = None

    # -- connection ---------------------------------------------------------------------
    def ray(self):
        if self._ray is None:
            ray = import_ray()
            if not ray.is_initialized():
                ray.init(**self.config.init_kwargs())
                self._started_here = self.config.address == "local"
                log.info("Ray: connected (%s), %s CPUs", self.config.address,
                         ray.cluster_resources().get("CPU"))
            self._ray = ray
        return self._ray

    @property
    def workers(self) -> int:
        return max(1, int(self.ray().cluster_resources().get("CPU", 1)))

    def _window(self) -> int:
        return self.config.max_in_flight or 2 * self.workers

    # -- work ---------------------------------------------------------------------------
    def map_batches(self, fn: BatchFn, batches: Iterable[pa.Table], *, num_cpus: float = 1,
                    num_gpus: float = 0) -> Iterator[pa.Table]:
        ray = self.ray()
        remote = ray.remote(_run_batch).options(num_cpus=num_cpus, num_gpus=num_gpus)
        fn_ref = ray.put(fn)  # ship a (possibly large) closure once, not once per batch
        return self._ordered(ray, (remote.remote(fn_ref, b) for b in batches))

    def map_actors(self, factory: Callable[[], BatchFn], batches: Iterable[pa.Table], *, pool_size: int = 1,
                   num_cpus: float = 1, num_gpus: float = 0) -> Iterator[pa.Table]:
        ray = self.ray()
        actor_cls = ray.remote(_BatchActor).options(num_cpus=num_cpus, num_gpus=num_gpus)
        actors = [actor_cls.remote(factory) for _ in range(max(1, pool_size))]

        def submit() -> Iterator:
            for i, batch in enumerate(batches):
                yield actors[i % len(actors)].run.remote(batch)

        def run() -> Iterator[pa.Table]:
            try:
                yield from self._ordered(ray, submit())
            finally:
                for actor in actors:
                    ray.kill(actor)

        return run()

    def map_parquet(self, fn: BatchFn, paths: Sequence[str | os.PathLike], *, columns: list[str] | None = None,
                    batch_size: int = 20_000, num_cpus: float = 1) -> Iterator[pa.Table]:
        ray = self.ray()
        from ray.data import DataContext

        DataContext.get_current().execution_options.preserve_order = True  # same output order as local
        ds = ray.data.read_parquet([str(p) for p in paths], columns=columns)
        ds = ds.map_batches(fn, batch_format="pyarrow", batch_size=batch_size, num_cpus=num_cpus)
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            if batch.num_rows:
                yield batch

    def _ordered(self, ray, refs: Iterator) -> Iterator[pa.Table]:
        window: deque = deque()
        limit = self._window()
        for ref in refs:
            window.append(ref)
            if len(window) >= limit:
                yield ray.get(window.popleft())
        while window:
            yield ray.get(window.popleft())

    def close(self) -> None:
        if self._ray is not None and self._started_here:
            self._ray.shutdown()
        self._ray = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Executor = LocalExecutor | RayExecutor


def executor_for(address: str | None = None, **ray_options) -> Executor:
    """`RayExecutor` for an address (argument or `CURATE_RAY_ADDRESS`), else `LocalExecutor`."""
    address = ray_address(address)
    if address is None:
        return LocalExecutor()
    import_ray()  # fail in the first second, not at the first batch
    return RayExecutor(RayConfig(address=address, **ray_options))


# ---- stage adapters ---------------------------------------------------------------------

class EmbedBatch:
    """Batch function: embeddings of `column` as a `embedding` column (fixed-size list of float32).

    The model loads on first call, inside the worker, so one actor holds one model and the
    object pickles small. Device and batch size follow `curate.gpu.plan_embedding`. On one
    H100 a single process is host-bound at ~7k texts/s (docs/scale.md): use several actors
    per GPU, e.g. `map_actors(EmbedBatch, ..., pool_size=4 * gpus, num_gpus=0.25)`.
    """

    def __init__(self, column: str = "text", model: str | None = None):
        self.column, self.model = column, model
        self._embedder = None

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self._embedder is None:
            from curate.embed import Embedder
            from curate.gpu import plan_embedding

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
                 max_tokens: int = 64, concurrency: int = 8, timeout_s: float = 60, cache_path: str | None = None):
        if not base_urls:
            raise ConfigError("ChatBatch needs at least one base URL")
        self.base_urls, self.model, self.column, self.system = list(base_urls), model, column, system
        self.max_tokens, self.concurrency, self.timeout_s, self.cache_path = max_tokens, concurrency, timeout_s, cache_path
        self._client = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    def __call__(self, batch: pa.Table) -> pa.Table:
        from curate.llm import ChatClient, ChatRequest, Endpoint, ResponseCache

        if self._client is None:
            cache = ResponseCache(self.cache_path) if self.cache_path else None
            self._client = ChatClient([Endpoint(u, self.model) for u in self.base_urls],
                                      concurrency=self.concurrency, timeout_s=self.timeout_s, cache=cache)
        reqs = []
        for text in batch.column(self.column).to_pylist():
            messages = ([{"role": "system", "content": self.system}] if self.system else [])
            reqs.append(ChatRequest(messages + [{"role": "user", "content": text or ""}], max_tokens=self.max_tokens))
        results = self._client.chat_many(reqs)
        return batch.append_column("answer", pa.array([r.text for r in results], pa.string())).append_column(
            "error", pa.array([r.error for r in results], pa.string()))


def run_tagger_on(executor: Executor, lake, table: str, tag_batch: BatchFn, *, stage: str | None = None,
                  columns: Sequence[str] | None = None, batch_size: int = 2000, limit: int | None = None):
    """`curate.tagging.run_tagger` with `tag_batch` mapped by `executor` (several batches in flight).

    The driver selects pending conversations (anti-join) and writes one part per batch, in
    order, under the writer lock, exactly as `run_tagger` does; only `tag_batch` runs on
    the workers, so it must be picklable (cloudpickle handles closures) and hold no open
    connection. With `LocalExecutor` the parts are the same as `run_tagger`'s.
    """
    import time
    from datetime import datetime, timezone

    from curate import tagging
    from curate.errors import CurateError
    from curate.lake import new_run_id

    columns = tuple(columns or tagging.DEFAULT_COLUMNS)
    run_id = new_run_id()
    stats = tagging.TagStats(table=table, run_id=run_id)
    started_at = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with lake.writer_lock():
        stats.total, pending = tagging.count_pending(lake, table)
        stats.skipped_already_tagged = stats.total - pending
        inputs: deque = deque()

        def batches() -> Iterator[pa.Table]:
            for batch in tagging.iter_pending(lake, table, columns=columns, batch_size=batch_size, limit=limit):
                inputs.append(batch.column("conversation_id"))
                yield batch

        for i, result in enumerate(executor.map_batches(tag_batch, batches())):
            ids = inputs.popleft()
            got = result.column("conversation_id") if "conversation_id" in result.column_names else None
            if got is None or got.to_pylist() != ids.to_pylist() and sorted(got.to_pylist()) != sorted(ids.to_pylist()):
                raise CurateError(f"tagger for {table!r} must return exactly one row per input conversation")
            if "run_id" not in result.column_names:
                result = result.append_column("run_id", pa.array([run_id] * result.num_rows, pa.string()))
            lake.write_annotation(table, result, part=f"{run_id}-{i:05d}")
            stats.parts_written += 1
            stats.tagged += result.num_rows
        stats.seconds = round(time.perf_counter() - t0, 3)
        stats.extra["executor"] = executor.name
        lake.record_run(run_id, stage or f"tag_{table}", started_at, stats.as_dict())
    return stats
