"""One module per command group beyond run/validate/graph/demo: each does ``@cli.command()``."""
