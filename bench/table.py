"""Plain-text tables for the benches' stdout: a heading line, a rule, a line a row.

`print_table(columns, rows)`: each column is (heading, format spec), for example ("fps", "7.1f")
or ("mode", "<8s"); a value printed with an "s" spec goes through `str` first (so None and
numbers read as themselves), and each heading takes its column's width and alignment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_WIDTH = re.compile(r"^([<>^]?)(\d*)")


def _heading(text: str, spec: str) -> str:
    align, width = _WIDTH.match(spec).groups()  # type: ignore[union-attr]
    align = align or ("<" if spec.endswith("s") else ">")
    return f"{text:{align}{width or len(text)}s}"


def _cell(value: object, spec: str) -> str:
    return format(str(value) if spec.endswith("s") else value, spec)


def print_table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[object]],
                *, rule: bool = True) -> None:
    head = " ".join(_heading(text, spec) for text, spec in columns)
    print(head)
    if rule:
        print("-" * len(head))
    for row in rows:
        print(" ".join(_cell(value, spec) for value, (_, spec) in zip(row, columns, strict=True)))
