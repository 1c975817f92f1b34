"""Memory (RSS) and CPU time of named processes, from Linux's ``/proc``.

Two small files per process are enough (``status`` for ``VmRSS``, ``stat`` for user + system
time), so the load test needs no extra dependency; a process that has gone reads as None.
"""

import time
from dataclasses import dataclass
from pathlib import Path

from load.bench_engine_service import process_cpu_seconds
from load.bench_gateway import machine_cpu_seconds

KIB = 1024
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` now (``VmRSS``), None if it is gone or has none (a zombie)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    return None


@dataclass(frozen=True)
class ProcessReading:
    """One process at one moment: resident bytes and CPU seconds so far (None: gone)."""

    rss: int | None
    cpu_s: float | None


@dataclass(frozen=True)
class Sample:
    """Every named process at ``at_s`` (monotonic seconds), and the CPU seconds the whole
    machine has been busy (all cores): the machine is shared, and what others run is part of
    what a latency figure means."""

    at_s: float
    processes: dict[str, ProcessReading]
    machine_cpu_s: float = 0.0


class ProcessSampler:
    """Reads the named processes together; names are stable for a run (``engine``,
    ``client-0``, …) so that samples line up."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)

    def sample(self) -> Sample:
        return Sample(
            time.monotonic(),
            {
                name: ProcessReading(rss_bytes(pid), process_cpu_seconds(pid))
                for name, pid in self.pids.items()
            },
            machine_cpu_seconds(),
        )
