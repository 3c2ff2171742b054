"""One job at a time, in order, visible: the web app's queue.

Generation and comparison run in the worker thread (the models stay loaded between jobs); training runs the
real `stillmoving` commands as child processes, so cancelling is a signal: the command stops as it does on
Ctrl-C, and, since every file it writes is written under a temporary name and renamed, it leaves its last
complete checkpoint and no half-written file. The page reads progress and loss from the command's own
progress bar.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from stillmoving.errors import StillMovingError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
# A training verb's tqdm line: "spatial adapters:  40%|####  | 8/20 [00:02<00:03, 3.9it/s, loss=0.1234]".
TRAINING_BAR = re.compile(
    r"(?P<desc>spatial adapters|dreambooth|style lora):\s*\d+%\|[^|]*\|\s*(?P<step>\d+)/"
    r"(?P<total>\d+)(?:.*?loss=(?P<loss>[-+0-9.eEnaifNAIF]+))?"
)
STOP_GRACE_S = 30  # seconds a cancelled command has to stop after Ctrl-C before it is killed


@dataclass
class Job:
    """A unit of work the queue runs: its state, progress and result, read by the page."""

    id: int
    kind: str  # generate | compare | customize
    title: str  # one line the queue table shows
    run: Callable[[Job], object]  # does the work; its return value becomes `result`
    state: str = QUEUED
    phase: str = ""  # what the job does now, in words
    step: int = 0  # training steps done of `total`
    total: int = 0
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) as the progress bar shows them
    commands: list[str] = field(default_factory=list)  # the CLI commands this job runs, as a user would type them
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=40))  # last output lines
    result: object = None
    error: str = ""
    cancel_requested: bool = False
    finished: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen | None = None


class JobQueue:
    """FIFO of jobs run one at a time by a single worker thread."""

    def __init__(self):
        self._jobs: list[Job] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        threading.Thread(target=self._work, name="stillmoving-ui-jobs", daemon=True).start()

    def submit(self, kind: str, title: str, run: Callable[[Job], object]) -> Job:
        with self._lock:
            job = Job(next(self._ids), kind, title, run)
            self._jobs.append(job)
            self._wake.notify()
        return job

    def get(self, job_id: int) -> Job:
        with self._lock:
            found = [job for job in self._jobs if job.id == job_id]
        if not found:
            raise StillMovingError(f"no job {job_id}")
        return found[0]

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs)

    def ahead_of(self, job: Job) -> int:
        """Jobs that run before `job` (the running one included)."""
        with self._lock:
            return sum(1 for other in self._jobs if other.id < job.id and other.state in (QUEUED, RUNNING))

    def cancel(self, job_id: int) -> Job:
        """A queued job leaves the queue; a running one's command is stopped (training jobs only)."""
        job = self.get(job_id)
        with self._lock:
            if job.state == QUEUED:
                job.state = CANCELLED
                job.finished.set()
                return job
        if job.state == RUNNING:
            job.cancel_requested = True
            if job.process is not None and job.process.poll() is None:
                os.killpg(job.process.pid, signal.SIGINT)  # the command's own Ctrl-C path
        return job

    def _next(self) -> Job:
        with self._lock:
            while True:
                queued = [job for job in self._jobs if job.state == QUEUED]
                if queued:
                    queued[0].state = RUNNING
                    return queued[0]
                self._wake.wait()

    def _work(self) -> None:
        while True:
            job = self._next()
            try:
                job.result = job.run(job)
                job.state = CANCELLED if job.cancel_requested else DONE
            except StillMovingError as error:
                job.state, job.error = (CANCELLED, "cancelled") if job.cancel_requested else (FAILED, str(error))
            except Exception as error:  # a bug, not a bad input: the page gets one line, the console the trace
                traceback.print_exc()
                job.state, job.error = (
                    FAILED,
                    f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
                )
            job.finished.set()


def display(command: list[str]) -> str:
    """A command as the user would type it: `stillmoving ...` rather than `python -m stillmoving ...`."""
    return shlex.join(["stillmoving", *command])


def _default_ctrl_c() -> None:
    """In the child before it starts: Ctrl-C stops it even where the app inherited SIGINT ignored (a shell starts
    background jobs so, e.g. `stillmoving ui &`); cancelling sends SIGINT, and an ignored one would let the
    command run to its end and write its results."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_command(job: Job, command: list[str]) -> None:
    """Run `stillmoving <command>` as a child process, following its progress bar; stops when cancelled."""
    job.commands.append(display(command))
    job.phase = f"running {display(command[:2])}"
    job.step, job.total, job.losses = 0, 0, []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    job.process = subprocess.Popen(
        [sys.executable, "-m", "stillmoving", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        preexec_fn=_default_ctrl_c,
    )  # its own process group: Ctrl-C reaches it alone
    if job.cancel_requested:  # cancelled while the process started
        os.killpg(job.process.pid, signal.SIGINT)
    _follow(job, job.process.stdout)
    try:
        code = job.process.wait(timeout=STOP_GRACE_S if job.cancel_requested else None)
    except subprocess.TimeoutExpired:
        os.killpg(job.process.pid, signal.SIGKILL)
        code = job.process.wait()
    if job.cancel_requested:
        raise StillMovingError("cancelled")
    if code != 0:
        errors = [line for line in job.log if line.startswith("error:")]
        raise StillMovingError(
            errors[-1].removeprefix("error:").strip()
            if errors
            else f"{display(command[:2])} stopped with exit code {code}: {' / '.join(list(job.log)[-3:])}"
        )


def _follow(job: Job, stream) -> None:
    """Read the child's output as it comes; progress-bar redraws end with \\r, other lines with \\n."""
    pending = b""
    while chunk := os.read(stream.fileno(), 4096):
        pending += chunk
        *lines, pending = re.split(rb"[\r\n]", pending)
        for line in filter(None, (raw.decode(errors="replace").strip() for raw in lines)):
            _take(job, line)
    if pending.strip():
        _take(job, pending.decode(errors="replace").strip())


def _take(job: Job, line: str) -> None:
    bar = TRAINING_BAR.search(line)
    if bar is None:
        if "%|" not in line:  # sampling bars redraw too often to be worth keeping
            job.log.append(line)
        return
    job.phase = f"training ({bar['desc']})"
    job.step, job.total = int(bar["step"]), int(bar["total"])
    if bar["loss"]:
        try:
            loss = float(bar["loss"])
        except ValueError:
            return
        if not job.losses or job.losses[-1][0] != job.step:
            job.losses.append((job.step, loss))
