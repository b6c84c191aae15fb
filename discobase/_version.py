"""The package's version, a leaf every layer may read (the HTTP client's User-Agent)."""

__version__ = "0.1.0"
