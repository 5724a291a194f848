"""The ``csflow`` command line."""
