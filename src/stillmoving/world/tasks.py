"""The demo's phases as tasks that wait for each other's results, run in worker processes.

On a CPU the world's models are too small for one process to keep two cores busy: 8 videos of the shipped T2V
take 10.9 s with two threads and 12.7 s with one, so two one-thread processes do 1.7 times the work of one
two-thread process. Every phase of the demo is a task naming the tasks whose results it takes (the Still-Moving
phase of a customization waits for its customized T2I, nothing else), and a task starts as soon as a worker is
free and its inputs exist. Each task seeds its own randomness, so the results do not depend on the order the
tasks ran in or on the number of workers, only on the number of threads a worker has (floating-point sums).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillmoving.errors import StillMovingError


@dataclass(frozen=True)
class Task:
    name: str  # the phase's line on stderr, e.g. "[star] Still-Moving"
    fn: Callable[..., Any]  # a module-level function (a worker receives it pickled)
    args: tuple = ()
    after: tuple[str, ...] = ()  # tasks whose results follow `args`, in this order


def default_jobs(cpus: int | None = None) -> int:
    """One worker per core, at most 4: the demo's graph seldom has more than 4 tasks ready at once."""
    return max(1, min(4, cpus or os.cpu_count() or 1))


def say(line: str) -> None:
    print(f"demo: {line}", file=sys.stderr, flush=True)


def run_tasks(tasks: list[Task], jobs: int, logs: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """Every task's result and wall seconds, by name. With one job the tasks run here, in the listed order
    (which must list a task after those it waits for), their progress bars below their line; with more, in
    `jobs` processes of `cpus // jobs` threads each, each task's own output in `logs`/<name>.log."""
    names = [t.name for t in tasks]
    if len(set(names)) != len(names) or any(a not in names[:i] for i, t in enumerate(tasks) for a in t.after):
        raise ValueError("task names must be unique and every `after` must name a task listed before it")
    if jobs <= 1:
        return _run_here(tasks)
    return _run_in_workers(tasks, jobs, logs)


def _run_here(tasks: list[Task]) -> tuple[dict[str, Any], dict[str, float]]:
    results, seconds = {}, {}
    for task in tasks:
        say(f"{task.name} ...")
        results[task.name], seconds[task.name] = _timed(task.fn, (*task.args, *(results[a] for a in task.after)))
        say(f"{task.name}: done in {seconds[task.name]:.0f} s")
    return results, seconds


def _run_in_workers(tasks: list[Task], jobs: int, logs: Path) -> tuple[dict[str, Any], dict[str, float]]:
    logs.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    results, seconds, waiting = {}, {}, list(tasks)
    running: dict[Future, Task] = {}
    context = multiprocessing.get_context("spawn")  # fork would copy the parent's OpenMP threads into each child
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(threads,)) as pool:
        try:
            while waiting or running:
                ready = [t for t in waiting if all(a in results for a in t.after)]
                for task in ready[: jobs - len(running)]:  # a line says a phase starts, so none waits in a queue
                    waiting.remove(task)
                    say(f"{task.name} ...")
                    inputs = (*task.args, *(results[a] for a in task.after))
                    running[pool.submit(_logged, _log(logs, task), task.fn, inputs)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    results[task.name], seconds[task.name] = _outcome(future, task, logs)
                    say(f"{task.name}: done in {seconds[task.name]:.0f} s")
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results, seconds


def _outcome(future: Future, task: Task, logs: Path) -> tuple[Any, float]:
    """The task's result, or its error with where its output went; a worker that died (killed for memory, say)
    is one error line, not a traceback of the pool."""
    log = _log(logs, task)
    try:
        return future.result()
    except BrokenProcessPool as error:
        raise StillMovingError(f"the worker running '{task.name}' died ({error}); its output: {log}") from error
    except BaseException:
        say(f"{task.name}: failed; its output: {log}")
        raise


def _start_worker(threads: int) -> None:
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(threads)
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def _timed(fn: Callable[..., Any], args: tuple) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, round(time.perf_counter() - start, 1)


def _logged(log: Path, fn: Callable[..., Any], args: tuple) -> tuple[Any, float]:
    """In a worker: the task, its progress bars and warnings written to `log` instead of the shared terminal."""
    with open(log, "w") as out, redirect_stderr(out), redirect_stdout(out):
        return _timed(fn, args)


def _log(logs: Path, task: Task) -> Path:
    return logs / ("".join(c if c.isalnum() or c in "-_." else "_" for c in task.name).strip("_") + ".log")
