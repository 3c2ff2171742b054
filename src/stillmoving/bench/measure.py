"""How the bench measures: peak memory, FLOPs, and step times taken in interleaved rounds.

On a shared or throttled machine a stage timed alone for a minute and another timed the next minute see
different machines; runs of the same stage differed by tens of percent on the 2-core CPU. So every stage
of a preset is timed in rounds, one step of each per round, and reported as the median over rounds: the
ratios compare steps taken seconds apart.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

# Dense bf16 tensor-core peaks (NVIDIA data sheets), matched in this order against the CUDA device name.
PEAK_BF16_FLOPS = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kb(key: str) -> int | None:
    """A `kB` line of /proc/self/status (VmRSS, VmHWM), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            line = next((line for line in status if line.startswith(key + ":")), None)
    except OSError:
        return None
    return int(line.split()[1]) if line else None


def _reset_rss_peak() -> bool:
    """Free what can be freed, then reset the kernel's peak-RSS mark (Linux >= 4.0); False if not possible."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the next stage starts from its real RSS
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def memory_measure(device: torch.device) -> str:
    if device.type == "cuda":
        return "CUDA max_memory_allocated during the stage, weights included (MiB)"
    return "peak resident memory during the stage above its level at the start (MiB, CPU)"


class PeakMemory:
    """Peak memory while the block runs, in MiB (see `memory_measure`)."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mb, self.start_kb = device, None, None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.resettable = _reset_rss_peak()
            self.start_kb = _status_kb("VmRSS") if self.resettable else self._lifetime_peak_kb()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        # Without a resettable mark, the growth of the process-lifetime peak: a lower bound of the stage's own.
        peak = _status_kb("VmHWM") if self.resettable else self._lifetime_peak_kb()
        if self.start_kb is not None and peak is not None:
            self.peak_mb = max(0, peak - self.start_kb) / 1024

    @staticmethod
    def _lifetime_peak_kb() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def peak_flops(device: torch.device) -> float | None:
    """The GPU's peak dense bf16 FLOP/s from PEAK_BF16_FLOPS, or None (CPU, unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


def count_flops(step: Callable[[], None]) -> float:
    """FLOPs of one call of `step`, forward and backward (matmuls, convolutions, attention); counted eagerly,
    since compiled kernels bypass the counter."""
    with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


@dataclass
class Contender:
    """One kind of step in a round: `enter` puts the shared model into its state (not timed), `step` runs it."""

    name: str
    enter: Callable[[], None]
    step: Callable[[], None]


@dataclass
class Measured:
    seconds: float | None  # median over rounds; None when the step did not fit
    peak_memory_mb: float | None
    flops: float | None
    first_step_seconds: float | None = None  # the warm-up step (first allocations, oneDNN kernel choice)
    error: str | None = None


def measure_interleaved(contenders: list[Contender], rounds: int, device: torch.device) -> dict[str, Measured]:
    """Per contender: one warm-up step and one FLOP-counted step under a peak-memory watch; then `rounds`
    rounds of one timed step of each, in turn. A contender that runs out of GPU memory is reported so and
    left out of the rounds."""
    results, live = {}, []
    for contender in contenders:
        try:
            contender.enter()
            with PeakMemory(device) as memory:
                start = time.perf_counter()
                contender.step()
                sync(device)
                first = time.perf_counter() - start
                flops = count_flops(contender.step)
                sync(device)
        except torch.cuda.OutOfMemoryError:  # the step does not fit: say so, go on with the next
            gc.collect()
            torch.cuda.empty_cache()
            results[contender.name] = Measured(None, None, None, error="out of memory")
            continue
        results[contender.name] = Measured(None, memory.peak_mb, flops, first)
        live.append(contender)
    times: dict[str, list[float]] = {c.name: [] for c in live}
    for _ in range(rounds):
        for contender in live:
            contender.enter()
            sync(device)
            start = time.perf_counter()
            contender.step()
            sync(device)
            times[contender.name].append(time.perf_counter() - start)
    for name, seconds in times.items():
        results[name].seconds = statistics.median(seconds)
    return results
