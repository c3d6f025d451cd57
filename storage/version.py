"""The one version string: pyproject reads it, the CLI prints it, the crawler's User-Agent carries it."""

__version__ = "0.2.0"
