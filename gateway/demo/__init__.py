"""The ``make demo`` walk-through (run as ``python -m gateway.demo``)."""
