"""What start-up built is set aside from the garbage collector, once per process.

The imports alone (torch, transformers, diffusers, the platform clients) leave about half a million objects that
live as long as the process, and a full collection walks every one: 261-267 ms on this session's machine
(docs/benchmarks.md, "Telegram's calls on aiohttp; start-up set aside from the collector"), with the event loop and
the database thread stopped. Python runs one whenever the objects that survived younger collections grow by a
quarter of those it found last time, so the first comes soon after start-up: in six probes of this change it fell in
the first burst of 50 prompts each time. Frozen, those objects are never walked again; what the service makes
afterwards is collected as before.
"""

from __future__ import annotations

import functools
import gc


@functools.cache
def set_start_up_aside() -> None:
    """Collect start-up's garbage, then freeze what is left. Once per process: a second freeze would also freeze
    what is alive at that moment, and a process that runs services one after another (the tests) would keep each."""
    gc.collect()
    gc.freeze()
