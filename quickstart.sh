#!/usr/bin/env bash
# From a clone, on a fresh Debian 12 machine, as root: set everything up, bring the local lab up,
# and run the main job on it: deploy the registry, prepare the nodes, report per host.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$repo"

scripts/setup-machine.sh
scripts/lab.sh up

tasks="$(.venv/bin/inv --list 2>/dev/null || true)"
missing=()
for task in deploy-registry prepare-nodes nodes.report; do
    if ! grep -qE "^ +${task//./\\.}( |$)" <<<"$tasks"; then
        missing+=("$task")
    fi
done
if ((${#missing[@]})); then
    echo
    echo "The lab is up (see: .venv/bin/inv lab.status), but these tasks are not part of the"
    echo "toolkit yet: ${missing[*]}. Stopping here, before the main job."
    exit 3
fi

.venv/bin/inv deploy-registry
# The per-host report comes last even when preparing a node failed, so every host's state shows.
prepared=0
.venv/bin/inv prepare-nodes || prepared=$?
.venv/bin/inv nodes.report
exit "$prepared"
