"""The container image: its builder (``make image``), a read-only runner and its tests."""
