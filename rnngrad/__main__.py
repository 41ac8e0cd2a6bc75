"""``python -m rnngrad``: the same as the ``rnngrad`` command."""

from rnngrad.cli import main

if __name__ == "__main__":
    main()
