"""One module per CLI subcommand (see :mod:`slingbag.cli`)."""
