#!/usr/bin/python3
"""Generates the values table of charts/palisade/README.md from the "# --" comments of
charts/palisade/values.yaml (the comment above a key documents it; following "#" lines continue
it). --check exits 1 when the README's table is not what values.yaml says.

Usage: scripts/chart-values-table.py [--check]
"""
import json
import pathlib
import re
import sys

import yaml

CHART = pathlib.Path(__file__).resolve().parent.parent / "charts" / "palisade"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"
KEY = re.compile(r"^(\s*)([A-Za-z0-9_]+):(.*)$")


def documented_keys(text):
    """[(dotted key, description)] in file order."""
    found, stack, comment = [], [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and comment is not None:
            comment.append(stripped[1:].strip())
            continue
        match = KEY.match(line)
        if not match:
            if stripped:
                comment = None
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        if comment is not None:
            found.append((".".join(k for _, k in stack), " ".join(comment)))
        comment = None
    return found


def lookup(values, dotted):
    for part in dotted.split("."):
        values = values[part]
    return values


def type_name(value):
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list",
            dict: "object", type(None): "null"}[type(value)]


def table():
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, description in documented_keys(text):
        value = lookup(values, key)
        default = json.dumps(value, separators=(", ", ": ")).replace("|", "\\|")
        rows.append("| `%s` | %s | `%s` | %s |" % (key, type_name(value), default,
                                                  description.replace("|", "\\|")))
    return "\n".join(rows)


def main():
    readme = CHART / "README.md"
    current = readme.read_text()
    start, end = current.index(BEGIN) + len(BEGIN), current.index(END)
    updated = current[:start] + "\n" + table() + "\n" + current[end:]
    if "--check" in sys.argv:
        if updated != current:
            print("charts/palisade/README.md: the values table is stale "
                  "(python3 scripts/chart-values-table.py)", file=sys.stderr)
            return 1
        return 0
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
