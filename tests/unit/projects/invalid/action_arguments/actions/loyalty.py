from csflow import action


@action("loyalty.points")
async def points(email: str, multiplier: int = 1) -> dict:
    return {"points": multiplier}
