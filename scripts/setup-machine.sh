#!/usr/bin/env bash
# Prepare a Debian 12 machine, as root, for the toolkit and its lab: the system packages the lab
# needs, and the toolkit's virtual environment in .venv/ with the pinned dependencies.
# Safe to run again: it installs only what is missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

packages=(
    docker.io containerd docker-registry mmdebstrap skopeo openssh-client openssh-server
    python3 python3-venv ca-certificates
)

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-machine: run as root (the lab runs a Docker engine and builds root filesystems)" >&2
    exit 1
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query --show --showformat='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]})); then
    echo "setup-machine: installing ${missing[*]}"
    # Keep the packages' services from starting during the install: the lab starts the Docker
    # engine itself, with no bridge and no iptables rules.
    policy=/usr/sbin/policy-rc.d
    made_policy=no
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=yes
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    if [[ $made_policy == yes ]]; then
        rm -f "$policy"
    fi
else
    echo "setup-machine: system packages present"
fi

# The virtual environment, rebuilt only when the pinned requirements change.
stamp=.venv/.requirements.sha256
want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python ]]; then
    echo "setup-machine: creating .venv"
    python3 -m venv .venv
fi
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    echo "setup-machine: installing the pinned Python dependencies into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
    echo "$want" >"$stamp"
else
    echo "setup-machine: .venv up to date"
fi
