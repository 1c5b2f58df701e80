"""Runs a script's async main against Temporal: the server's refusals, too, in one line."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from temporalio.service import RPCError

from errors import UserError
from terminal import finish


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    async def answered() -> int:
        try:
            return await main()
        except RPCError as err:
            raise UserError(f"the Temporal server said: {err.message}") from err

    finish(lambda: asyncio.run(answered()))
