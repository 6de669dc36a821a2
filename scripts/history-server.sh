#!/usr/bin/env bash
# `make history`: the Spark History Server over the jobs' event logs, on http://127.0.0.1:18080.
# Runs in the foreground; Ctrl-C stops it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
logs=$(.venv/bin/python -c 'from clickstream_spark.config import load_config; from clickstream_spark.session import event_log_conf; print(event_log_conf(load_config())["spark.eventLog.dir"])')
echo "Spark History Server on http://127.0.0.1:18080 reading $logs (Ctrl-C stops it)"
export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}  # the UI binds to it (all interfaces otherwise)
export SPARK_HISTORY_OPTS="-Dspark.history.fs.logDirectory=$logs -Dspark.history.ui.port=18080 ${SPARK_HISTORY_OPTS:-}"
exec .venv/bin/spark-class org.apache.spark.deploy.history.HistoryServer
