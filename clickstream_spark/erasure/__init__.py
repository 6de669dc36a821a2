"""Erasure of a person's data (jobs/erase.py): events, quarantined messages, published results.

:mod:`.request` does the Cassandra side of one request, :mod:`.publish` re-publishes the windows
it changed through the aggregation's own path, and :mod:`.erased_users` keeps erased users out
of the stream afterwards.
"""
