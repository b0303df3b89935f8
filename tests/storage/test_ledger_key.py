"""The ledger key: outside the database, private whatever the umask, the same for every
process that opens the ledger, and refused when it is not the ledger's own."""

from __future__ import annotations

import multiprocessing
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from coobill.errors import ConfigurationError
from coobill.services.audit import audit
from coobill.services.balances import recharge
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, set_extension
from coobill.services.ledger_seal import open_ledger, seal_entries_from_before_the_seal
from coobill.storage.ledger_key import key_path, load_key
from coobill.storage.uow import UnitOfWorkFactory


class TestTheKeyFile:
    def test_it_sits_beside_a_sqlite_ledger_and_elsewhere_in_the_state_directory(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert key_path("sqlite+aiosqlite:////var/lib/coobill/coobill.db") == Path(
            "/var/lib/coobill/coobill.db.key")
        assert key_path("sqlite+aiosqlite:///:memory:") is None
        monkeypatch.setenv("STATE_DIRECTORY", "/run/state")
        assert key_path("postgresql+asyncpg://db/ledger") == Path("/run/state/ledger.key")
        assert key_path("postgresql+asyncpg://db/ledger", "/etc/k") == Path("/etc/k")

    def test_it_is_made_private_whatever_the_umask(self, tmp_path: Path) -> None:
        old = os.umask(0)
        try:
            key = load_key(tmp_path / "state" / "ledger.key")
        finally:
            os.umask(old)
        mode = stat.S_IMODE((tmp_path / "state" / "ledger.key").stat().st_mode)
        assert mode == 0o600
        assert len(key) == 32
        assert load_key(tmp_path / "state" / "ledger.key") == key
        assert [p.name for p in (tmp_path / "state").iterdir()] == ["ledger.key"]

    def test_processes_starting_at_once_agree_on_one_key(self, tmp_path: Path) -> None:
        path = tmp_path / "ledger.key"
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            keys = pool.map(load_key, [path] * 8)
        assert len(set(keys)) == 1

    def test_a_file_that_is_not_a_key_is_one_clear_error(self, tmp_path: Path) -> None:
        path = tmp_path / "ledger.key"
        path.write_text("not hex\n")
        with pytest.raises(ConfigurationError) as caught:
            load_key(path)
        assert "database.key_file" in str(caught.value)


class TestOpeningTheLedger:
    async def test_another_ledgers_key_is_refused(self, ctx: BillingContext) -> None:
        await open_ledger(ctx)
        stranger = replace(ctx, uow=UnitOfWorkFactory(ctx.uow.engine, ledger_key=b"x" * 32))
        with pytest.raises(ConfigurationError) as caught:
            await open_ledger(stranger)
        assert "not the key the ledger was sealed with" in str(caught.value)
        await open_ledger(ctx)  # its own still opens it

    async def test_entries_from_before_the_seal_are_sealed_by_the_upgrade_alone(
        self, ctx: BillingContext
    ) -> None:
        """A ledger older than migration 0004: its entries have no seal. Opening it seals
        nothing (that would bless a forgery); `coobill migrate` past 0004 seals it once."""
        await set_extension(ctx, "100", ExtensionChanges(billing=True))
        await recharge(ctx, ["100"], "5")
        await recharge(ctx, ["100"], "7")
        async with ctx.uow() as uow:
            from sqlalchemy import text

            await uow.session.execute(text("UPDATE ledger_entry SET mac = NULL"))
            await uow.session.execute(text(
                "UPDATE ledger_head SET last_entry_id = 0, last_mac = '', entries = 0, mac = ''"))
            await uow.commit()
        assert not (await audit(ctx)).ok
        await open_ledger(ctx)
        assert not (await audit(ctx)).ok
        assert await seal_entries_from_before_the_seal(ctx) == 2
        report = await audit(ctx)
        assert report.ok, report.problems
        assert await seal_entries_from_before_the_seal(ctx) == 0  # sealed: never again
