"""Run the flows' tasks on a Ray cluster through Prefect's Ray task runner (`prefect-ray`).

`task_runner_for(address)` gives the task runner for a Ray address (argument, else
`CURATE_RAY_ADDRESS`), or Prefect's default thread pool when there is none, so one flow
definition serves both. A task only goes to the runner when it is *submitted*
(`task.submit(...)`); called directly it runs in the flow's process. Every stage flow
calls its task through `run_task`, which submits it when the flow has a Ray runner and
calls it directly otherwise, so the whole pipeline runs on Ray workers with
`python -m flows.pipeline --ray-address auto` and exactly as before without one.
`flows.core.core_flow` is the smallest example: ingest and dedup only.

Lives in `flows/` because libraries never import prefect; the Ray connection settings
come from `curate.core.execution.RayConfig`, so tasks and `RayExecutor` share one cluster.
"""

from __future__ import annotations

from curate.core.execution import RayConfig, import_ray, ray_address


def task_runner_for(address: str | None = None, *, num_cpus: int | None = None,
                    object_store_mb: int | None = None):
    """`RayTaskRunner` for `address` (or `CURATE_RAY_ADDRESS`); `ThreadPoolTaskRunner` without one.

    `local` starts (or reuses) a Ray instance in this process; `auto`, `host:port` and
    `ray://host:10001` connect to a running cluster.
    """
    address = ray_address(address)
    if address is None:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    import_ray()
    try:
        from prefect_ray import RayTaskRunner
    except ImportError as exc:
        from curate.core.errors import MissingDependencyError

        raise MissingDependencyError("Prefect's Ray task runner needs: pip install 'chatcurate[ray]'") from exc
    config = RayConfig(address=address, num_cpus=num_cpus, object_store_mb=object_store_mb)
    kwargs = config.init_kwargs()
    kwargs.pop("address", None)
    kwargs.pop("ignore_reinit_error", None)  # prefect-ray checks is_initialized itself
    return RayTaskRunner(address=None if address == "local" else address, init_kwargs=kwargs)


def on_ray() -> bool:
    """Whether the flow running now has a Ray task runner."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx is not None and type(ctx.task_runner).__name__ == "RayTaskRunner"


def run_task(task, *args, return_state: bool = False):
    """Run a stage's task from its flow: in this process by default, on a Ray worker when the
    flow has a Ray task runner (submitted, then awaited: stages depend on each other).

    Returns the task's result, or its final state with `return_state=True`, either way.
    """
    if not on_ray():
        return task(*args, return_state=return_state)
    future = task.submit(*args)
    if not return_state:
        return future.result()
    future.wait()
    return future.state


def with_runner(flow_, address: str | None):
    """`flow_` with the task runner for `address` (unchanged without one), e.g. for a subflow."""
    return flow_ if address is None else flow_.with_options(task_runner=task_runner_for(address))


def connect_ray(address: str | None) -> None:
    """Connect to (or start) Ray for `address` unless this process already is connected.

    A flow whose subflows each get a Ray task runner calls this first, so they share one
    connection: a runner that finds Ray connected uses it and leaves it up, whereas one that
    starts Ray shuts it down when its subflow ends. A flow running with `task_runner_for`
    is connected already; otherwise Ray started here lives until the process exits.
    """
    if address is None:
        return
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(**RayConfig(address=address).init_kwargs())
