"""The student's code as the task tests see it: functions that return data.

    student = Student.from_environment()
    y = student.call("T01.1", "t01_modules", "linear_forward", case)   # a tensor

runs `probes.t01_modules.linear_forward(case)` — instructor's code in `tests/tasks/probes/`
that builds the student's layers and calls them — and returns what it returned, copied through
`torch.save`/`torch.load(weights_only=True)`: tensors, numbers, strings and containers, never an
object of the student's. An exception in the student's code comes back as `CheckFailed` with the
call, the line that raised and the task's hint. Whether a value is right is decided by the test,
in its own process, against its own reference.

Two ways to run the probes:
- `InProcess` (a student running `pytest -m T04` in their checkout): in this process, under the
  purity guard;
- `Worker` (the grader): in a process of the grader's sandbox, the only one that imports the
  submission's package (`grade_runtime.serve`), restarted after a crash or a time-out, which
  fail the call in progress and nothing else. Its replies are data: nothing the submission does
  reaches the process that decides.
"""
from __future__ import annotations

import functools
import json
import os
import select
import signal
import subprocess
import time
from typing import Any

from . import grade_runtime
from .checks import CheckFailed

__all__ = ["InProcess", "Probes", "Student", "Worker"]


class Student:
    """Calls probe functions on the student's code; → their values."""

    def call(self, task: str, module: str, function: str, *args: Any, **kwargs: Any) -> Any:
        return self._value(self._reply(task, module, function, args, kwargs))

    def _reply(self, task: str, module: str, function: str, args: tuple, kwargs: dict) -> object:
        raise NotImplementedError

    def close(self) -> None:
        """Stop what runs the student's code."""

    @staticmethod
    def _value(reply: object) -> Any:
        if not isinstance(reply, dict) or not ({"value"} == set(reply) or
                                               ({"error"} == set(reply)
                                                and isinstance(reply["error"], str))):
            raise CheckFailed(f"the student's side answered with something that is not a reply "
                              f"({type(reply).__name__})")
        if "error" in reply:
            raise CheckFailed(reply["error"])
        return reply["value"]

    @staticmethod
    def from_environment() -> Student:
        """`Worker` when the grader says how to start one ($SCRATCHNET_GRADE_WORKER), else
        `InProcess`."""
        spec = os.environ.get(grade_runtime.WORKER_ENV)
        return Worker(json.loads(spec)) if spec else InProcess()


class Probes:
    """`probes.name(*args, **kwargs)`: tests/tasks/probes/<module>.py's `name`, run by `code` as
    task `task`'s code; → the data it returned (the task tests' `student` fixture)."""

    def __init__(self, code: Student, task: str, module: str) -> None:
        self._code, self._task, self._module = code, task, module

    def __repr__(self) -> str:
        return f"<the student's code, through probes/{self._module}.py, as {self._task}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self._code.call, self._task, self._module, name)


class InProcess(Student):
    """The probes run here, on copies of the arguments; their values are copied back as the
    worker's are, so that a test sees the same data either way."""

    def _reply(self, task: str, module: str, function: str, args: tuple, kwargs: dict) -> object:
        copy = grade_runtime.decode(grade_runtime.encode((args, kwargs)))
        reply = grade_runtime.checked(grade_runtime.call_probe(task, module, function, *copy))
        return grade_runtime.decode(grade_runtime.encode(reply))


class Worker(Student):
    """The probes run in a process started by `spec["argv"]` (cwd `spec["cwd"]`, environment
    `spec["env"]`, stderr appended to `spec["log"]`); each call waits `spec["timeout"]` seconds
    at most. Where it came from (`import scratchnet`) is recorded in `spec["results"]`."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.process: subprocess.Popen | None = None
        self.error: str | None = None      # why the submission's package cannot be used: for good
        self.starts = 0

    def _start(self) -> None:
        self.starts += 1
        with open(self.spec["log"], "ab") as log:
            self.process = subprocess.Popen(
                self.spec["argv"], cwd=self.spec["cwd"], env=self.spec["env"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True)
        try:
            hello = self._receive(float(self.spec.get("start_timeout", 120)), "starting")
        except BaseException:
            self.error = ("the process running the student's code was still starting (importing "
                          "scratchnet) when the test's time was up")
            raise
        if not isinstance(hello, dict):
            hello = {"error": "the process running the student's code did not start properly"}
        origin, error = hello.get("origin"), hello.get("error")
        root = self.spec.get("root")
        if origin and root and not grade_runtime._inside(str(origin), root):
            error = f"`import scratchnet` found {origin}, not the submission's package in {root}"
        self.error = str(error) if error else None
        if self.starts == 1:
            grade_runtime._write(self.spec.get("results"), {
                "event": "origin", "file": str(origin) if origin else None, "error": self.error,
                "executable": str(hello.get("executable", ""))})

    def _reply(self, task: str, module: str, function: str, args: tuple, kwargs: dict) -> object:
        if self.error is None and (self.process is None or self.process.poll() is not None):
            self.close()
            self._start()
        if self.error:
            return {"error": self.error}
        assert self.process is not None and self.process.stdin is not None
        try:
            grade_runtime.send(self.process.stdin, grade_runtime.encode({
                "task": task, "module": module, "function": function, "args": args,
                "kwargs": kwargs}))
        except (BrokenPipeError, OSError):
            return {"error": self._died("before it could be called")}
        return self._receive(float(self.spec["timeout"]), "running")

    def _receive(self, timeout: float, doing: str) -> object:
        """The next message, decoded; a time-out or an end of the stream stops the process and
        becomes an error reply."""
        deadline = time.monotonic() + timeout
        try:
            header = self._read(8, deadline)
            size = int.from_bytes(header, "little")
            if size > grade_runtime.MAX_MESSAGE:
                self.close()
                return {"error": f"the student's code returned {size / 2**20:.0f} MiB of data "
                                 f"(at most {grade_runtime.MAX_MESSAGE / 2**20:.0f} MiB)"}
            data = self._read(size, deadline)
        except TimeoutError:
            self.close()
            return {"error": f"the student's code ran over {timeout:g} s while {doing} and was "
                             f"stopped"}
        except EOFError:
            return {"error": self._died(f"while {doing}")}
        except BaseException:
            self.close()            # a test's own time limit: the reply would come too late
            raise
        try:
            return grade_runtime.decode(data)
        except Exception as e:  # noqa: BLE001 - not data: refused, whatever it was
            return {"error": f"the student's side sent something that is not data "
                             f"({type(e).__name__})"}

    def _read(self, n: int, deadline: float) -> bytes:
        assert self.process is not None and self.process.stdout is not None
        fd, chunks, left = self.process.stdout.fileno(), [], n
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                continue
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _died(self, when: str) -> str:
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.close()
        how = (f"killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
               and -code in signal.Signals._value2member_map_ else f"exit status {code}")
        return f"the process running the student's code ended {when} ({how})"

    def close(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
