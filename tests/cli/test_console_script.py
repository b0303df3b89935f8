"""The installed `coobill` console script: the entry point works as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COOBILL = Path(sys.executable).parent / "coobill"


def run(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COOBILL), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("COOBILL_")}
    return {
        **clean,
        "COOBILL_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "COOBILL_CONFIG": str(tmp_path / "coobill.toml"),
    }


def test_the_console_script_migrates_recharges_shows_and_refuses_bad_input(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "coobill.toml").write_text("[log]\nlevel = \"warning\"\n")
    assert run("migrate", env=env).returncode == 0
    assert run("extension", "set", "100", "--billing", env=env).returncode == 0
    assert run("extension", "recharge", "100", "--amount", "12.5", env=env).returncode == 0
    shown = run("extension", "show", "100", "--json", env=env)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert json.loads(shown.stdout)["balance"] == "12.5000"

    bad = run("extension", "recharge", "100", "--amount", "1.00001", env=env)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == ["coobill: amount: '1.00001' has more than 4 decimal places"]

    misconfigured = run("audit", env={**env, "COOBILL_AGI__PORT": "abc"})
    assert misconfigured.returncode == 78
    assert len(misconfigured.stderr.splitlines()) == 1
    assert "COOBILL_AGI__PORT" in misconfigured.stderr
