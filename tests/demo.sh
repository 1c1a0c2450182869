#!/usr/bin/env bash
# The main job in one command: install what is missing, build mpterm, bring the namespace lab up,
# push 64 MiB each way through the appliance on one MPTCP connection (DSS checksums on) from a
# real Linux MPTCP client to a real Linux TCP backend, and print the goodput and what was
# checked. Everything it creates is removed when it exits.
#
#   APPLIANCE=mpterm (default) | kernel-standin     TRANSFER_BYTES=N (default 64 MiB)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export APPLIANCE="${APPLIANCE:-mpterm}"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

bash tests/setup.sh
if [[ "$APPLIANCE" == mpterm ]]; then
    cargo build --release -p mpterm
fi
SCENARIOS='^(ping-csum1|c-bidir-csum1)$' exec bash tests/lab/scenarios.sh
