"""The service layer's refusals in the portal's Chinese: every message a service can raise is
matched, with the values it names kept."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import coobill.services
from coobill.web.error_text import error_text


def service_messages() -> list[str]:
    """Every message literal (or f-string, its fields filled with a sample) that a service
    passes to BadRequest or an Unknown... error."""
    found = []
    root = Path(coobill.services.__file__).parent
    for path in [*root.glob("*.py"), root.parent / "money.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and (node.func.id == "BadRequest" or node.func.id.startswith("Unknown"))
                    and node.args):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append(first.value)
            elif isinstance(first, ast.JoinedStr):
                parts = []
                for part in first.values:
                    if isinstance(part, ast.Constant):
                        parts.append(str(part.value))
                    else:  # a field: a name (the message's own field), else a quoted value
                        formatted = ast.unparse(part.value)
                        conversion = getattr(part, "conversion", -1)
                        parts.append("'x1'" if conversion == ord("r") else
                                     "amount" if formatted == "field" else "7")
                found.append("".join(parts))
    return found


MESSAGES = service_messages()


def test_the_services_raise_the_messages_this_test_reads() -> None:
    assert len(MESSAGES) > 40


@pytest.mark.parametrize("message", MESSAGES)
def test_every_service_message_has_its_chinese(message: str) -> None:
    shown = error_text(message, "zh")
    assert shown != message
    assert not re.search(r"[a-z]{4,} [a-z]{4,}", shown), (message, shown)


def test_values_named_in_the_message_are_kept() -> None:
    assert error_text("amount: 'abc' is not a number", "zh") == "'abc' 不是数字"
    assert error_text("csv line 3: end: '24:59' is not a time of day HH:MM (00:00-23:59)",
                      "zh") == "CSV 第 3 行:'24:59' 不是 HH:MM 格式的时刻(00:00-23:59)"
    assert error_text("name: user bill already exists", "zh") == "用户 bill 已存在"


def test_english_is_the_message_itself_and_an_unknown_one_stays_english() -> None:
    assert error_text("amount: 'abc' is not a number", "en") == "amount: 'abc' is not a number"
    assert error_text("something new went wrong", "zh") == "something new went wrong"
