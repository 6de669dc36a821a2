#!/usr/bin/env bash
# `make test`: every test, integration included, against the real local stack: the plaintext
# suite first, then the secure tests (marker `secure`) against the secured stack
# (`stackctl up --secure`: same servers, same ports). Arguments go to pytest; a `-m EXPR` among
# them narrows both passes. Each pass runs only if its tests are selected. On the way out the
# stack is left as it was found: servers this run started are stopped, servers that were running
# run again, in their mode.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
stack=(.venv/bin/python stack/stackctl.py)
pytest=(.venv/bin/python -m pytest)
services=(kafka cassandra elasticsearch)

# The caller's marker expression (pytest keeps only the last -m: it is combined with each pass's).
marker="" args=()
while (($#)); do
    case $1 in
        -m) marker=$2; shift 2 ;;
        -m*) marker=${1#-m}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
plaintext_marker="not secure${marker:+ and ($marker)}"
secure_marker="secure${marker:+ and ($marker)}"

mode_of() {  # secure, plaintext or down
    if "${stack[@]}" is-up --mode secure "$1" >/dev/null 2>&1; then echo secure
    elif "${stack[@]}" is-up "$1" >/dev/null 2>&1; then echo plaintext
    else echo down; fi
}

modes() { local service; for service in "${services[@]}"; do printf '%s ' "$(mode_of "$service")"; done; }

# up_as MODE: every server up in MODE (plaintext or secure), those in the other mode stopped first.
up_as() {
    local mode=$1 service to_stop=()
    for service in "${services[@]}"; do
        case $(mode_of "$service") in
            down | "$mode") ;;
            *) to_stop+=("$service") ;;
        esac
    done
    if ((${#to_stop[@]})); then "${stack[@]}" down "${to_stop[@]}"; fi
    # up starts what is down and bootstraps every server (topic, tables, template, users).
    "${stack[@]}" up $([[ $mode == secure ]] && echo --secure)
}

selects() {  # selects MARKER: the arguments select at least one test with MARKER
    "${pytest[@]}" --collect-only -q -m "$1" "${args[@]}" >/dev/null 2>&1
}

read -r -a before <<<"$(modes)"
restore() {
    local now plaintext=() secure=() i
    read -r -a now <<<"$(modes)"
    [[ ${now[*]} == "${before[*]}" ]] && return
    for i in "${!services[@]}"; do
        case ${before[$i]} in
            plaintext) plaintext+=("${services[$i]}") ;;
            secure) secure+=("${services[$i]}") ;;
        esac
    done
    echo "run-tests: leaving the stack as it was found (plaintext: ${plaintext[*]:-none}, secure: ${secure[*]:-none})"
    "${stack[@]}" down || true
    if ((${#plaintext[@]})); then "${stack[@]}" up "${plaintext[@]}" || true; fi
    if ((${#secure[@]})); then "${stack[@]}" up --secure "${secure[@]}" || true; fi
}
trap restore EXIT

plaintext_status=0
if selects "$plaintext_marker"; then
    up_as plaintext
    "${pytest[@]}" -m "$plaintext_marker" --durations=30 "${args[@]}" || plaintext_status=$?
fi

secure_status=0
if selects "$secure_marker"; then
    echo "run-tests: the secure tests, on the secured stack"
    started=$(date +%s)
    up_as secure
    "${pytest[@]}" -m "$secure_marker" --durations=0 "${args[@]}" || secure_status=$?
    echo "run-tests: the secure tests took $(($(date +%s) - started)) s (secured stack start included)"
fi

echo "run-tests: plaintext suite exit $plaintext_status, secure tests exit $secure_status"
((plaintext_status == 0 && secure_status == 0))
