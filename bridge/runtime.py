"""The event loop the process runs on: uvloop where it is installed, else asyncio's own.

uvloop (libuv under the asyncio API) does the same work with less CPU: on the
end-to-end bench (`bench/e2e.py --n 1000`) the node used 9.2-9.9 ms of CPU per referral
on uvloop against 11.0 ms on the standard loop, and moved 80-85 referrals/s instead of
73-75. It is a dependency on Linux and macOS; elsewhere the standard loop runs the same
code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on uvloop when it can be imported."""
    try:
        import uvloop
    except ImportError:  # not packaged for this platform
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
