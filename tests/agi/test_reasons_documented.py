"""Every word the gate can put in COOBILL_REASON is one a site can look up: the shipped
dialplan's header lists them (the file a site reads when it writes its own GotoIf), and
docs/gate.md says what each means - a reason added to the code alone (no_margin was) leaves
a dialplan author guessing."""

from __future__ import annotations

import re

from coobill.services.commands import Reason
from tests.fakes.asterisk_agi import REPOSITORY, SAMPLE_DIALPLAN

GATE_DOC = REPOSITORY / "docs" / "gate.md"


def _dialplan_reason_list() -> set[str]:
    """The words of the header's `COOBILL_REASON` entry, up to the next variable."""
    text = SAMPLE_DIALPLAN.read_text(encoding="utf-8")
    entry = re.search(r";\s+COOBILL_REASON\s+(?P<words>.*?)\n;\s+COOBILL_LIMIT", text, re.S)
    assert entry is not None, "the dialplan header lists no COOBILL_REASON"
    words = entry["words"].replace(";", " ")
    return set(re.findall(r"[a-z_]+", words)) - {"or"}


def test_the_shipped_dialplan_lists_every_reason() -> None:
    assert {str(reason) for reason in Reason} <= _dialplan_reason_list()


def test_docs_gate_describes_every_reason() -> None:
    text = GATE_DOC.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))
    assert {str(reason) for reason in Reason} <= rows
