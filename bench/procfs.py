"""What ``/proc`` tells of a server's processes: peak RSS, CPU seconds, page faults."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import CLK_TCK, KiB
from bench.servers import Server


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_times(pid: int) -> tuple[float, float, int]:
    """User and system CPU seconds of a process (all its threads), and its minor page
    faults: a count that machine noise does not change, unlike the seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0, 0
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK, int(fields[7])


def reset_peak(pid: int) -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except (FileNotFoundError, ProcessLookupError):
        pass


@dataclass
class Usage:
    """What each serving process of a server did during one run."""

    peak_kib: dict[int, int]
    cpu_s: dict[int, float]
    user_s: dict[int, float]
    faults: dict[int, int]

    @property
    def serving_pid(self) -> int:
        return max(self.cpu_s, key=lambda pid: self.cpu_s[pid])

    @property
    def serving_peak_mib(self) -> float:
        return self.peak_kib[self.serving_pid] / KiB

    @property
    def total_cpu_s(self) -> float:
        return sum(self.cpu_s.values())

    @property
    def total_user_s(self) -> float:
        return sum(self.user_s.values())

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())


@contextmanager
def watching(server: Server) -> Iterator[list[Usage]]:
    """Reset the peak RSS of ``server``'s processes; on exit, append their :class:`Usage`."""
    pids = server.pids()
    out: list[Usage] = []
    for pid in pids:
        reset_peak(pid)
    before = {pid: cpu_times(pid) for pid in pids}
    yield out
    after = {pid: cpu_times(pid) for pid in pids}
    out.append(Usage({pid: proc_status(pid, "VmHWM") for pid in pids},
                     {pid: after[pid][0] + after[pid][1] - before[pid][0] - before[pid][1]
                      for pid in pids},
                     {pid: after[pid][0] - before[pid][0] for pid in pids},
                     {pid: after[pid][2] - before[pid][2] for pid in pids}))
