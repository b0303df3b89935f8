"""Parsers of the short texts a rate deck repeats over its rows, each distinct text parsed
once - and only short ones kept: a parser's input may come from a portal user or a file,
and a cache of 8,192 texts of 60 KiB each (a valid amount may be padded with zeros or
spaces) would hold half a gigabyte. A longer text is parsed each time, as before."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

LONGEST_KEPT = 64  # characters; a deck's prices, lengths, times and days are far shorter


def parsed_once(maxsize: int, *, longest: int = LONGEST_KEPT
                ) -> Callable[[Callable[Concatenate[str, P], T]],
                              Callable[Concatenate[str, P], T]]:
    """functools.lru_cache(maxsize) for texts up to `longest` characters. A parser that
    raises keeps nothing (lru_cache stores only results): a refused text's error is raised
    each time."""
    def decorate(parse: Callable[Concatenate[str, P], T]) -> Callable[Concatenate[str, P], T]:
        cached = functools.lru_cache(maxsize=maxsize)(parse)

        @functools.wraps(parse)
        def parse_text(text: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
            if len(text) <= longest:
                return cached(text, *args, **kwargs)  # type: ignore[arg-type]
            return parse(text, *args, **kwargs)

        return parse_text
    return decorate
