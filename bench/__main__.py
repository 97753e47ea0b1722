"""``make bench``: run every benchmark."""

from bench import front_door, token_check

if __name__ == "__main__":
    front_door.main()
    token_check.main()
