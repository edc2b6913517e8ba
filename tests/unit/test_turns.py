"""The order in which transactions take SQLite's one connection: the worker's state writes first, then each
request's in the order the requests began, so that a burst of requests is answered one after another."""

from __future__ import annotations

import asyncio

from storage.turns import Turns, urgent


async def test_urgent_turns_go_first_then_the_task_that_first_asked_earliest() -> None:
    """A request that asks again for its next transaction goes before requests that began after it did, even
    those that have waited longer for this turn (in arrival order, a burst's requests interleave)."""
    turns = Turns(1)
    order: list[str] = []
    gates = {name: asyncio.Event() for name in ("old", "old again", "new")}

    async def take(name: str, hold: asyncio.Event | None = None) -> None:
        async with turns.turn():
            order.append(name)
            if hold is not None:
                await hold.wait()

    async def old() -> None:
        await take("old", gates["old"])
        await gates["old again"].wait()
        await take("old")

    async def worker_write() -> None:
        with urgent():
            await take("worker")

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(old())]
    await settle()
    tasks.append(asyncio.create_task(take("new", gates["new"])))
    await settle()
    gates["old"].set()  # old's first transaction ends; new's begins and holds
    await settle()
    tasks.append(asyncio.create_task(take("newer")))
    await settle()
    gates["old again"].set()  # old asks again, after newer
    await settle()
    tasks.append(asyncio.create_task(worker_write()))
    await settle()
    gates["new"].set()
    await asyncio.gather(*tasks)
    assert order == ["old", "new", "worker", "old", "newer"]


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    turns = Turns(1)
    release = asyncio.Event()
    entered: list[str] = []

    async def take(name: str) -> None:
        async with turns.turn():
            entered.append(name)
            await release.wait()

    holder = asyncio.create_task(take("holder"))
    await asyncio.sleep(0)
    gone = asyncio.create_task(take("gone"))
    after = asyncio.create_task(take("after"))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await asyncio.gather(holder, after)
    assert entered == ["holder", "after"] and gone.cancelled()


async def test_without_slots_nobody_waits() -> None:
    turns = Turns(None)
    async with turns.turn(), turns.turn():
        pass
