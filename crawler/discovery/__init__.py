"""Discovery: which brands a vendor serves, read from its own pages (extraction apart from navigation).

``pages`` turns a page into evidence, ``candidates`` turns evidence into engagement candidates
with a sentence model handed in by the caller, ``names`` matches company names to the registry,
``launch`` runs the `discovery` spider in a child process.
"""
