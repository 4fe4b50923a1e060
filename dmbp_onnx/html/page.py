"""The page skeleton shared by every report: stylesheet, escaping and small building blocks."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Iterable

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 0.8em 0 0.3em; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, monospace; font-size: 0.92em; }
.pass { color: #1a7f37; font-weight: 600; }
.fail, .error { color: #c62828; font-weight: 600; }
.skip { color: #777; }
.maps { display: flex; flex-wrap: wrap; gap: 0.8em; align-items: flex-start; }
figure { margin: 0; }
figure img { width: 192px; height: auto; image-rendering: pixelated; border: 1px solid #ccc; display: block; }
figcaption { font-size: 0.9em; text-align: center; margin-top: 0.2em; }
.legend { display: flex; align-items: center; gap: 0.5em; margin: 0.5em 0; font-size: 0.9em; }
.legend img { width: 256px; height: 14px; border: 1px solid #999; }
details > summary { cursor: pointer; }
.muted { color: #666; }
"""


def page(title: str, body: str) -> str:
    """A complete HTML document titled ``title`` around ``body`` (already HTML)."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def text(value: Any) -> str:
    """``value`` as escaped text: floats in 4 significant digits, None as an em dash, booleans,
    lists and mappings as JSON."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (bool, list, tuple, dict)):
        return escape(json.dumps(value, default=str))
    return escape(str(value))


def table(header: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """A table; ``header`` is plain text, each cell of ``rows`` is already HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(mapping: dict[str, Any]) -> str:
    """A two-column table of a flat mapping; nested values are shown as compact text."""
    return table(("setting", "value"), ([escape(str(k)), f"<span class=mono>{text(v)}</span>"]
                                        for k, v in mapping.items()))


def write(html: str, path: str | Path) -> Path:
    """Write ``html`` as UTF-8 to ``path``; returns the path."""
    path = Path(path)
    path.write_text(html, encoding="utf-8")
    return path
