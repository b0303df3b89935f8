"""A clone with nothing beside it runs the suite and the benchmarks: nothing they read lies
outside the checkout (the recordings are in tests/data/asterisk-traces)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import bench

import tests.fakes
from tests.fakes.traces import REPOSITORY, TRACES


def _modules(package: object) -> list[str]:
    return [m.name for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]  # type: ignore[attr-defined]


def test_the_recordings_are_in_the_repository() -> None:
    """Every lab folder and its expected truth are in tests/data, not beside the checkout."""
    if os.environ.get("COOBILL_TRACES"):
        return  # an explicit other copy: what it holds is the caller's business
    assert TRACES.resolve().is_relative_to(REPOSITORY)
    for lab in ("lab-23.4.1-basic", "lab-23.4.1-pjsip", "lab-23.4.1-transfer"):
        assert (TRACES / lab / "ami-all.txt").is_file()
        assert (TRACES / lab / "expected.json").is_file()
    assert (TRACES / "README.md").is_file()
    assert (TRACES / "ami-actions.txt").is_file()


def test_no_fake_or_benchmark_names_a_path_outside_the_checkout() -> None:
    """Every Path a fake or a benchmark module holds resolves inside the repository."""
    outside = []
    for name in _modules(tests.fakes) + _modules(bench):
        if name == "bench.__main__":
            continue
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, Path) and not value.resolve().is_relative_to(REPOSITORY):
                outside.append(f"{name}.{attr} = {value}")
    assert outside == []


# Run in a child so the audit hook does not outlive the check: it records every file opened
# under the checkout's parent folder but outside the checkout (a sibling folder of the clone).
_PROBE = """
import sys
from pathlib import Path
repo = Path(sys.argv[1]).resolve()
seen = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        path = Path(args[0] if isinstance(args[0], str) else args[0].decode()).resolve()
        if path.is_relative_to(repo.parent) and not path.is_relative_to(repo):
            seen.append(str(path))
sys.addaudithook(hook)
import pkgutil, importlib, bench, tests.fakes
from tests.fakes import ami_server, asterisk_agi, traces
for package in (tests.fakes, bench):
    for m in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if m.name != "bench.__main__":
            importlib.import_module(m.name)
for path in sorted(traces.TRACES.rglob("ami-all.txt")):
    ami_server.read_trace(path)
for path in asterisk_agi.trace_files():
    asterisk_agi.load_trace_env(path)
    asterisk_agi.load_trace_commands(path)
from bench import bench_settlement
bench_settlement.call_template()
print("\\n".join(seen))
"""


def test_reading_every_recording_opens_nothing_beside_the_checkout() -> None:
    """Loading the recordings the way the fakes and the benchmarks do touches no file in a
    sibling of the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "COOBILL_TRACES"}
    done = subprocess.run([sys.executable, "-c", _PROBE, str(REPOSITORY)], cwd=REPOSITORY,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
