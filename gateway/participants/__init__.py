"""The participant registry: organisations, their roles and status."""
