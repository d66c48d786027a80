"""Engines that run as child processes: start one that can be stopped like Ctrl-C, and follow
the log file it appends to."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType


def _default_sigint() -> None:
    """In the child before exec: a job started in the background (``cmd &`` in a script, CI,
    nohup) inherits SIGINT as ignored, and then the engine would never see a stop request."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class StoppableProcess:
    """A child process (stdout and stderr to a file) that is asked to stop with SIGINT, as
    Ctrl-C would, and terminated when it has not stopped ``grace_s`` seconds later.

    Use as a context manager; leaving the block with an exception other than an interruption
    terminates the child at once."""

    def __init__(self, args: list[str], cwd: Path, output: Path, grace_s: float = 60.0) -> None:
        self.args, self.cwd, self.output, self.grace_s = args, cwd, output, grace_s
        self.stop_requested_at: float | None = None

    def __enter__(self) -> StoppableProcess:
        self._out = open(self.output, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, OPENBLAS_NUM_THREADS="1"),
            preexec_fn=_default_sigint if os.name == "posix" else None,
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None and not issubclass(kind, (KeyboardInterrupt, SystemExit)):
            self._terminate()
        self._out.close()

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def running(self) -> bool:
        """Whether the child still runs; one asked to stop too long ago is terminated here."""
        if self.proc.poll() is None and self.stop_requested_at is not None:
            if time.monotonic() - self.stop_requested_at > self.grace_s:
                self._terminate()  # SIGINT was not enough: stop it for good
        return self.proc.poll() is None

    def request_stop(self) -> None:
        """Ask the child to stop (SIGINT) and return; ``running`` enforces the grace period."""
        if self.proc.poll() is None and self.stop_requested_at is None:
            self.proc.send_signal(signal.SIGINT)
            self.stop_requested_at = time.monotonic()

    def stop(self) -> None:
        """Ask the child to stop and wait for it, terminating it after the grace period."""
        self.request_stop()
        try:
            self.proc.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            self._terminate()

    def _terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=60)


class LogFollower:
    """The complete lines another process has appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.pending = path, 0, ""

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path) as fh:
            fh.seek(self.offset)
            chunk = fh.read()
            self.offset = fh.tell()
        lines = (self.pending + chunk).split("\n")
        self.pending = lines.pop()  # a line still being written
        return lines
