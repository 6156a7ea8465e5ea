"""Reading netctl's output back, as a script that drives netctl would."""

from __future__ import annotations

import re


def parse_table(text: str) -> list[dict[str, str]]:
    """Read a netctl table back into dicts, using the dashed underline to find column boundaries.

    Slicing by the underline (rather than splitting on spaces) keeps empty cells in their column, so
    a test can assert that a field is blank.
    """
    lines = text.splitlines()
    for index in range(1, len(lines)):
        if lines[index] and set(lines[index]) <= {"-", " "}:
            header_line, rule = lines[index - 1], lines[index]
            break
    else:
        raise AssertionError(f"no table in output:\n{text}")
    spans = [match.span() for match in re.finditer(r"-+", rule)]
    starts = [start for start, _ in spans] + [None]
    headers = [header_line[starts[i] : starts[i + 1]].strip() for i in range(len(spans))]
    rows = []
    for line in lines[index + 1 :]:
        if not line.strip() or line.endswith(":"):
            break
        rows.append({h: line[starts[i] : starts[i + 1]].strip() for i, h in enumerate(headers)})
    return rows
