#!/usr/bin/env bash
# `make history`: the Spark History Server over the jobs' event logs, on http://127.0.0.1:18080.
# Runs in the foreground; Ctrl-C stops it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
logs=$(.venv/bin/python -c 'from clickstream_spark.config import load_config; from clickstream_spark.session import event_log_conf; print(event_log_conf(load_config())["spark.eventLog.dir"])')
echo "Spark History Server on http://127.0.0.1:18080 reading $logs (Ctrl-C stops it)"
export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}  # the UI binds to it (all interfaces otherwise)
# The stream's event log rolls (clickstream_spark.session.stream_conf): the server compacts all
# but its 2 newest parts (finished jobs dropped), and deletes logs of applications that ended
# more than 30 days ago (the hourly aggregations). See README, "A stream that runs for months".
opts=(
    "-Dspark.history.fs.logDirectory=$logs"
    "-Dspark.history.ui.port=18080"
    "-Dspark.history.fs.eventLog.rolling.maxFilesToRetain=2"
    "-Dspark.history.fs.cleaner.enabled=true"
    "-Dspark.history.fs.cleaner.maxAge=30d"
)
export SPARK_HISTORY_OPTS="${opts[*]} ${SPARK_HISTORY_OPTS:-}"
# spark-class finds Spark through SPARK_HOME (else it asks the python3 on PATH, which may lack
# pyspark): the Spark inside the project's pyspark.
export SPARK_HOME=${SPARK_HOME:-$(.venv/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}
exec .venv/bin/spark-class org.apache.spark.deploy.history.HistoryServer
