"""README's Prometheus scrape config and alert rules parse, and name only exported metrics."""

from __future__ import annotations

import re

import yaml

from clickstream_spark.config import PROJECT_ROOT
from clickstream_spark.ingest.prometheus import IngestMetrics

README = PROJECT_ROOT / "README.md"


def yaml_blocks() -> dict[str, dict]:
    """The README's YAML blocks, by their first-line comment (``# rules.yml``)."""
    blocks = re.findall(r"```yaml\n# (\S+)\n(.*?)```", README.read_text(), re.DOTALL)
    return {name: yaml.safe_load(body) for name, body in blocks}


def test_the_alert_rules_use_metrics_the_stream_exports() -> None:
    families = list(IngestMetrics().registry.collect())  # labelled gauges have no sample yet
    exported = {f.name for f in families} | {s.name for f in families for s in f.samples}
    blocks = yaml_blocks()
    rules = [rule for group in blocks["rules.yml"]["groups"] for rule in group["rules"]]
    jobs = [job["job_name"] for job in blocks["prometheus.yml"]["scrape_configs"]]

    assert [rule["alert"] for rule in rules] == [
        "ClickstreamNoBatch",
        "ClickstreamLagGrowing",
        "ClickstreamQuarantineShareHigh",
    ]
    for rule in rules:
        used = set(re.findall(r"clickstream_ingest_\w+", rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs
