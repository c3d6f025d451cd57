"""The bottom layer: the SQLite file (connection, schema, migrations), errors and the version.

Imports nothing of the project's own, so every other package may build on it.
"""
