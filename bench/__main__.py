"""``make bench``: run every benchmark."""

from bench import front_door

if __name__ == "__main__":
    front_door.main()
