"""Agreements: a consumer's access to a dataset for a purpose, under one policy version."""
