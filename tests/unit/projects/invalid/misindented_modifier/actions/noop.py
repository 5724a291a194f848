from csflow.engine import action


@action("noop")
def noop() -> dict:
    return {}
