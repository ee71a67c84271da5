"""`python -m cli` is the `xinyi` command (tests use it without the console script)."""

from cli import main

main()
