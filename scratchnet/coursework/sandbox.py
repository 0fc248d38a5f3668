"""Where a submission's code runs — the grader's pytest runs and notebook kernels: its workspace
is the only place it can write, /tmp is its own, it has no network, and its memory, processes
and CPU time are limited.

- bubblewrap (`bwrap`, Debian's `bubblewrap`), when it runs here: the whole file system
  read-only, the workspace (and the kernel's socket folder) writable, a fresh /tmp, and new
  user, PID, IPC, network and UTS namespaces;
- as root, the processes run as the user `nobody` (the workspace is handed to it), so that the
  process limit holds and no file of the instructor's is theirs to write, even without bwrap;
- always, resource limits: address space, processes of the user, CPU seconds, file size.

Without bwrap, `warning()` says what is missing. Standalone (stdlib only) so that it also runs
as a launcher, which the notebooks' kernelspec calls to start a kernel inside the sandbox:

    python sandbox.py --limits MEM,NPROC,CPU [--as-nobody] -- bwrap … python -m ipykernel_launcher …
"""
from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    """Per process: address space (bytes), CPU seconds; processes and threads of the sandbox's
    user, all of its processes together (counted only where the user is not root)."""
    memory: int = 8 << 30
    processes: int = 512
    cpu_seconds: int = 3600

    def arg(self) -> str:
        return f"{self.memory},{self.processes},{self.cpu_seconds}"

    @classmethod
    def parse(cls, text: str) -> Limits:
        memory, processes, cpu = (int(v) for v in text.split(","))
        return cls(memory, processes, cpu)


def apply_limits(limits: Limits, as_nobody: bool) -> None:
    """In the child, before it runs anything: the limits, then (as root) the user nobody."""
    for which, value in ((resource.RLIMIT_AS, limits.memory),
                         (resource.RLIMIT_CPU, limits.cpu_seconds),
                         (resource.RLIMIT_NPROC, limits.processes),
                         (resource.RLIMIT_FSIZE, 1 << 30),
                         (resource.RLIMIT_CORE, 0)):
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
    if as_nobody:
        _drop()


def _drop() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@functools.cache
def find_bwrap(as_nobody: bool = False) -> str | None:
    """A bwrap that works on this machine for the sandbox's user (it needs user namespaces),
    or None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--", "true"],
                               capture_output=True, timeout=20, check=False,
                               preexec_fn=_drop if as_nobody else None)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if probe.returncode == 0 else None


class Sandbox:
    """How the grader runs a submission's processes (see the module's docstring)."""

    def __init__(self, limits: Limits = Limits(), *, use_bwrap: bool = True) -> None:
        self.limits = limits
        self.as_nobody = os.geteuid() == 0
        self.bwrap = find_bwrap(self.as_nobody) if use_bwrap else None

    def warning(self) -> str | None:
        if self.bwrap is not None:
            return None
        writable = ("only what the user nobody may write" if self.as_nobody
                    else "every file the grading user may write, and the network")
        return ("warning: bubblewrap (bwrap) is not available here, so the students' code is not "
                f"sandboxed: it can reach {writable}; resource limits still apply. Install "
                "bubblewrap (Debian: apt-get install bubblewrap) to confine it to its workspace.")

    def command(self, argv: Sequence[str], writable: Sequence[Path]) -> list[str]:
        """argv, to run inside the sandbox with `writable` folders (which must exist)."""
        if self.bwrap is None:
            return list(argv)
        binds = [a for p in writable for a in ("--bind", str(p), str(p))]
        return [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--tmpfs", "/tmp", *binds, "--unshare-all", "--die-with-parent",
                "--chdir", str(writable[0]) if writable else "/", "--", *argv]

    def preexec(self, cpu_seconds: float | None = None) -> Callable[[], None]:
        """For subprocess.Popen(preexec_fn=…): the limits, and as root the user nobody."""
        limits = self.limits if cpu_seconds is None else Limits(
            self.limits.memory, self.limits.processes, int(cpu_seconds) + 1)
        return functools.partial(apply_limits, limits, self.as_nobody)

    def launcher(self, argv: Sequence[str], writable: Sequence[Path],
                 cpu_seconds: float | None = None) -> list[str]:
        """argv, for a program that cannot pass preexec_fn (jupyter_client starting a kernel):
        this file, run as a script, applies the limits and execs the sandboxed command."""
        limits = self.limits if cpu_seconds is None else Limits(
            self.limits.memory, self.limits.processes, int(cpu_seconds) + 1)
        return [sys.executable, str(Path(__file__).resolve()), "--limits", limits.arg(),
                *(["--as-nobody"] if self.as_nobody else []), "--",
                *self.command(argv, writable)]

    def hand_over(self, folder: Path) -> None:
        """Make `folder` (a workspace) the sandbox user's to write."""
        if not self.as_nobody:
            return
        for base, dirs, files in os.walk(folder):
            os.chown(base, NOBODY, NOBODY)
            for name in files:
                os.chown(os.path.join(base, name), NOBODY, NOBODY, follow_symlinks=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Apply the sandbox's limits, then exec a command.")
    parser.add_argument("--limits", required=True, type=Limits.parse)
    parser.add_argument("--as-nobody", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    apply_limits(args.limits, args.as_nobody)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
