"""Run one contender and report its wall time and the CPU of its whole process tree.

    python -m bench.nodeprep.measure --stdout FILE --stderr FILE --timeout S -- COMMAND...

The wrapper makes itself a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``), so a process
the tool leaves running (an ssh ControlPersist master) is re-parented to the wrapper rather than
to init. Wall time ends when the tool exits; then whatever it left behind is stopped by pid and
reaped, so its CPU counts, with the tool's own, in ``getrusage(RUSAGE_CHILDREN)``. The wrapper's
own start-up is outside both figures. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == me:
            found.append(int(entry.name))
    return found


def _reap_leftovers(grace: float = 3.0) -> int:
    """Stop (by pid) and reap every process re-parented to this wrapper; return how many."""
    stopped = 0
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return stopped
            if pid == 0:
                break
        left = _children()
        if not left:
            return stopped
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        for pid in left:
            try:
                os.kill(pid, sig)
                stopped += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdout", required=True)
    parser.add_argument("--stderr", required=True)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--cwd", default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    with open(args.stdout, "wb") as out, open(args.stderr, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=args.cwd
        )
        # A blocking wait: Popen.wait(timeout=...) polls every 50 ms, too coarse for the figures.
        expired = threading.Event()
        timer = threading.Timer(args.timeout, lambda: (expired.set(), proc.kill()))
        timer.start()
        code = proc.wait()
        timer.cancel()
        timed_out = expired.is_set()
        wall = time.perf_counter() - started
    leftovers = _reap_leftovers()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    json.dump(
        {
            "wall": wall,
            "cpu_user": usage.ru_utime,
            "cpu_sys": usage.ru_stime,
            "maxrss_mb": usage.ru_maxrss / 1024,
            "rc": code,
            "timed_out": timed_out,
            "leftovers": leftovers,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
