#!/usr/bin/env bash
# `make demo`: the whole pipeline on the local stack, with progress at every step.
#   servers up -> a realistic day of clicks into Kafka -> stream to Cassandra -> aggregate to
#   Elasticsearch -> top URLs per country and top landing pages (with bounce rate), read back from
#   the index.
# DEMO_EVENTS, DEMO_DAY and DEMO_SEED change the size, the day and the generator seed (default:
# 200000 events, yesterday UTC, the current time). A day over a year back is quarantined as
# out_of_range:timestamp unless CLICKSTREAM_STREAM_MAX_EVENT_AGE_DAYS reaches it. SECURE=1: the
# secured stack, each program as its own user (the env files of .state/secure/).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
events=${DEMO_EVENTS:-200000}
day=${DEMO_DAY:-$(date -u -d yesterday +%Y-%m-%d)}
python=.venv/bin/python
started=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m (%ss)\n' "$*" "$(($(date +%s) - started))"; }
secure=${SECURE:-}
# as USER COMMAND...: run COMMAND as that user of the secured stack (plaintext: as is).
as() {
    local user=$1
    shift
    if [[ -n $secure ]]; then
        (set -a; . ".state/secure/$user.env"; set +a; "$@")
    else
        "$@"
    fi
}

step "1/5 local stack: Kafka, Cassandra, Elasticsearch${secure:+, secured}"
$python stack/stackctl.py up ${secure:+--secure}

step "2/5 generate $events click events for $day (UTC) into Kafka, 0.5% of them bad"
as generate $python -m clickstream_spark.tools.generate --day "$day" --events "$events" \
    --bad-fraction 0.005 --seed "${DEMO_SEED:-$(date +%s)}"

step "3/5 stream: Kafka -> Cassandra (--available-now: drain the topic, then stop)"
as stream ./spark-submit.sh jobs/stream.py --available-now

step "4/5 aggregate: the windows the stream changed -> Elasticsearch alias clickstream_index"
as aggregate ./spark-submit.sh jobs/aggregate.py

step "5/5 read back: top URLs per country and top landing pages for $day"
as admin $python -m clickstream_spark.tools.report --window day

cat <<EOT

Done in $(($(date +%s) - started))s. Where to look:
  Elasticsearch  curl 'http://127.0.0.1:9200/clickstream_index/_search?q=window:day&size=5&pretty'
                 secured: curl --cacert .state/secure/ca.pem -u elastic 'https://127.0.0.1:9200/...'
                 (the password: ES_PASSWORD in .state/secure/admin.env, every admin credential too)
  Report         make report: an HTML page with charts, and their PNGs, in .state/reports/
  Cassandra      clickstream.events, clickstream.quarantine (bad events and why), clickstream.changed_windows
  Spark UI       http://127.0.0.1:4040 while a job runs (named query "clickstream_ingest", job descriptions)
  Metrics        http://127.0.0.1:9464/metrics while the stream runs; clickstream.ingest_history
  History Server make history, then http://127.0.0.1:18080 (event logs in .state/spark-events)
  Server logs    make logs SERVICE=kafka|cassandra|elasticsearch      Stop: make down
EOT
