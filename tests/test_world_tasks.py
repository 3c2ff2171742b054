"""world/tasks.py: the demo's phases wait for the results they take, run in worker processes or here, and a
worker's error reaches the caller."""

import os
import sys

import pytest
import torch

from stillmoving.errors import StillMovingError
from stillmoving.world.tasks import Task, default_jobs, run_tasks


def draw(seed: int) -> float:
    return torch.rand(1, generator=torch.Generator().manual_seed(seed)).item()


def seeded_sum(seed: int, *inputs: float) -> float:
    """A task: its own seeded draw plus the results it waits for; it reports where and how it ran."""
    print(f"pid {os.getpid()} threads {torch.get_num_threads()}", file=sys.stderr)
    return draw(seed) + sum(inputs)


def refuse(_seed: int) -> None:
    raise StillMovingError("no such model: /nowhere")


def die(_seed: int) -> None:
    os._exit(1)  # as a worker killed for memory


GRAPH = [
    Task("a", seeded_sum, (1,)),
    Task("b", seeded_sum, (2,)),
    Task("a+b", seeded_sum, (3,), after=("a", "b")),
    Task("a+b, a", seeded_sum, (4,), after=("a+b", "a")),
]


def test_tasks_in_workers_give_what_they_give_here_each_after_its_inputs(tmp_path, capsys):
    here, here_seconds = run_tasks(GRAPH, 1, tmp_path / "unused")
    capsys.readouterr()
    there, seconds = run_tasks(GRAPH, 2, tmp_path / "logs")
    assert here["a+b"] == draw(3) + draw(1) + draw(2)
    assert here["a+b, a"] == draw(4) + here["a+b"] + draw(1)
    assert there == here and set(seconds) == set(here_seconds) == {t.name for t in GRAPH}
    assert not (tmp_path / "unused").exists()
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert sorted(logs) == ["a.log", "a_b.log", "a_b__a.log", "b.log"]
    threads = f"threads {max(1, (os.cpu_count() or 1) // 2)}"  # cores // jobs
    assert all(f"pid {os.getpid()}" not in text and threads in text for text in logs.values())
    err = capsys.readouterr().err
    assert err.index("demo: a+b ...") > max(err.index("demo: a: done"), err.index("demo: b: done"))


def test_a_workers_error_reaches_the_caller_and_nothing_after_it_runs(tmp_path):
    graph = [Task("bad", refuse, (0,)), Task("after bad", seeded_sum, (1,), after=("bad",))]
    with pytest.raises(StillMovingError, match="no such model: /nowhere"):
        run_tasks(graph, 2, tmp_path)
    assert not (tmp_path / "after_bad.log").exists()


def test_a_worker_that_dies_is_one_error_naming_its_task_and_log(tmp_path):
    with pytest.raises(StillMovingError, match=r"the worker running 'dying' died .*dying\.log"):
        run_tasks([Task("dying", die, (0,))], 2, tmp_path)


def test_a_graph_naming_an_unknown_repeated_or_later_task_is_refused(tmp_path):
    with pytest.raises(ValueError):
        run_tasks([Task("a", seeded_sum, (1,), after=("z",))], 1, tmp_path)
    with pytest.raises(ValueError):
        run_tasks([Task("a", seeded_sum, (1,)), Task("a", seeded_sum, (2,))], 1, tmp_path)
    cycle = [Task("a", seeded_sum, (1,), after=("b",)), Task("b", seeded_sum, (2,), after=("a",))]
    with pytest.raises(ValueError, match="listed before it"):  # a cycle, or an order one job could not run
        run_tasks(cycle, 2, tmp_path)


def test_one_worker_per_core_at_most_four():
    assert [default_jobs(n) for n in (1, 2, 3, 8)] == [1, 2, 3, 4]
