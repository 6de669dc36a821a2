"""Clickstream analytics on Apache Spark: all the pipeline's logic lives in this package."""
