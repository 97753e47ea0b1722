"""``make bench``: run every benchmark (the files one writes a temporary 1 GB file)."""

from bench import (
    audit_append,
    exchange,
    files_connector,
    front_door,
    http_limits,
    load,
    policy,
    token_check,
)

if __name__ == "__main__":
    front_door.main()
    token_check.main()
    policy.main()
    exchange.main()
    files_connector.main()
    http_limits.main()
    load.main([])
    audit_append.main([])
