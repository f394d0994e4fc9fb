"""The served sandbox's own cost while nothing happens: CPU and wake-ups of its process tree.

`python -m sandbox --serve` runs the demo and then keeps the simulators, the bus and the functions'
host waiting; once it says it is serving, the process tree's CPU time and context switches are read
from /proc before and after a quiet spell. Waiting without polling costs next to nothing; a loop that
polls shows as CPU and as wake-ups. Linux only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "Serving; press Ctrl+C to stop."


@dataclass(frozen=True)
class IdleResult:
    seconds: float
    cpu_seconds: float
    wakeups: int
    threads: int
    processes: int

    @property
    def share_of_core(self) -> float:
        return self.cpu_seconds / self.seconds

    @property
    def wakeups_per_second(self) -> float:
        return self.wakeups / self.seconds


def _tree(pid: int) -> list[int]:
    """The process and its descendants (the sandbox starts no children today; a future one counts)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            children = (task / "children").read_text().split()
            pending.extend(int(child) for child in children)
    return found


def _sample(pid: int) -> tuple[float, int, int]:
    """CPU seconds, context switches and threads of the process tree, read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu, switches, threads = 0.0, 0, 0
    for process in _tree(pid):
        # utime and stime are fields 14 and 15; the command name before them may hold spaces.
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        cpu += (int(fields[11]) + int(fields[12])) / ticks
        for task in Path(f"/proc/{process}/task").iterdir():
            threads += 1
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    switches += int(line.split()[1])
    return cpu, switches, threads


def run(seconds: float = 20.0, ready_timeout: float = 180.0) -> IdleResult:
    with tempfile.TemporaryDirectory() as work:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--serve", "--profile", str(Path(work) / "cli.env")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        ready = threading.Event()
        output: list[str] = []

        def read() -> None:  # keeps the pipe drained after start-up, so the sandbox never blocks on it
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line)
                if READY in line:
                    ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not ready.wait(ready_timeout):
                raise RuntimeError("the sandbox did not start serving:\n" + "".join(output[-40:]))
            time.sleep(2.0)  # the demo's last writes and commits settle
            cpu_before, switches_before, threads = _sample(process.pid)
            started = time.monotonic()
            time.sleep(seconds)
            cpu_after, switches_after, _ = _sample(process.pid)
            elapsed = time.monotonic() - started
            processes = len(_tree(process.pid))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(5)
    return IdleResult(elapsed, cpu_after - cpu_before, switches_after - switches_before, threads, processes)


if __name__ == "__main__":
    result = run(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)
    print(
        f"{result.share_of_core:.2%} of a core, {result.wakeups_per_second:.1f} wake-ups/s "
        f"({result.threads} threads, {result.processes} processes, {result.seconds:.0f} s)"
    )
