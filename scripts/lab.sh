#!/usr/bin/env bash
# Run a lab task (up, down, status) through Invoke when tasks.py offers it, else through
# `python -m fabfile.lab`, which runs the same functions. Used by quickstart.sh and .ci/run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

task="$1"
shift
if .venv/bin/inv --list 2>/dev/null | grep -qE "^ +lab\.${task}( |$)"; then
    exec .venv/bin/inv "lab.${task}" "$@"
fi
exec .venv/bin/python -m fabfile.lab "$task" "$@"
