"""Where a submission's code runs — the grader's pytest runs and notebook kernels: its workspace
is the only place it can write, /tmp is its own, it has no network, and its memory, processes
and CPU time are limited.

- bubblewrap (`bwrap`, Debian's `bubblewrap`), when it runs here: the whole file system
  read-only, the workspace (and the kernel's socket folder) writable, a fresh /tmp, new user,
  PID, IPC, network and UTS namespaces, and no capabilities;
- processes: where the grader may create a cgroup of the pids controller (as root, with
  /sys/fs/cgroup/pids writable), one per submission caps all its processes and threads
  together; otherwise RLIMIT_NPROC caps those of the grading user (root is exempt from it);
- always, per process: address space, CPU seconds and file size.

`warning()` says what is missing. Standalone (stdlib only) so that it also runs as a launcher,
which the notebooks' kernelspec calls to start a kernel inside the sandbox:

    python sandbox.py --limits MEM,NPROC,CPU [--cgroup DIR] -- bwrap … python -m ipykernel_launcher …
"""
from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """Per process: address space (bytes) and CPU seconds; processes and threads of one
    submission together (its cgroup) or of the grading user (RLIMIT_NPROC)."""
    memory: int = 8 << 30
    processes: int = 1024
    cpu_seconds: int = 3600

    def arg(self) -> str:
        return f"{self.memory},{self.processes},{self.cpu_seconds}"

    @classmethod
    def parse(cls, text: str) -> Limits:
        memory, processes, cpu = (int(v) for v in text.split(","))
        return cls(memory, processes, cpu)


PIDS = Path("/sys/fs/cgroup/pids")


def apply_limits(limits: Limits, group: str | None = None) -> None:
    """In the child, before it runs anything: join the submission's cgroup, then the limits."""
    if group:
        Path(group, "cgroup.procs").write_text(str(os.getpid()))
    for which, value in ((resource.RLIMIT_AS, limits.memory),
                         (resource.RLIMIT_CPU, limits.cpu_seconds),
                         (resource.RLIMIT_FSIZE, 1 << 30),
                         (resource.RLIMIT_CORE, 0),
                         *(() if group else ((resource.RLIMIT_NPROC, limits.processes),))):
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


@functools.cache
def find_bwrap() -> str | None:
    """A bwrap that works on this machine (it needs user namespaces), or None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--cap-drop", "ALL",
                                "--", "true"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if probe.returncode == 0 else None


def _pids_controller() -> Path | None:
    """The pids cgroup hierarchy, when this process may create groups in it."""
    if os.geteuid() != 0 or not os.access(PIDS, os.W_OK):
        return None
    probe = PIDS / f"scratchnet-probe-{os.getpid()}"
    try:
        probe.mkdir()
        ok = (probe / "pids.max").exists()
        probe.rmdir()
    except OSError:
        return None
    return PIDS if ok else None


class Sandbox:
    """How the grader runs a submission's processes (see the module's docstring)."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self.bwrap = find_bwrap()
        self.pids = _pids_controller()

    def warning(self) -> str | None:
        missing = []
        if self.bwrap is None:
            missing.append("bubblewrap (bwrap) is not available, so the students' code can write "
                           "wherever the grading user can and reach the network (Debian: apt-get "
                           "install bubblewrap)")
        if self.pids is None and os.geteuid() == 0:
            missing.append("no pids cgroup can be made and root is exempt from RLIMIT_NPROC, so "
                           "the number of processes is not limited")
        return ("warning: " + "; ".join(missing) + ". Memory and CPU limits still apply."
                if missing else None)

    def group(self, name: str) -> str | None:
        """A cgroup capping the processes of one submission (None where none can be made)."""
        if self.pids is None:
            return None
        path = self.pids / f"scratchnet-{name}-{os.getpid()}"
        try:
            path.mkdir(exist_ok=True)
            (path / "pids.max").write_text(str(self.limits.processes))
        except OSError:
            return None
        return str(path)

    @staticmethod
    def release(group: str | None) -> None:
        """Remove a submission's cgroup, once its processes are gone."""
        if group:
            try:
                os.rmdir(group)
            except OSError:
                pass

    def command(self, argv: Sequence[str], writable: Sequence[Path],
                env: dict[str, str] | None = None, *, hidden: Sequence[Path] = (),
                readable: Sequence[Path] = ()) -> list[str]:
        """argv, to run inside the sandbox: the file system read-only, /tmp and the `hidden`
        folders empty, the `readable` folders (under those, the Python it runs) visible again
        read-only, the `writable` ones (which must exist) writable; `env` added to its
        environment. Without bwrap: argv as it is."""
        if self.bwrap is None:
            return list(argv)
        mounts = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for folder in hidden:
            mounts += ["--tmpfs", str(folder)]
        for folder in readable:
            if Path(folder).exists():
                mounts += ["--ro-bind", str(folder), str(folder)]
        for folder in writable:
            mounts += ["--bind", str(folder), str(folder)]
        setenv = [a for k, v in (env or {}).items() for a in ("--setenv", k, v)]
        return [self.bwrap, *mounts, *setenv, "--unshare-all", "--cap-drop", "ALL",
                "--die-with-parent", "--chdir", str(writable[0]) if writable else "/", "--",
                *argv]

    def _limits(self, cpu_seconds: float | None) -> Limits:
        return self.limits if cpu_seconds is None else Limits(
            self.limits.memory, self.limits.processes, int(cpu_seconds) + 1)

    def launcher(self, argv: Sequence[str], writable: Sequence[Path],
                 cpu_seconds: float | None = None, group: str | None = None, *,
                 hidden: Sequence[Path] = (), readable: Sequence[Path] = (),
                 env: dict[str, str] | None = None) -> list[str]:
        """argv, to run in the sandbox (`command`): this file, run as a script, joins `group`,
        applies the limits (CPU: `cpu_seconds`) and execs the sandboxed command. A launcher
        rather than Popen's preexec_fn, which is unsafe in the grader's threads and which
        jupyter_client, starting a kernel, cannot pass."""
        return [sys.executable, str(Path(__file__).resolve()), "--limits",
                self._limits(cpu_seconds).arg(), *(["--cgroup", group] if group else []), "--",
                *self.command(argv, writable, env, hidden=hidden, readable=readable)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Apply the sandbox's limits, then exec a command.")
    parser.add_argument("--limits", required=True, type=Limits.parse)
    parser.add_argument("--cgroup", default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    apply_limits(args.limits, args.cgroup)
    # an interrupt (jupyter_client's SIGINT to the process group) is for the kernel, which sets
    # its own handler while it runs a cell; bwrap would die of it, and the kernel with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
