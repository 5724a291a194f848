from csflow.engine import action


@action("lookup")
def lookup(email: str) -> dict:
    return {}
