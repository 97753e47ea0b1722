"""The ``sluis`` command line: one typer app with a sub-app per domain."""
