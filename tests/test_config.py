"""Configuration: a TOML file, every key overridable as COOBILL_<SECTION>__<KEY>, and one
clear error naming the key for anything wrong."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from coobill import config
from coobill.cli.main import main
from coobill.config import Settings, load_settings
from coobill.errors import ConfigurationError

SAMPLE = """
[database]
url = "postgresql+asyncpg://coobill@db/ledger"

[ami]
host = "10.0.0.5"
port = 5039
username = "billing"
secret = "from-file"

[agi]
port = 4600

[web]
host = "0.0.0.0"

[billing]
no_rate = "deny"
max_call_seconds = 3600
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No COOBILL_ variable of the shell running the tests, no system-wide file."""
    for name in list(os.environ):
        if name.upper().startswith("COOBILL_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent" / "coobill.toml")


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "coobill.toml"
    path.write_text(SAMPLE)
    return path


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "custom.toml"
    path.write_text(text)
    return str(path)


class TestSources:
    def test_without_a_file_the_defaults_run_on_an_embedded_sqlite_ledger(self) -> None:
        settings = load_settings()
        assert settings.database.url.startswith("sqlite+aiosqlite://")
        assert (settings.agi.host, settings.agi.port) == ("127.0.0.1", 4573)
        assert (settings.ami.port, settings.web.port) == (5038, 8080)

    def test_the_file_given_with_config_is_read(self, sample: Path) -> None:
        settings = load_settings(str(sample))
        assert settings.database.url == "postgresql+asyncpg://coobill@db/ledger"
        assert (settings.ami.host, settings.ami.port, settings.ami.username) == (
            "10.0.0.5", 5039, "billing",
        )
        assert (settings.agi.port, settings.web.host) == (4600, "0.0.0.0")
        assert (settings.billing.no_rate, settings.billing.max_call_seconds) == ("deny", 3600)
        assert settings.web.port == 8080  # not in the file: the default

    def test_coobill_config_names_the_file_when_config_is_not_given(
        self, sample: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COOBILL_CONFIG", str(sample))
        assert load_settings().agi.port == 4600

    def test_config_wins_over_coobill_config(
        self, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COOBILL_CONFIG", str(sample))
        assert load_settings(write(tmp_path, "[agi]\nport = 4700\n")).agi.port == 4700

    def test_the_virtual_environments_file_is_read_before_the_system_one(
        self, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`make run` writes .venv/etc/coobill/coobill.toml: the CLI in .venv/bin finds it from
        any folder, and it wins over /etc (COOBILL_CONFIG and --config still win over it)."""
        monkeypatch.setattr(config, "ENVIRONMENT_CONFIG", sample)
        monkeypatch.setattr(config, "SYSTEM_CONFIG", Path(write(tmp_path, "[agi]\nport = 4700\n")))
        assert load_settings().agi.port == 4600
        monkeypatch.chdir(tmp_path)
        assert load_settings().agi.port == 4600
        monkeypatch.setenv("COOBILL_CONFIG", write(tmp_path, "[agi]\nport = 4800\n"))
        assert load_settings().agi.port == 4800

    def test_the_environment_file_is_under_the_virtual_environments_prefix(self) -> None:
        assert config._environment_config() == Path(sys.prefix) / "etc" / "coobill" / "coobill.toml"

    def test_the_system_file_is_read_when_no_other_is_named(
        self, sample: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(config, "SYSTEM_CONFIG", sample)
        assert load_settings().agi.port == 4600

    @pytest.mark.parametrize(
        ("name", "value", "section", "key", "expected"),
        [
            ("COOBILL_DATABASE__URL", "sqlite+aiosqlite:///env.db", "database", "url",
             "sqlite+aiosqlite:///env.db"),
            ("COOBILL_AMI__HOST", "pbx.example", "ami", "host", "pbx.example"),
            ("COOBILL_AMI__PORT", "6038", "ami", "port", 6038),
            ("COOBILL_AMI__USERNAME", "ops", "ami", "username", "ops"),
            ("COOBILL_AMI__SECRET", "from-env", "ami", "secret", "from-env"),
            ("COOBILL_AGI__HOST", "0.0.0.0", "agi", "host", "0.0.0.0"),
            ("COOBILL_AGI__PORT", "4800", "agi", "port", 4800),
            ("COOBILL_WEB__HOST", "::1", "web", "host", "::1"),
            ("COOBILL_WEB__PORT", "9090", "web", "port", 9090),
            ("coobill_web__port", "9091", "web", "port", 9091),
        ],
    )
    def test_the_environment_overrides_the_file(
        self, sample: Path, monkeypatch: pytest.MonkeyPatch,
        name: str, value: str, section: str, key: str, expected: object,
    ) -> None:
        monkeypatch.setenv(name, value)
        settings = load_settings(str(sample))
        assert getattr(getattr(settings, section), key) == expected
        assert settings.billing.no_rate == "deny"  # the rest of the file still holds

    def test_the_documented_sample_loads_and_says_what_the_defaults_say(self) -> None:
        """etc/coobill.toml spells out every default (bar the installed ledger's path)."""
        sample = Path(__file__).parents[1] / "etc" / "coobill.toml"
        settings = load_settings(str(sample))
        assert settings.database.url == "sqlite+aiosqlite:////var/lib/coobill/coobill.db"
        defaults = Settings()
        for section in ("agi", "ami", "web", "billing", "log"):
            assert getattr(settings, section) == getattr(defaults, section), section

    def test_settings_are_frozen(self) -> None:
        settings = load_settings()
        with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError
            settings.agi.port = 1  # type: ignore[misc]

    def test_a_secret_is_not_shown_in_the_settings_repr(self, sample: Path) -> None:
        assert "from-file" not in repr(load_settings(str(sample)))


class TestBadConfiguration:
    @pytest.mark.parametrize(
        ("name", "value", "names"),
        [
            ("COOBILL_AGI__PORT", "abc", "agi.port (or COOBILL_AGI__PORT)"),
            ("COOBILL_WEB__PORT", "70000", "web.port (or COOBILL_WEB__PORT)"),
            ("COOBILL_AMI__PORT", "0", "ami.port (or COOBILL_AMI__PORT)"),
            ("COOBILL_DATABASE__URL", "mysql://u:pw@h/db", "database.url"),
            ("COOBILL_BILLING__NO_RATE", "maybe", "billing.no_rate"),
            ("COOBILL_AGI__PROT", "4573", "agi.prot"),
            ("COOBILL_DATABSE__URL", "sqlite+aiosqlite:///x.db", "COOBILL_DATABSE__URL"),
        ],
    )
    def test_a_bad_environment_value_is_one_error_naming_the_key(
        self, monkeypatch: pytest.MonkeyPatch, name: str, value: str, names: str
    ) -> None:
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigurationError) as caught:
            load_settings()
        message = str(caught.value)
        assert names in message
        assert "\n" not in message

    def test_a_database_url_in_error_is_not_repeated_with_its_password(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COOBILL_DATABASE__URL", "mysql://u:hunter2@h/db")
        with pytest.raises(ConfigurationError) as caught:
            load_settings()
        assert "hunter2" not in str(caught.value)

    @pytest.mark.parametrize(
        ("text", "names"),
        [
            ("[agi]\nport = \"abc\"\n", "agi.port"),
            ("[telephony]\nhost = \"x\"\n", "telephony"),
            ("[web]\nsecure_cookies = \"sometimes\"\n", "web.secure_cookies"),
            ("[log]\nlevel = \"chatty\"\n", "log.level"),
        ],
    )
    def test_a_bad_file_value_or_unknown_section_is_one_error_naming_it(
        self, tmp_path: Path, text: str, names: str
    ) -> None:
        with pytest.raises(ConfigurationError) as caught:
            load_settings(write(tmp_path, text))
        assert str(caught.value).startswith(f"config: {names}")

    def test_bad_toml_syntax_is_one_error_naming_the_file(self, tmp_path: Path) -> None:
        path = write(tmp_path, "[agi\nport = 1\n")
        with pytest.raises(ConfigurationError) as caught:
            load_settings(path)
        assert str(caught.value).startswith(f"config: {path}: ")
        assert "line 1" in str(caught.value)

    def test_a_config_file_that_does_not_exist_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError) as caught:
            load_settings(str(tmp_path / "nope.toml"))
        assert "nope.toml does not exist" in str(caught.value)

    def test_the_environment_cannot_fix_what_the_file_got_wrong(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bad file is refused even when the environment overrides the bad key."""
        monkeypatch.setenv("COOBILL_AGI__PORT", "4573")
        path = write(tmp_path, "[agi\n")
        with pytest.raises(ConfigurationError):
            load_settings(path)


class TestThroughTheCommandLine:
    @pytest.mark.parametrize(
        ("name", "value"),
        [("COOBILL_AGI__PORT", "abc"), ("COOBILL_DATABASE__URL", "oracle://x"),
         ("COOBILL_NOPE__KEY", "1")],
    )
    def test_a_bad_value_is_one_line_on_stderr_and_exit_78(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: str, value: str,
    ) -> None:
        monkeypatch.setenv(name, value)
        assert main(["audit"]) == 78
        out, err = capsys.readouterr()
        assert out == ""
        assert len(err.splitlines()) == 1
        assert err.startswith("coobill: config: ")
        assert name in err

    def test_a_bad_file_given_with_config_is_one_line_and_exit_78(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["--config", write(tmp_path, "[agi]\nport = -1\n"), "audit"]) == 78
        _, err = capsys.readouterr()
        assert err.splitlines() == [
            "coobill: config: agi.port (or COOBILL_AGI__PORT): "
            "Input should be greater than or equal to 0 (got -1)"
        ]

    def test_the_file_given_with_config_chooses_the_database(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        ledger = tmp_path / "from-file.db"
        path = write(tmp_path, f'[database]\nurl = "sqlite+aiosqlite:///{ledger}"\n')
        assert main(["--config", path, "migrate"]) == 0
        assert ledger.is_file()
        capsys.readouterr()


def test_settings_can_be_built_directly_for_tests() -> None:
    """The fixtures build Settings(...) without a file or the environment's help."""
    settings = Settings(database={"url": "sqlite+aiosqlite:///:memory:"})  # type: ignore[arg-type]
    assert settings.database.url.endswith(":memory:")


class TestWebhookUrlsAsShown:
    def test_credentials_query_values_and_fragment_are_masked(self) -> None:
        from coobill.config import shown_url

        assert shown_url("https://u:secret@h.example:8443/p?a=1&b=two#frag") == (
            "https://u:***@h.example:8443/p?a=***&b=***#***")
        assert shown_url("https://t0ken@h.example/p") == "https://***@h.example/p"
        assert shown_url("https://h.example/plain") == "https://h.example/plain"

    def test_an_error_message_loses_each_secret_part(self) -> None:
        from coobill.config import without_url_secrets

        url = "https://u:s3cret-pw@h.example/p?key=k3y-value"
        text = f"failed {url}; auth s3cret-pw; key k3y-value"
        assert without_url_secrets(text, [url]) == (
            "failed https://u:***@h.example/p?key=***; auth ***; key ***")

    def test_a_bad_url_in_the_configuration_is_named_masked(self) -> None:
        from pydantic import ValidationError

        with pytest.raises(ValidationError) as refused:
            Settings(webhooks={"urls": ["ftp://u:s3cret-pw@h.example/"], "secret": "s" * 32})
        message = refused.value.errors()[0]["msg"]
        assert "'ftp://u:***@h.example/' is not an http:// or https:// URL" in message
