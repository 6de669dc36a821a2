"""Memory and CPU of a process tree (a spark-submit run), sampled from a background thread."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SAMPLE_S = 0.2
THREAD_SAMPLE_S = 1.0

# JVM threads by what they do, from their names (Linux truncates them to 15 characters).
_THREAD_KINDS = (
    ("JIT compilers", re.compile(r"CompilerThre")),
    ("executor tasks", re.compile(r"^Executor task")),
    ("Arrow feeders to Python", re.compile(r"^stdout writer")),
    ("GC", re.compile(r"^(GC Thread|G1 |VM Thread)")),
)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds of each live thread of ``pid``: tid -> (name, seconds), from /proc."""
    threads: dict[int, tuple[str, float]] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                threads[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS)
    return threads


@dataclass
class TreeSampler:
    """RSS of a process and all its descendants every SAMPLE_S, plus their CPU seconds, and
    every THREAD_SAMPLE_S the CPU of each JVM thread (a thread that ends between two samples
    loses at most that much)."""

    root_pid: int
    peak_rss: int = 0
    peak_jvm: int = 0
    peak_python: int = 0
    cpu_s: dict[int, float] = field(default_factory=dict)  # last seen per pid
    python_pids: set[int] = field(default_factory=set)
    jvm_threads: dict[int, tuple[str, float]] = field(default_factory=dict)  # last seen per tid
    threads_sampled_at: float = 0.0
    loads: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_S)

    def sample(self) -> None:
        try:
            # A new Process each time: the root execs (bash -> java) and psutil caches names.
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        jvm = python = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                    name = proc.name()
            except psutil.NoSuchProcess:
                continue
            self.cpu_s[proc.pid] = times.user + times.system
            # The JVM starts processes (the Python daemon, Hadoop's shell helpers) through vfork'd
            # children that show its whole RSS for an instant: count the largest java only, and
            # only the JVM and Python processes (the bash wrappers are a few MB).
            if name == "java":
                jvm = max(jvm, rss)
                if rss == jvm:
                    self._sample_threads(proc.pid)
            elif name.startswith("python"):
                python += rss
                self.python_pids.add(proc.pid)
        self._record(jvm, python)

    def _sample_threads(self, pid: int) -> None:
        if time.monotonic() - self.threads_sampled_at >= THREAD_SAMPLE_S:
            self.threads_sampled_at = time.monotonic()
            self.jvm_threads.update(thread_cpu(pid))

    def _record(self, jvm: int, python: int) -> None:
        if jvm + python > self.peak_rss:
            self.peak_rss, self.peak_jvm, self.peak_python = jvm + python, jvm, python
        self.loads.append(os.getloadavg()[0])

    @property
    def mean_load(self) -> float:
        """Mean 1-minute load while sampling (now, if nothing was sampled)."""
        return statistics.mean(self.loads) if self.loads else os.getloadavg()[0]

    def breakdown(self) -> str:
        """The job's CPU by JVM thread kind and in the Python processes, core-seconds."""
        kinds: collections.Counter[str] = collections.Counter()
        for name, seconds in self.jvm_threads.values():
            kind = next((k for k, pattern in _THREAD_KINDS if pattern.search(name)), "other")
            kinds[kind] += seconds
        python = sum(self.cpu_s.get(pid, 0.0) for pid in self.python_pids)
        parts = [f"{k} {kinds[k]:.0f}" for k, _ in _THREAD_KINDS] + [f"other {kinds['other']:.0f}"]
        return f"job's JVM threads: {', '.join(parts)}; Python processes {python:.0f} core-s"
