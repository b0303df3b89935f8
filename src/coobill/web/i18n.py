"""English and Simplified Chinese: the English text is the key, locales/zh.json the translation."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = {"en": "English", "zh": "中文"}

Translator = Callable[..., str]


@cache
def catalogue(language: str) -> dict[str, str]:
    path = LOCALES / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def translator(language: str) -> Translator:
    """t("Balance") → "余额" in Chinese; keyword arguments fill {placeholders}."""
    texts = catalogue(language if language in LANGUAGES else "en")

    def t(text: str, **values: object) -> str:
        found = texts.get(text, text)
        return found.format(**values) if values else found

    return t


def preferred_language(accept_language: str | None) -> str:
    """Before login: Chinese when the browser asks for it first, else English."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"
