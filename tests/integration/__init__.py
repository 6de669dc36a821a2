"""Integration tests against the real local servers (`make test` starts them)."""

import sys

from clickstream_spark.config import PROJECT_ROOT

# stack/stackctl.py imports stacklib from its own folder; the tests that drive the stack do too.
sys.path.insert(0, str(PROJECT_ROOT / "stack"))
