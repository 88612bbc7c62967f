"""A job's results as files: CSV with a header, or JSON lines; one line per archive entry, written as read."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

RESULT_COLUMNS = ("name", "sha256", "prediction_id", "modality", "label", "probabilities", "flagged", "error")
# A cell a spreadsheet would run as a formula (OWASP's CSV injection): shown as text instead.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(rows: Iterable[dict]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(row.get(column)) for column in RESULT_COLUMNS])
        yield buffer.getvalue()


def jsonl_lines(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps({column: row.get(column) for column in RESULT_COLUMNS}, ensure_ascii=False) + "\n"
