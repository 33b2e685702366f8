"""The package version, in a module of its own so that I/O can name it without importing
the package's solver."""

__version__ = "0.1.0"
