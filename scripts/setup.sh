#!/usr/bin/env bash
# `make setup`: the Python environment, the servers' artifacts and the Spark packages, each done
# only when missing or out of date, so a second run does nothing and says so.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
state=${CLICKSTREAM_STATE_DIR:-$root/.state}
# shellcheck source=../conf/versions.env
source conf/versions.env
started=$(date +%s)
did=()

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Java: the servers and Spark need exactly this major version.
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1 || true)
[[ -n $java_major ]] || die "java not found on PATH (Java $JAVA_MAJOR is required)"
[[ $java_major == "$JAVA_MAJOR" ]] || die "java on PATH is version $java_major; Java $JAVA_MAJOR is required (set PATH or JAVA_HOME)"

# uv: the machine's, or a pinned copy in the state folder.
uv=$(command -v uv || true)
if [[ -z $uv ]]; then
    uv=$state/tools/bin/uv
    if [[ ! -x $uv ]]; then
        python=$(command -v "python$PYTHON_VERSION" || true)
        [[ -n $python ]] || die "python$PYTHON_VERSION not found on PATH"
        say "installing uv $UV_VERSION into $state/tools"
        "$python" -m venv "$state/tools"
        "$state/tools/bin/pip" install --quiet "uv==$UV_VERSION"
        did+=(uv)
    fi
fi

# Python environment from the lock file; the stamp makes the no-op case instant.
stamp=.venv/.clickstream-synced
if [[ ! -f $stamp || uv.lock -nt $stamp || pyproject.toml -nt $stamp ]]; then
    say "creating the Python environment (.venv) from uv.lock"
    "$uv" sync --frozen --python "$PYTHON_VERSION" --quiet
    touch "$stamp"
    did+=(python)
fi

# Server artifacts (Kafka, Cassandra, Elasticsearch) from the registries; stackctl is idempotent.
fetch_out=$(.venv/bin/python stack/stackctl.py fetch) || die "fetching the servers failed"
if ! grep -q "nothing to do" <<<"$fetch_out"; then
    printf '%s\n' "$fetch_out"
    did+=(servers)
fi

# Spark connector packages: resolved once per set of versions with Ivy (into $state/ivy), their
# jars copied into $state/spark-jars, which every job then starts from (spark-submit.sh --jars).
jars_dir=$state/spark-jars
package_set=$(.venv/bin/python -c 'from clickstream_spark.packages import package_set; print(package_set())')
if [[ ! -f $jars_dir/.packages || $(cat "$jars_dir/.packages") != "$package_set" ]]; then
    say "resolving the Spark connector packages into $state/ivy"
    log=$state/logs/resolve-spark-packages.log
    mkdir -p "$state/logs"
    { read -r packages; read -r excludes; } < <(.venv/bin/python -m clickstream_spark.packages coordinates)
    if ! PYSPARK_PYTHON=$root/.venv/bin/python SPARK_CONF_DIR=$root/conf/spark \
        .venv/bin/spark-submit --master 'local[1]' --conf spark.ui.enabled=false \
        --packages "$packages" --exclude-packages "$excludes" \
        --conf "spark.jars.ivy=$state/ivy" --conf "spark.jars.ivySettings=$root/conf/ivysettings.xml" \
        scripts/resolve_spark_packages.py "$jars_dir" "$package_set" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "resolving the Spark packages failed (full log: $log)"
    fi
    grep 'spark packages ready' "$log" | sed 's/^/setup: /'
    did+=(spark-packages)
fi

# The JVM event parser (jvm/src, ingest/native.py): compiled against the installed pyspark's jars
# into the same folder, so that every job and the tests load it with the connectors.
native_jar=$jars_dir/clickstream-native.jar
native_sources=$(find jvm/src -name '*.java' | sort)
if [[ ! -f $native_jar ]] || [[ -n $(find jvm/src -name '*.java' -newer "$native_jar") ]]; then
    command -v javac >/dev/null || die "javac not found on PATH: a JDK $JAVA_MAJOR is required (it builds jvm/src)"
    say "building the JVM event parser into $native_jar"
    classes=$(mktemp -d)
    pyspark_jars=$(.venv/bin/python -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent / "jars")')
    # shellcheck disable=SC2086
    javac -nowarn --release "$JAVA_MAJOR" -encoding UTF-8 -cp "$pyspark_jars/*" -d "$classes" $native_sources \
        || die "compiling jvm/src failed"
    jar cf "$native_jar.tmp" -C "$classes" . && mv "$native_jar.tmp" "$native_jar"
    rm -rf "$classes"
    did+=(jvm-parser)
fi

elapsed=$(($(date +%s) - started))
if ((${#did[@]} == 0)); then
    say "nothing to do: Python environment, servers, Spark packages and the JVM event parser are up to date (${elapsed}s)"
else
    say "done in ${elapsed}s (${did[*]})"
fi
