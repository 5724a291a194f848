from csflow import action


@action("loyalty.points")
async def points() -> dict:
    return {"points": 1}
