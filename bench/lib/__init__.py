"""The parts of bench/ingest.py: sampling, CPU accounting, Spark job runs, profiles, consumers."""
