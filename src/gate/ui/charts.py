"""Server-side SVG charts for the trends page: no script, no inline style, every label escaped.

Two shapes cover what auditors ask for:

- ``stacked_columns``: one column per period (day or ISO week), stacked by outcome (allow, deny,
  error) — outcomes per environment per week, one chart per environment;
- ``horizontal_bars``: one bar per item, longest first — the rules and CVEs that blocked most often.

The SVG is written inline in the page (so the stylesheet colours it through classes: ``c-allow``,
``c-deny``, ``c-error``, ``c-bar``) with ``role="img"`` and a ``<title>``; each chart also has its
numbers as a table (``chart_table``), for screen readers and for copying. Geometry is computed here
in whole pixels; labels go through gate.ui.html like every other value, so a rule id holding
``</text><script>`` stays text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gate.ui.html import Markup, el, join, link, url

#: the stacked series, bottom to top, and their CSS classes
OUTCOME_SERIES: tuple[str, ...] = ("allow", "deny", "error")

_WIDTH = 640
_COLUMNS_HEIGHT = 220
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 44, 12, 12, 40
_BAR_ROW = 22
_LABEL_WIDTH = 260
_MAX_LABEL = 40


def _count(value: Any) -> int:
    """A count from a payload: a non-negative int, anything else 0 (a chart never fails on a bad value)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _nice_max(value: int) -> int:
    """The axis maximum: ``value`` rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _short(label: str) -> str:
    return label if len(label) <= _MAX_LABEL else label[: _MAX_LABEL - 1] + "…"


def _svg(title: str, width: int, height: int, *children: Markup) -> Markup:
    return el(
        "svg",
        {"xmlns": "http://www.w3.org/2000/svg", "viewBox": f"0 0 {width} {height}", "width": width,
         "height": height, "role": "img", "class": "chart", "aria-label": title},
        el("title", None, title, svg=True),
        *children,
        svg=True,
    )


def stacked_columns(title: str, periods: Sequence[Mapping[str, Any]],
                    series: Sequence[str] = OUTCOME_SERIES) -> Markup:
    """Columns per period (``{"start": "2026-11-30", "allow": 3, "deny": 1, ...}``), stacked by ``series``."""
    height = _COLUMNS_HEIGHT
    plot_w = _WIDTH - _PAD_LEFT - _PAD_RIGHT
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    rows = [p for p in periods if isinstance(p, Mapping)]
    top = _nice_max(max((sum(_count(p.get(s)) for s in series) for p in rows), default=0))
    parts: list[Markup] = []
    # axis: zero and the maximum
    base_y = _PAD_TOP + plot_h
    parts.append(el("line", {"x1": _PAD_LEFT, "y1": base_y, "x2": _PAD_LEFT + plot_w, "y2": base_y,
                             "class": "axis"}, svg=True))
    for value in (0, top):
        y = base_y - round(plot_h * value / top)
        parts.append(el("text", {"x": _PAD_LEFT - 6, "y": y + 4, "class": "tick", "text-anchor": "end"},
                        value, svg=True))
    if not rows:
        parts.append(el("text", {"x": _PAD_LEFT + plot_w // 2, "y": _PAD_TOP + plot_h // 2, "class": "empty",
                                 "text-anchor": "middle"}, "no decisions", svg=True))
        return _svg(title, _WIDTH, height, *parts)
    slot = plot_w / len(rows)
    bar_w = max(1, min(48, round(slot * 0.7)))
    label_every = max(1, round(len(rows) / 8))
    for i, period in enumerate(rows):
        x = round(_PAD_LEFT + i * slot + (slot - bar_w) / 2)
        y = base_y
        start = str(period.get("start", ""))
        for name in series:
            n = _count(period.get(name))
            if not n:
                continue
            h = max(1, round(plot_h * n / top))
            y -= h
            parts.append(el("rect", {"x": x, "y": y, "width": bar_w, "height": h, "class": f"c-{name}"},
                            el("title", None, f"{start}: {n} {name}", svg=True), svg=True))
        if i % label_every == 0:
            parts.append(el("text", {"x": x + bar_w // 2, "y": base_y + 16, "class": "tick",
                                     "text-anchor": "middle"}, start[5:] if len(start) == 10 else _short(start),
                            svg=True))
    # legend under the axis labels
    lx = _PAD_LEFT
    for name in series:
        parts.append(el("rect", {"x": lx, "y": height - 14, "width": 10, "height": 10, "class": f"c-{name}"},
                        svg=True))
        parts.append(el("text", {"x": lx + 14, "y": height - 5, "class": "legend"}, name, svg=True))
        lx += 70
    return _svg(title, _WIDTH, height, *parts)


def horizontal_bars(title: str, rows: Sequence[Mapping[str, Any]], label_key: str, value_key: str,
                    href: str | None = None, param: str | None = None) -> Markup:
    """One bar per row, in the order given; a label links to ``href?param=label`` when both are given."""
    items = [(str(r.get(label_key, "")), _count(r.get(value_key))) for r in rows if isinstance(r, Mapping)]
    height = _PAD_TOP + max(1, len(items)) * _BAR_ROW + 8
    plot_w = _WIDTH - _LABEL_WIDTH - _PAD_RIGHT - 40
    top = _nice_max(max((n for _, n in items), default=0))
    parts: list[Markup] = []
    if not items:
        parts.append(el("text", {"x": _WIDTH // 2, "y": _PAD_TOP + 14, "class": "empty", "text-anchor": "middle"},
                        "nothing blocked", svg=True))
    for i, (label, n) in enumerate(items):
        y = _PAD_TOP + i * _BAR_ROW
        label_svg = el("text", {"x": _LABEL_WIDTH - 8, "y": y + 15, "class": "label", "text-anchor": "end"},
                       _short(label), svg=True)
        if href and param:
            label_svg = el("a", {"href": url(href, {param: label})}, label_svg, svg=True)
        w = max(1, round(plot_w * n / top)) if n else 0
        parts += [
            label_svg,
            el("rect", {"x": _LABEL_WIDTH, "y": y + 3, "width": w, "height": _BAR_ROW - 6, "class": "c-bar"},
               el("title", None, f"{label}: {n}", svg=True), svg=True),
            el("text", {"x": _LABEL_WIDTH + w + 6, "y": y + 15, "class": "value"}, n, svg=True),
        ]
    return _svg(title, _WIDTH, height, *parts)


def chart_table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[Any]],
                first_column_href: tuple[str, str] | None = None) -> Markup:
    """The chart's numbers as a table (inside a closed ``<details>``); the first column may link
    to a filtered list (``(path, param)``)."""
    def first(value: Any) -> Markup:
        if first_column_href is None:
            return join(value)
        path, param = first_column_href
        return link(url(path, {param: value}), value)

    body = [el("tr", None, el("td", None, first(row[0])), [el("td", {"class": "num"}, v) for v in row[1:]])
            for row in rows]
    return el("details", {"class": "chart-data"},
              el("summary", None, "numbers"),
              el("table", None, el("caption", None, caption),
                 el("thead", None, el("tr", None, [el("th", {"scope": "col"}, h) for h in headers])),
                 el("tbody", None, body)))
