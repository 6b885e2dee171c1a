"""``python -m fabfile.lab up|down|status``: the lab's tasks without Invoke's task tree.

The same functions as ``inv lab.up``, ``inv lab.down`` and ``inv lab.status``, for scripts that
run before the task tree is importable.
"""

from __future__ import annotations

import argparse
import sys

from invoke.context import Context
from invoke.exceptions import Exit

from fabfile.lab import tasks


def main(argv: list[str]) -> int:
    """Parse ``argv`` and run the chosen lab task; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fabfile.lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help=tasks.up.__doc__)
    down = commands.add_parser("down", help=tasks.down.__doc__)
    down.add_argument("--purge", action="store_true", help="also remove images and cache")
    status = commands.add_parser("status", help=tasks.status.__doc__)
    status.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args(argv)

    context = Context()
    try:
        if args.command == "up":
            tasks.up(context)
        elif args.command == "down":
            tasks.down(context, purge=args.purge)
        else:
            tasks.status(context, json=args.json)
    except Exit as exc:
        print(exc.message, file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
