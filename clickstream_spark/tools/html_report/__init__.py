"""The HTML report: charts of the published results and of the stream's ingest history."""
