from csflow import action


@action("noop")
def noop() -> dict:
    return {}
