"""The ledger repository: every statement on the ledger's money - extensions' funds, holds, call
records, ledger entries and their chain head, the settings the hot paths read - behind one
named operation each. The services say what moves (services/holds.py, ledger.py, gate.py,
settlement.py, reservations.py); this package is the only place that says how, in SQL.

One way to run them: inside a unit of work of `UnitOfWorkFactory.run(work)` (storage/uow.py),
`work` a plain function of the sync Session that each operation takes first. Reads that lead
to no write (listing holds, a settled call's recorded cost) are `async` operations on an
`async with uow.read()` unit of work's session.

The sync operations run their statements through storage/_fast.py, private to this package: on
SQLite's ledger thread it executes them straight on the stdlib driver, some 30 µs of Python
less per statement than SQLAlchemy's own execution. The gate runs four or five statements per
authorization and is measured in hundreds of microseconds (docs/benchmarks.md, "Gate"), so
that saving is a large share of its latency; elsewhere (PostgreSQL) it is plain
`Connection.execute`. The statements are built once, at import, so each is compiled once.

One module per kind of row (extensions, holds, calls, entries, the webhook outbox, settings) on
what they share (base.py: the tables, a hold's open states, the funds formula); this package
re-exports every operation, so callers say `ledger_repo.take_hold(...)` whichever module
holds it.
"""

from coobill.storage.ledger_repo.base import FLAGGED, HELD, per_transaction
from coobill.storage.ledger_repo.calls import (
    record_call,
    recorded_costs,
    recorded_legs,
)
from coobill.storage.ledger_repo.entries import (
    append_entry,
    chain_head,
    has_entry,
    move_balance,
    move_head,
    references_among,
)
from coobill.storage.ledger_repo.extensions import (
    billing_of,
    extension_for_update,
    extension_for_update_now,
    gate_view,
    is_extension,
    low_balance_view,
    mark_low_balance,
    rearm_low_balance,
)
from coobill.storage.ledger_repo.holds import (
    PeriodCaps,
    channel_holds,
    close_hold,
    close_hold_by_token,
    flag_hold,
    holds_in,
    open_hold_of_channel,
    open_hold_tokens,
    open_holds_of_channel,
    shrink_hold,
    take_hold,
)
from coobill.storage.ledger_repo.outbox import add_event
from coobill.storage.ledger_repo.settings import settings_rows, settings_rows_of

__all__ = [
    "FLAGGED",
    "HELD",
    "PeriodCaps",
    "add_event",
    "append_entry",
    "billing_of",
    "chain_head",
    "channel_holds",
    "close_hold",
    "close_hold_by_token",
    "extension_for_update",
    "extension_for_update_now",
    "flag_hold",
    "gate_view",
    "has_entry",
    "holds_in",
    "is_extension",
    "low_balance_view",
    "mark_low_balance",
    "move_balance",
    "move_head",
    "open_hold_of_channel",
    "open_hold_tokens",
    "open_holds_of_channel",
    "per_transaction",
    "rearm_low_balance",
    "record_call",
    "recorded_costs",
    "recorded_legs",
    "references_among",
    "settings_rows",
    "settings_rows_of",
    "shrink_hold",
    "take_hold",
]
