"""Inline SVG drawings of the delegation overview: who acts for whom, and day by day.

Drawn on the server from a handful of aggregate rows, so the admin page needs no JavaScript
build, no CDN and works offline. The layout is deterministic (same rows, same picture): the
graph has three columns — actors, one "pill" per actor → API edge carrying its allowed and
denied counts, APIs — so edge labels never overlap however many edges there are; chains of
two or more actors are drawn as paths ``users → actor 1 → … → API``.

Every label is attacker-influenced (``sub``, ``act.sub`` and ``aud`` claims end up here), so
all text goes through :func:`text` (control characters dropped, length capped, XML-escaped)
and all attributes through :func:`attr`; nothing else writes a string into the markup.
This module knows nothing of Django: it takes plain rows and returns markup.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

ALLOWED_COLOUR = "#2e7d32"
DENIED_COLOUR = "#c62828"
HIT_COLOUR = "#1565c0"
MISS_COLOUR = "#90a4ae"
INK = "#263238"
MUTED = "#607d8b"
NODE_FILL = "#eceff1"
API_FILL = "#e3f2fd"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"

#: Characters a label may not carry: C0/C1 controls (NUL included), bidi overrides, BOM.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@dataclass(frozen=True)
class Edge:
    """An actor called (or exchanged a token for) an API: allowed and denied event counts."""

    actor: str
    api: str
    allowed: int
    denied: int


@dataclass(frozen=True)
class ChainPath:
    """A delegation chain of two or more actors (first actor first) reaching an API."""

    actors: tuple[str, ...]
    api: str
    users: int
    example_user: str
    allowed: int
    denied: int


@dataclass(frozen=True)
class Day:
    """One day of the period: allowed and denied events, exchange cache hits and misses."""

    day: date
    allowed: int
    denied: int
    cache_hits: int
    cache_misses: int


def clean(value: str, limit: int) -> str:
    """``value`` without control characters, cut to ``limit`` characters with an ellipsis."""
    value = _UNPRINTABLE.sub("\ufffd", value)
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + "…"


def text(value: str, limit: int = 200) -> str:
    """Text content for the markup: cleaned, capped and escaped."""
    return html.escape(clean(value, limit), quote=True)


def attr(value: object, limit: int = 200) -> str:
    """A quoted attribute value: cleaned, capped and escaped (quotes included)."""
    return '"' + html.escape(clean(str(value), limit), quote=True) + '"'


def _svg(width: float, height: float, label: str, body: Iterable[str], css_class: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class={attr(css_class)} role="img" '
        f'aria-label={attr(label)} viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" style="max-width:100%;height:auto;{FONT}">'
        + "".join(body)
        + "</svg>"
    )


def _node(x: float, y: float, w: float, h: float, label: str, fill: str, role: str) -> str:
    """A box with a (capped) label; the full value is in its tooltip."""
    chars = max(int((w - 16) / 6.6), 4)
    return (
        f"<g class={attr('node ' + role)} data-label={attr(label, 300)}>"
        f"<title>{text(label, 300)}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6" '
        f'fill="{fill}" stroke="#b0bec5"/>'
        f'<text x="{x + 8:.1f}" y="{y + h / 2 + 4:.1f}" font-size="12" fill="{INK}">'
        f"{text(label, chars)}</text></g>"
    )


def _stroke(allowed: int, denied: int) -> tuple[str, str, float]:
    """Colour, dash pattern and width of an edge: any denial makes it red and dashed."""
    width = 1.5 + min(math.log10(allowed + denied + 1) * 1.5, 6.0)
    if denied:
        return DENIED_COLOUR, ' stroke-dasharray="6 4"', width
    return ALLOWED_COLOUR, "", width


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    mid = (x1 + x2) / 2
    return f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"


def _counts(x: float, y: float, allowed: int, denied: int, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="12" text-anchor="{anchor}">'
        f'<tspan fill="{ALLOWED_COLOUR}" font-weight="600">✓ {allowed:,}</tspan>'
        f'<tspan fill="{DENIED_COLOUR}" font-weight="600" dx="8">✗ {denied:,}</tspan></text>'
    )


def draw_graph(edges: Sequence[Edge]) -> str:
    """Actors → APIs: one row per edge, each labelled with its allowed and denied counts."""
    if not edges:
        return _svg(640, 40, "No delegation in this period", [_empty(40)], "auth0-obo-graph")
    # Each actor's edges on consecutive rows (actors in order of their busiest edge), so its
    # box, centred on its rows, never overlaps another actor's.
    rank = {actor: i for i, actor in enumerate(dict.fromkeys(e.actor for e in edges))}
    edges = sorted(edges, key=lambda e: rank[e.actor])
    row, node_w, pill_w = 40.0, 250.0, 150.0
    actor_x, pill_x, api_x = 10.0, 330.0, 560.0
    width = api_x + node_w + 10
    height = 30 + row * len(edges)
    actors = list(dict.fromkeys(e.actor for e in edges))
    apis = list(dict.fromkeys(e.api for e in edges))
    rows_of: dict[str, list[int]] = {}
    for index, edge in enumerate(edges):
        rows_of.setdefault(edge.actor, []).append(index)
    actor_y = {a: 30 + row * (rows_of[a][0] + rows_of[a][-1]) / 2 for a in actors}
    api_step = (height - 30) / len(apis)
    api_y = {api: 30 + api_step * i + (api_step - row) / 2 for i, api in enumerate(apis)}
    body = [
        _heading(actor_x, "Actor (who acts for the user)"),
        _heading(pill_x, "Events (allowed / denied)"),
        _heading(api_x, "API (audience)"),
    ]
    for index, edge in enumerate(edges):
        colour, dash, stroke_w = _stroke(edge.allowed, edge.denied)
        y = 30 + row * index + row / 2 - 4
        ay, py = actor_y[edge.actor] + row / 2 - 4, api_y[edge.api] + row / 2 - 4
        body.append(
            f'<g class="edge" data-actor={attr(edge.actor, 300)} data-api={attr(edge.api, 300)} '
            f'data-allowed="{edge.allowed}" data-denied="{edge.denied}" '
            f'data-state="{"denied" if edge.denied else "allowed"}">'
            f"<title>{text(edge.actor, 120)} → {text(edge.api, 120)}: "
            f"{edge.allowed:,} allowed, {edge.denied:,} denied</title>"
            f'<path d="{_curve(actor_x + node_w, ay, pill_x, y)}" fill="none" stroke="{colour}" '
            f'stroke-width="{stroke_w:.1f}"{dash} opacity="0.8"/>'
            f'<path d="{_curve(pill_x + pill_w, y, api_x, py)}" fill="none" stroke="{colour}" '
            f'stroke-width="{stroke_w:.1f}"{dash} opacity="0.8" '
            'marker-end="url(#auth0-obo-arrow)"/>'
            f'<rect x="{pill_x:.1f}" y="{y - 13:.1f}" width="{pill_w:.1f}" height="26" rx="13" '
            f'fill="#fff" stroke="{colour}"{dash}/>'
            + _counts(pill_x + pill_w / 2, y + 4, edge.allowed, edge.denied)
            + "</g>"
        )
    for actor in actors:
        body.append(_node(actor_x, actor_y[actor] + 4, node_w, row - 16, actor, NODE_FILL, "actor"))
    for api in apis:
        body.append(_node(api_x, api_y[api] + 4, node_w, row - 16, api, API_FILL, "api"))
    defs = _arrow_defs("auth0-obo-arrow")
    return _svg(width, height, "Actors and the APIs they called", [defs, *body], "auth0-obo-graph")


def draw_paths(paths: Sequence[ChainPath], max_actors: int = 4) -> str:
    """Nested chains: ``users → actor 1 → … → current actor → API``, one row each."""
    if not paths:
        return ""
    row, box_w, gap = 44.0, 160.0, 30.0
    columns = 2 + min(max(len(p.actors) for p in paths), max_actors)
    width = 10 + columns * (box_w + gap) - gap + 130
    height = 10 + row * len(paths)
    body = []
    for index, path in enumerate(paths):
        y = 10 + row * index
        actors = list(path.actors)
        if len(actors) > max_actors:  # keep the first and the last actors, mark the gap
            hidden = f"… {len(actors) - max_actors + 1} more"
            actors = [*actors[: max_actors - 2], hidden, actors[-1]]
        user = path.example_user if path.users == 1 else f"{path.users:,} users"
        labels = [(user, "user", NODE_FILL), *((a, "actor", NODE_FILL) for a in actors)]
        labels.append((path.api, "api", API_FILL))
        colour, dash, _ = _stroke(path.allowed, path.denied)
        parts = [
            f'<g class="path" data-chain={attr(" → ".join(path.actors), 300)} '
            f'data-api={attr(path.api, 300)} data-users="{path.users}" '
            f'data-allowed="{path.allowed}" data-denied="{path.denied}">'
        ]
        for i, (label, role, fill) in enumerate(labels):
            x = 10 + i * (box_w + gap)
            parts.append(_node(x, y + 6, box_w, row - 14, label, fill, role))
            if i:
                parts.append(
                    f'<line x1="{x - gap + 2:.1f}" y1="{y + row / 2 - 1:.1f}" x2="{x - 3:.1f}" '
                    f'y2="{y + row / 2 - 1:.1f}" stroke="{colour}" stroke-width="2"{dash} '
                    'marker-end="url(#auth0-obo-arrow-path)"/>'
                )
        x_end = 10 + len(labels) * (box_w + gap) - gap + 12
        parts.append(_counts(x_end, y + row / 2 + 3, path.allowed, path.denied, anchor="start"))
        body.append("".join(parts) + "</g>")
    defs = _arrow_defs("auth0-obo-arrow-path")
    label = "Delegation chains of two or more actors"
    return _svg(width, height, label, [defs, *body], "auth0-obo-paths")


def draw_days(days: Sequence[Day]) -> str:
    """Two bar charts sharing the days: allowed vs denied, then exchange cache hits vs misses."""
    width, left, chart_h = 900.0, 56.0, 130.0
    plot_w = width - left - 10
    step = plot_w / max(len(days), 1)
    bar_w = max(min(step * 0.7, 28.0), 2.0)
    label_every = max(1, math.ceil(len(days) / 12))
    body: list[str] = []
    charts = (
        ("Events per day", "allowed", "denied", ALLOWED_COLOUR, DENIED_COLOUR, "events"),
        ("Exchange cache per day", "hits", "misses", HIT_COLOUR, MISS_COLOUR, "cache"),
    )
    top = 24.0
    for title, low_name, high_name, low_colour, high_colour, kind in charts:
        pairs = [
            (d.allowed, d.denied) if kind == "events" else (d.cache_hits, d.cache_misses)
            for d in days
        ]
        peak = max([a + b for a, b in pairs] + [1])
        scale = _nice(peak)
        base = top + chart_h
        body.append(
            f'<text x="{left:.0f}" y="{top - 8:.0f}" font-size="13" font-weight="600" '
            f'fill="{INK}">{text(title)}</text>'
            + _legend(width - 10, top - 8, [(low_name, low_colour), (high_name, high_colour)])
        )
        for fraction in (0.0, 0.5, 1.0):
            y = base - chart_h * fraction
            body.append(
                f'<line x1="{left:.0f}" x2="{width - 10:.0f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="#cfd8dc" stroke-width="1"/><text x="{left - 6:.0f}" y="{y + 4:.1f}" '
                f'font-size="11" fill="{MUTED}" text-anchor="end">'
                f"{round(scale * fraction):,}</text>"
            )
        for i, (d, (low, high)) in enumerate(zip(days, pairs, strict=True)):
            x = left + step * i + (step - bar_w) / 2
            low_h, high_h = chart_h * low / scale, chart_h * high / scale
            body.append(
                f'<g class="day {kind}" data-day="{d.day.isoformat()}" data-{low_name}="{low}" '
                f'data-{high_name}="{high}"><title>{d.day.isoformat()}: {low:,} {low_name}, '
                f"{high:,} {high_name}</title>"
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar_w:.1f}" height="{chart_h:.1f}" '
                'fill="transparent"/>'
                f'<rect x="{x:.1f}" y="{base - low_h:.1f}" width="{bar_w:.1f}" '
                f'height="{low_h:.1f}" fill="{low_colour}"/>'
                f'<rect x="{x:.1f}" y="{base - low_h - high_h:.1f}" width="{bar_w:.1f}" '
                f'height="{high_h:.1f}" fill="{high_colour}"/></g>'
            )
            if kind == "cache" and (i % label_every == 0 or i == len(days) - 1):
                body.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{base + 16:.0f}" font-size="11" '
                    f'fill="{MUTED}" text-anchor="middle">{d.day.strftime("%b %d")}</text>'
                )
        top = base + 44
    height = top - 14
    return _svg(width, height, "Events and exchange cache per day", body, "auth0-obo-days")


def _nice(peak: int) -> int:
    """The smallest round number (1, 2, 3, 4, 5, 6 or 8 times 10ⁿ) at or above ``peak``."""
    magnitude: int = 10 ** max(len(str(peak)) - 1, 0)
    for step in (1, 2, 3, 4, 5, 6, 8, 10):
        if step * magnitude >= peak:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _legend(right: float, y: float, items: Sequence[tuple[str, str]]) -> str:
    parts, x = [], right
    for name, colour in reversed(items):
        x -= 8 + 6.6 * len(name)
        parts.append(
            f'<rect x="{x - 16:.1f}" y="{y - 10:.1f}" width="11" height="11" fill="{colour}"/>'
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="12" fill="{INK}">{text(name)}</text>'
        )
        x -= 26
    return "".join(parts)


def _arrow_defs(marker_id: str) -> str:
    """An arrowhead of a fixed size (not scaled by the line's width), for ``marker-end``."""
    return (
        f'<defs><marker id="{marker_id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{MUTED}"/></marker></defs>'
    )


def _heading(x: float, label: str) -> str:
    return (
        f'<text x="{x:.0f}" y="16" font-size="12" font-weight="600" fill="{MUTED}">'
        f"{text(label)}</text>"
    )


def _empty(height: float) -> str:
    return (
        f'<text x="10" y="{height / 2 + 4:.0f}" font-size="13" fill="{MUTED}">'
        "No events in this period.</text>"
    )
