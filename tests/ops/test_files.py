"""Files and secrets: the ledger and its keys are private whatever the umask, and the key that
signs portal cookies is not in the ledger, so a copy of the database forges nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.services import users
from coobill.storage import schema
from coobill.storage.db import create_engine
from coobill.storage.ledger_key import key_path, load_key, portal_key_path
from coobill.storage.tables import Setting
from coobill.web.app import create_app
from coobill.web.sessions import COOKIE


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The umask of a shell running `make run`."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


class TestPrivateFiles:
    async def test_a_new_ledger_its_wal_and_shm_and_both_keys_are_0600_under_umask_022(
        self, tmp_path: Path, umask_022: None
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'coobill.db'}"
        engine = create_engine(url)
        try:
            await schema.upgrade(engine)
            async with engine.connect() as conn:  # the -wal and -shm exist while it is open
                await conn.exec_driver_sql("SELECT 1")
                made = [tmp_path / n for n in ("coobill.db", "coobill.db-wal", "coobill.db-shm")]
                assert {p.name: mode(p) for p in made} == {p.name: 0o600 for p in made}
        finally:
            await engine.dispose()
        for path in (key_path(url), portal_key_path(url)):
            assert path is not None
            load_key(path)
            assert mode(path) == 0o600, path
        assert portal_key_path(url) == tmp_path / "coobill.db.portal.key"

    def test_the_cli_makes_its_files_private_whatever_umask_it_was_started_with(
        self, tmp_path: Path
    ) -> None:
        config = tmp_path / "coobill.toml"
        config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "c.db"}"\n')
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from coobill.cli.main import main; sys.exit(main())",
                "--config",
                str(config),
                "migrate",
            ],
            umask=0o022,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert done.returncode == 0, done.stderr
        made = sorted(p.name for p in tmp_path.iterdir() if p.name != "coobill.toml")
        assert made
        assert all(name.startswith("c.db") for name in made)
        assert {name: mode(tmp_path / name) for name in made} == dict.fromkeys(made, 384)


class TestCookieKey:
    async def test_a_copy_of_the_ledger_does_not_sign_a_cookie_the_portal_accepts(
        self, tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(
            users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        (tmp_path / "site").mkdir()
        (tmp_path / "copy").mkdir()
        site, copy = tmp_path / "site" / "coobill.db", tmp_path / "copy" / "coobill.db"
        shutil.copy(sqlite_template, site)
        ctx = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{site}"}))
        try:
            await users.add_user(ctx, "root", "a-long-password", "admin")
            secret = load_key(portal_key_path(str(ctx.config.database.url))).hex()
            app = create_app(ctx, secret=secret)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://portal.test"
            ) as web:
                assert (
                    await web.post(
                        "/api/login", json={"name": "root", "password": "a-long-password"}
                    )
                ).status_code == 200
                cookie = web.cookies[COOKIE]
                assert (await web.get("/api/me")).status_code == 200
            async with ctx.uow() as uow:
                keys = (await uow.session.execute(select(Setting.key))).scalars().all()
            assert not [k for k in keys if "secret" in k]  # nothing in the ledger signs cookies
        finally:
            await ctx.uow.dispose()
        shutil.copy(site, copy)  # the database alone, as a local reader could take it
        stolen = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{copy}"}))
        try:
            other_secret = load_key(portal_key_path(str(stolen.config.database.url))).hex()
            assert other_secret != secret
            forged = create_app(stolen, secret=other_secret)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=forged), base_url="http://portal.test"
            ) as web:
                web.cookies.set(COOKIE, cookie)
                assert (await web.get("/api/me")).status_code == 401
        finally:
            await stolen.uow.dispose()
