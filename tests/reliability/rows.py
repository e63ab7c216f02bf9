"""The table the reliability suite prints: one row per case, with what was measured.

Tests append rows as JSON lines to a directory of their process (one file per process, so
xdist workers never write to the same file); the process that prints the summary reads them
all. The directory is named by ``CHANNELS_RELIABILITY_ROWS``, which the controlling process
sets before xdist starts its workers, so they inherit it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

ROWS_ENV = "CHANNELS_RELIABILITY_ROWS"
COLUMNS = ("case", "fault or input", "expected", "measured", "sent", "delivered", "lost",
           "dup", "result")


@dataclass
class Row:
    case: str
    fault: str
    expected: str
    measured: str
    sent: int | None = None
    delivered: int | None = None
    lost: int | None = None
    duplicated: int | None = None
    result: str = "?"

    def cells(self) -> list[str]:
        def number(value: int | None) -> str:
            return "-" if value is None else str(value)

        return [self.case, self.fault, self.expected, self.measured, number(self.sent),
                number(self.delivered), number(self.lost), number(self.duplicated), self.result]


def write(directory: Path, row: Row) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"rows-{os.getpid()}.jsonl", "a", encoding="utf-8") as stream:
        stream.write(json.dumps(asdict(row)) + "\n")


def read(directory: Path) -> list[Row]:
    rows = []
    for path in sorted(directory.glob("rows-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(Row(**json.loads(line)))
    return sorted(rows, key=lambda row: row.case)


def markdown(rows: list[Row]) -> str:
    """A Markdown table (what docs/reliability.md shows), pipes in cells escaped."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    out = [line(list(COLUMNS)), line(["---"] * len(COLUMNS))]
    out += [line(row.cells()) for row in rows]
    return "\n".join(out)
