"""Guarantee mutants: named one-line bugs in the security core, each killed by named tests."""
