"""What the CLI prints: tables whose columns line up in a terminal, whatever the script."""

from __future__ import annotations

from coobill.cli.output import display_width, to_table


def _column_starts(line: str, values: list[str]) -> list[int]:
    """Terminal columns where each value starts on the line."""
    starts, at = [], 0
    for value in values:
        index = line.index(value, at)
        starts.append(display_width(line[:index]))
        at = index + len(value)
    return starts


class TestTables:
    def test_columns_after_a_chinese_name_line_up_with_those_after_a_latin_one(self) -> None:
        """East Asian wide characters take two terminal columns each."""
        rows = [{"extension": "100", "name": "Alice", "balance": "5.0000"},
                {"extension": "102", "name": "王小明", "balance": "12.5000"},
                {"extension": "103", "name": "Ｚｏｅ", "balance": "0.0000"}]
        lines = to_table(rows, ("extension", "name", "balance")).splitlines()
        starts = {tuple(_column_starts(line, [r["extension"], r["name"], r["balance"]]))
                  for line, r in zip(lines[1:], rows, strict=True)}
        assert len(starts) == 1
        header = _column_starts(lines[0], ["extension", "name", "balance"])
        assert tuple(header) in starts

    def test_wide_and_combining_characters_are_measured_as_a_terminal_shows_them(self) -> None:
        assert display_width("王小明") == 6
        assert display_width("Ｚｏｅ") == 6
        assert display_width("Ame\u0301lie") == 6  # a combining acute takes no column
        assert display_width("Alice") == 5
