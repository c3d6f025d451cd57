"""Past one machine: Redis carries the crawl frontier, review items and scores between workers.

``streams`` is the small library every Redis part uses (connection with retry, stream and
group names, consumer-group reads, re-claiming, acknowledgement, dead letters, heartbeats).
Crawl workers, scoring workers and the single writer (``reputation ingest``) build on it;
SQLite stays the system of record and is written by the writer alone.
"""
