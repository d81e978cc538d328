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

from curate.core.errors import ConfigError, MissingDependencyError

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
