import asyncio

from spot_extender.assembly import build
from spot_extender.core.settings import Settings
from tests.perf.synthetic import populate


async def test_a_large_document_is_built_in_chunks_and_shared():
    parts = build(Settings())
    populate(parts.index, 200, 6000)  # 300 workloads
    turns = []

    async def ticker():
        while True:
            turns.append(len(turns))
            await asyncio.sleep(0)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    first, second = await asyncio.gather(parts.status.document(), parts.status.document())
    tick.cancel()
    assert len(first["workloads"]) == 300
    assert second["workloads"] is first["workloads"]  # the second request waited for the build and shared it
    assert len(turns) >= 3  # the event loop ran between chunks of the build
