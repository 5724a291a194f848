"""csflow's engine: the flow language, loading, validation, expressions and the runner.

Not the public API: that is ``csflow`` (``from csflow import Project, action``). The engine
imports nothing from the adapters, the actions, the CLI or the channels; what it needs from
outside is declared in ``csflow.engine.ports``.
"""
