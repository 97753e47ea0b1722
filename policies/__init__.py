"""The usage-policy engine (ODRL 2.2): pure, no IO, no FastAPI.

Not built yet: this package arrives with issue #4 (see the README's status table).
"""
