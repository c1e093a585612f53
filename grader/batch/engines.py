"""Where a batch's tasks run: a local pool of worker threads, each driving one task process at a
time, or a running Dask distributed cluster. Both take a task (grader.batch.tasks.run_task) and
say which of the submitted ones finished first."""

from __future__ import annotations

from concurrent import futures as cf
from typing import Any

from grader.batch.tasks import close_residents, run_task
from grader.errors import GradingError


class LocalEngine:
    """A pool of ``workers`` threads, each running one task process at a time."""

    def __init__(self, workers: int) -> None:
        self.parallel = max(1, workers)
        self.pool = cf.ThreadPoolExecutor(max_workers=self.parallel,
                                          thread_name_prefix="grade")

    def submit(self, kind: str, payload: Any, timeout: float):
        return self.pool.submit(run_task, kind, payload, timeout)

    def wait(self, pending: set) -> set:
        return cf.wait(pending, return_when=cf.FIRST_COMPLETED).done

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        close_residents()


class DaskEngine:
    """Tasks on a running Dask distributed cluster (its scheduler's address)."""

    def __init__(self, address: str) -> None:
        from distributed import Client

        try:
            self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise GradingError("usage", f"No Dask scheduler answered at {address} ({exc}). "
                               f"Start one with `dask scheduler` and workers with `dask worker "
                               f"{address} --nthreads 1` (README, 'Grading on a cluster').") \
                from None
        self.parallel = max(1, sum(self.client.nthreads().values()))

    def submit(self, kind: str, payload: Any, timeout: float):
        return self.client.submit(run_task, kind, payload, timeout, pure=False)

    def wait(self, pending: set) -> set:
        from distributed import wait

        return set(wait(list(pending), return_when="FIRST_COMPLETED").done)

    def close(self) -> None:
        self.client.close()


def answer(future) -> dict[str, Any]:
    """A task's answer; a task that could not run at all (a lost Dask worker) is a failure."""
    try:
        return future.result()
    except Exception as exc:
        return {"failed": f"the task could not run ({type(exc).__name__}: {exc})"}
