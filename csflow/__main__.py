"""``python -m csflow``: the csflow command."""

from csflow.cli.main import main

main()
