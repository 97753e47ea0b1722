"""``make bench``: run every benchmark (the files one writes a temporary 1 GB file)."""

from bench import (
    audit_append,
    console,
    exchange,
    files_connector,
    front_door,
    http_limits,
    jsonl,
    load,
    policy,
    private_aggregates,
    token_check,
)

if __name__ == "__main__":
    front_door.main()
    token_check.main()
    policy.main()
    exchange.main()
    files_connector.main()
    jsonl.main()
    http_limits.main()
    load.main([])
    private_aggregates.main([])
    console.main([])
    audit_append.main([])
