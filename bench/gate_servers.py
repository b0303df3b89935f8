"""The servers the gate benchmarks measure, each run in a process of its own:
`bare` reads the env block and sends the same commands with no logic (the floor);
`coobill` is the real gate on a SQLite ledger with a funded, billed extension and a rate;
`coobill-pg URL SCHEMA PBX` is the real gate on a PostgreSQL ledger bench_gate_pg.py has
prepared (one of several daemons sharing it, PBX its [pbx] name); `capped` is `coobill` with
every spend cap of the extension set (none of them reached).

Each prints its port, then serves until killed."""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
from decimal import Decimal
from functools import partial
from pathlib import Path

COMMANDS = [
    'SET VARIABLE COOBILL_RESULT "ALLOW"', 'SET VARIABLE COOBILL_REASON "ok"',
    'SET VARIABLE COOBILL_LIMIT "1800"', 'SET VARIABLE COOBILL_DIAL_OPTIONS "L(1800000)"',
    'EXEC Set "TIMEOUT(absolute)=1860"',
]


async def bare(port: int) -> None:
    async def conversation(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")
        for command in COMMANDS:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            await reader.readline()
        writer.close()

    server = await asyncio.start_server(conversation, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


async def coobill(port: int, caps: bool = False) -> None:
    import logging

    from coobill.agi.server import GateOptions, GateServer
    from coobill.bootstrap import bootstrap
    from coobill.config import Settings
    from coobill.services.balances import recharge
    from coobill.services.extensions import ExtensionChanges, set_extension
    from coobill.services.gate import authorize_call
    from coobill.services.rate_fields import check_rate_fields
    from coobill.services.rates import add_rate
    from coobill.storage import schema

    logging.disable(logging.INFO)  # one log line per decision is the daemon's; not measured
    tmp = tempfile.mkdtemp()
    # Every request holds funds and none is settled: a balance past the default ceiling.
    ctx = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{Path(tmp) / 'gate.db'}"},
                             billing={"max_balance": "100000000"}))
    await schema.upgrade(ctx.uow.engine)
    await set_extension(ctx, "100", ExtensionChanges(billing=True, credit_limit=Decimal("0")))
    await recharge(ctx, ["100"], "100000000")
    if caps:
        # Every cap set (issue 18), each far above what the run holds: the gate checks them
        # all, on the conditional update's capped path, and allows every call as before.
        await set_extension(ctx, "100", ExtensionChanges(
            cap_daily="90000000", cap_monthly="99000000", max_call_cost="1000",
            max_price_minute="10"))
    await add_rate(ctx, check_rate_fields(prefix="9", number_length=0, initial_cost="0.2",
                                          initial_seconds=0, rate="0.1", period_seconds=60,
                                          extensions="*"))
    gate = GateServer(partial(authorize_call, ctx), GateOptions(port=port))
    await gate.start()
    gc.freeze()  # as the daemon does once it is up
    print(gate.port, flush=True)
    await asyncio.Event().wait()


async def coobill_pg(url: str, schema_name: str, pbx: str) -> None:
    import logging

    from coobill.agi.server import GateOptions, GateServer
    from coobill.bootstrap import bootstrap
    from coobill.config import Settings
    from coobill.services.gate import authorize_call
    from coobill.storage.db import create_engine
    from coobill.storage.uow import UnitOfWorkFactory

    logging.disable(logging.INFO)
    engine = create_engine(url, connect_args={"server_settings": {"search_path": schema_name}})
    ctx = bootstrap(Settings(database={"url": url}, pbx={"name": pbx}),
                    uow=UnitOfWorkFactory(engine))
    gate = GateServer(partial(authorize_call, ctx), GateOptions(port=0))
    await gate.start()
    gc.freeze()
    print(gate.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    if sys.argv[1] == "coobill-pg":
        asyncio.run(coobill_pg(*sys.argv[2:5]))
    else:
        asyncio.run({"bare": bare, "coobill": coobill,
                     "capped": partial(coobill, caps=True)}[sys.argv[1]](0))
