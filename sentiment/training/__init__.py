"""The recipe that builds the default sentiment model from corpora shipped on PyPI."""
