"""Peak memory of a measured process: its own VmHWM, never ``ru_maxrss``.

Across fork and exec Linux carries the parent's high-water mark into the child's
``ru_maxrss`` (and into what ``wait4`` reports for it): a child of a 300 MiB
parent reported 311 MiB there and 11 MiB as VmHWM. The benches' parents hold
the servers' clients and libraries, so ``ru_maxrss`` floored every child at the
parent's size. VmHWM (``/proc/PID/status``) is the child's own memory's peak.
"""

from __future__ import annotations

import contextlib
import resource
import threading
from pathlib import Path
from types import TracebackType


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """A live process's peak RSS in MiB (None once it is gone or a zombie)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return None


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB (ru_maxrss only where /proc is missing)."""
    own = vm_hwm_mib()
    # ru_maxrss is in KiB on Linux.
    return own if own is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakSampler:
    """Samples a child's VmHWM every 2 ms while it runs (VmHWM only grows, so the
    last sample before it exits is its peak, give or take its last 2 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            value = vm_hwm_mib(self.pid)
            if value is None:
                return
            self.peak_mib = max(self.peak_mib, value)
            self._stop.wait(0.002)
