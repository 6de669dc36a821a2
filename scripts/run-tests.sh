#!/usr/bin/env bash
# `make test`: every test, integration included, against the real local stack.
# Starts the servers that are down, and on the way out stops exactly those it started.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
stack=(.venv/bin/python stack/stackctl.py)
services=(kafka cassandra elasticsearch)

started=()
for service in "${services[@]}"; do
    if ! "${stack[@]}" status "$service" >/dev/null 2>&1; then
        started+=("$service")
    fi
done

stop_started() {
    if ((${#started[@]})); then
        echo "run-tests: stopping what this run started: ${started[*]}"
        "${stack[@]}" down "${started[@]}" || true
    fi
}
trap stop_started EXIT

if ((${#started[@]})); then
    echo "run-tests: starting ${started[*]}"
    "${stack[@]}" up "${started[@]}"
else
    # Already running: still make sure the topic, tables and template exist.
    "${stack[@]}" bootstrap
fi

.venv/bin/python -m pytest "$@"
