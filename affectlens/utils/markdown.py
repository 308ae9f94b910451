"""Markdown tables for reports and benchmark results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def markdown_cell(value: Any) -> str:
    """A value made safe inside a table cell (no pipes or line breaks; containers as JSON)."""
    if isinstance(value, dict | list | tuple):
        value = json.dumps(value, default=str)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], right: set[int] | None = None) -> list[str]:
    """Lines of a GitHub Markdown table; columns in ``right`` are right-aligned (numbers)."""
    right = right or set()
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(markdown_cell(h) for h in header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return lines
