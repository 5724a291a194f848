"""Real services the tests start on loopback (``redis-server``), and stop."""
