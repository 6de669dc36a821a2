#!/usr/bin/env bash
# Run a job with the project's Spark: the connectors' jars that `make setup` resolved (--jars, no
# Ivy at submit time; spark-submit ships them to the executors), conf/spark/ (spark-defaults.conf,
# log4j2.properties), and the clickstream_spark package zipped for the executors.
# Every argument is passed through, so these behave the same way:
#   ./spark-submit.sh jobs/stream.py --available-now
#   ./spark-submit.sh --master spark://host:7077 jobs/stream.py
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${CLICKSTREAM_VENV:-$root/.venv}
state=${CLICKSTREAM_STATE_DIR:-$root/.state}
python=$venv/bin/python

if [[ ! -x $python || ! -x $venv/bin/spark-submit ]]; then
    echo "spark-submit.sh: no Python environment with pyspark at $venv; run 'make setup' first" >&2
    exit 1
fi

# A local run (or the loopback cluster of stack/cluster.py) keeps the driver, and its Spark UI,
# which shows the job's configuration, on 127.0.0.1. On a real cluster, set SPARK_LOCAL_IP yourself.
master=local
for ((i = 1; i <= $#; i++)); do
    case ${!i} in
        --master) next=$((i + 1)); master=${!next:-} ;;
        --master=*) master=${!i#--master=} ;;
    esac
done
if [[ -z ${SPARK_LOCAL_IP:-} && ($master == local* || $master =~ ://(127\.0\.0\.1|localhost): ) ]]; then
    export SPARK_LOCAL_IP=127.0.0.1
fi

# Python workers need the interpreter that has pandas and pyarrow. On a cluster whose nodes keep
# it elsewhere, export PYSPARK_PYTHON before calling this script.
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$python}
export PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$python}
export TZ=UTC
# spark-defaults.conf and log4j2.properties of the project.
export SPARK_CONF_DIR=$root/conf/spark
# Where the driver finds conf/ (it may import the package from the zip below).
export CLICKSTREAM_HOME=$root

# The jars folder can be copied to a host without internet (README, "Deploying on a cluster").
jars=$(cd "$root" && "$python" -m clickstream_spark.packages jars "${CLICKSTREAM_JARS_DIR:-$state/spark-jars}")

# Executors (and the driver, through --py-files) import the package from this zip, named by a
# hash of the sources: a running job keeps reading its own zip while another submit of changed
# code writes a new one beside it (a zip rewritten in place breaks a reader's later imports).
mkdir -p "$state/build"
zip=$(cd "$root" && "$python" - "$state/build" <<'PY'
import hashlib, os, pathlib, sys, tempfile, zipfile
sources = sorted(pathlib.Path("clickstream_spark").rglob("*.py"))
digest = hashlib.sha256()
for path in sources:
    digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
target = pathlib.Path(sys.argv[1]) / f"clickstream_spark-{digest.hexdigest()[:16]}.zip"
if not target.exists():
    fd, tmp = tempfile.mkstemp(dir=sys.argv[1], suffix=".zip.tmp")
    with os.fdopen(fd, "wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sources:
            zf.write(path)
    os.chmod(tmp, 0o644)  # as a plain new file would be (mkstemp makes it 0600)
    os.replace(tmp, target)  # whole or not at all
else:
    os.utime(target)  # the newest zip is the current code's (README's Airflow example)
print(target)
PY
)

exec "$venv/bin/spark-submit" \
    --jars "$jars" \
    --py-files "$zip" \
    "$@"
