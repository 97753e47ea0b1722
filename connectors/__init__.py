"""Adapters to data sources (HTTP APIs, SQL databases, files) behind one async interface.

Not built yet: this package arrives with issue #6 (see the README's status table).
"""
