"""`python -m reputation`: the same command as the `reputation` script, for installs without scripts on PATH."""

from reputation.cli import main

if __name__ == "__main__":
    main()
