from csflow import action


@action("lookup")
def lookup(email: str) -> dict:
    return {}
