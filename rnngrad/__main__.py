"""``python -m rnngrad``: the same as the ``rnngrad`` command."""

from .cli import main

if __name__ == "__main__":
    main()
