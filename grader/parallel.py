"""Run the engine on many submissions: in this process, in a process pool, or on Dask.

Every worker process keeps one warm ``GradingWorker`` (numpy, torch and course_lib imported
once; one sandboxed child forked per submission).  A task carries only paths and settings;
it returns the engine's ``NotebookResult`` together with the rendered feedback, so the
main process only writes files and the gradebook.  Results come back as they finish.

Dask needs the course folder at the same path on every worker (a shared file system; a
``LocalCluster`` trivially has it) and ``course_lib`` installed there.
"""
from __future__ import annotations

import json
import multiprocessing
import threading
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator


@dataclass(frozen=True)
class Task:
    """One submission to grade (all fields picklable)."""

    assignment: str
    student: str
    source_path: str
    submission_path: str
    submission_sha256: str
    limits: object  # engine.Limits
    isolated: bool = True  # False: --unsafe-no-isolation


@dataclass
class Outcome:
    """What a worker sends back: the engine's result and the feedback, or a grader error."""

    task: Task
    result: object = None  # engine.NotebookResult
    autograded: dict | None = None
    html: str = ""
    notes: tuple = ()
    grader_error: str = ""  # the grader itself failed: nothing is recorded, a re-run retries


def default_worker_factory():
    from grader.engine import GradingWorker

    return GradingWorker()


_DEFAULT_FACTORY = default_worker_factory
_worker = None
_worker_lock = threading.Lock()
_factory: Callable | None = None


def _init_process(factory: Callable | None) -> None:
    global _factory
    _factory = factory


def _one_thread() -> None:
    """Run the test cells' torch operations on one thread, as the sandbox does (the zygote
    calls ``torch.set_num_threads(1)``): the workers and their sandboxes already share the
    cores, where more intra-op threads only compete (and OpenMP's spinning burns CPU), and
    the results do not depend on the number of cores or workers."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def _get_worker():
    """The process's warm GradingWorker, created on first use and closed at exit."""
    global _worker
    with _worker_lock:
        if _worker is None:
            from multiprocessing.util import Finalize

            _one_thread()
            worker = (_factory or default_worker_factory)()
            worker.__enter__()
            _worker = worker
            Finalize(None, close_worker, exitpriority=50)
        return _worker


def close_worker() -> None:
    global _worker
    with _worker_lock:
        worker, _worker = _worker, None
    if worker is not None:
        worker.__exit__(None, None, None)


def prestart(factory: Callable | None = None, isolated: bool = True) -> None:
    """Start this process's default GradingWorker without waiting for it: its zygote
    imports numpy and torch in its own process while the caller does other work, and is
    awaited at the first submission.  (Started from this thread: the zygote dies with the
    thread that started it.)  Nothing happens with a custom ``factory``."""
    global _worker
    _init_process(factory)
    if factory is not None or default_worker_factory is not _DEFAULT_FACTORY:
        return
    with _worker_lock:
        if _worker is None:
            from multiprocessing.util import Finalize

            _one_thread()
            _worker = default_worker_factory().start(isolated=isolated)
            Finalize(None, close_worker, exitpriority=50)


def run_task(task: Task, factory: Callable | None = None) -> Outcome:
    """Grade one submission with this process's worker and build its feedback."""
    from grader import feedback

    if factory is not None and _factory is None:
        _init_process(factory)
    try:
        worker = _get_worker()
        # (isolated=True is every worker's default; custom workers need not know it)
        unsafe = {} if task.isolated else {"isolated": False}
        result = worker.grade(task.source_path, task.submission_path, assignment=task.assignment,
                              student=task.student, limits=task.limits, **unsafe)
        source_nb = json.loads(Path(task.source_path).read_text(encoding="utf-8"))
        try:
            submission_nb = json.loads(Path(task.submission_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            submission_nb = None
        autograded, page, notes = feedback.build(result, source_nb, submission_nb)
        return Outcome(task, result, autograded, page, tuple(notes))
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001  (SystemExit, RecursionError, ...)
        return Outcome(task, grader_error=f"{type(error).__name__}: {error}\n"
                                          + traceback.format_exc(limit=8))


def _outcome(future, task: Task) -> Outcome:
    """The future's outcome, or a grader error when its worker process died."""
    try:
        return future.result()
    except Exception as error:  # BrokenProcessPool, distributed's KilledWorker, ...
        return Outcome(task, grader_error=f"worker failed: {type(error).__name__}: {error}")


def run_serial(tasks: list[Task], factory: Callable | None = None) -> Iterator[Outcome]:
    """Grade in this process, one after the other."""
    _init_process(factory)
    try:
        for task in tasks:
            yield run_task(task)
    finally:
        close_worker()


class _PoolRun:
    """The outcomes of :func:`run_pool`: the pool starts and every task is submitted at once
    (the workers warm up and grade while the caller does other work); iterating yields the
    outcomes as they finish, ``close()`` stops the workers early."""

    def __init__(self, tasks: list[Task], workers: int, factory: Callable | None):
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                         initializer=_init_process, initargs=(factory,))
        self._done = False
        try:
            self._futures = {self._pool.submit(run_task, task): task for task in tasks}
        except BaseException:
            self.close()
            raise
        self._pending = None

    def __iter__(self):
        return self

    def __next__(self) -> Outcome:
        if self._done:
            raise StopIteration
        if self._pending is None:
            self._pending = as_completed(self._futures)
        try:
            future = next(self._pending)
        except StopIteration:
            self._done = True
            self._pool.shutdown(wait=True)
            raise
        except BaseException:
            self.close()
            raise
        return _outcome(future, self._futures[future])

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        for future in getattr(self, "_futures", {}):
            future.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=True)


def run_pool(tasks: list[Task], workers: int, factory: Callable | None = None) -> Iterator[Outcome]:
    """Grade in ``workers`` processes (started with ``spawn``: no inherited threads or locks).

    The tasks are submitted before this returns (see :class:`_PoolRun`)."""
    return _PoolRun(tasks, workers, factory)


def run_dask(tasks: list[Task], scheduler: str, factory: Callable | None = None) -> Iterator[Outcome]:
    """Grade on a Dask cluster: one task per submission, one GradingWorker per worker process."""
    from distributed import Client, as_completed as dask_completed

    with Client(scheduler) as client:
        futures = [client.submit(run_task, task, factory, pure=False,
                                 key=f"grade-{task.assignment}-{task.student}-{task.submission_sha256[:12]}")
                   for task in tasks]
        task_of = {future.key: task for future, task in zip(futures, tasks)}
        try:
            for future in dask_completed(futures):
                yield _outcome(future, task_of[future.key])
        finally:
            client.cancel(futures)
