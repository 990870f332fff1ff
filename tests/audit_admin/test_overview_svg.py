"""The overview's SVG drawings: well-formed for any label, every value escaped and capped, and a
deterministic layout."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo.overview_svg import (
    ChainPath,
    Day,
    Edge,
    clean,
    draw_days,
    draw_graph,
    draw_paths,
)

SVG = "{http://www.w3.org/2000/svg}"


def groups(markup: str, css_class: str) -> list[ET.Element]:
    """Parse as XML (fails on any unescaped markup or control character) and pick groups."""
    root = ET.fromstring(markup)
    return [g for g in root.iter(f"{SVG}g") if css_class in (g.get("class") or "").split()]


@pytest.mark.parametrize(
    ("value", "limit", "expected", "why"),
    [
        ("agent", 10, "agent", "short values are kept"),
        ("a\x00b", 10, "a\ufffdb", "NUL is replaced"),
        ("a\x1b[31mb", 10, "a\ufffd[31mb", "terminal escapes are replaced"),
        ("\u202eevil", 10, "\ufffdevil", "bidi overrides are replaced"),
        ("x" * 20, 10, "x" * 9 + "…", "long values are capped with an ellipsis"),
        ("<b>&", 10, "<b>&", "clean does not escape: text() and attr() do"),
    ],
)
def test_clean_drops_control_characters_and_caps_length(value, limit, expected, why):
    assert clean(value, limit) == expected, why


label = st.text(max_size=400)


@given(actor=label, api=label, user=label)
def test_any_label_gives_well_formed_svg_that_carries_it_back(actor, api, user):
    graph = draw_graph([Edge(actor, api, 3, 1)])
    (edge,) = groups(graph, "edge")
    assert edge.get("data-actor") == clean(actor, 300)
    assert edge.get("data-api") == clean(api, 300)
    paths = draw_paths([ChainPath((actor, "second"), api, 1, user, 2, 0)])
    (path,) = groups(paths, "path")
    assert path.get("data-api") == clean(api, 300)
    nodes = [g.get("data-label") for g in groups(paths, "node")]
    assert nodes == [clean(user, 300), clean(actor, 300), "second", clean(api, 300)]


def test_hostile_labels_never_become_markup():
    hostile = '<script>alert(1)</script>"><svg onload=alert(1)> & \x00'
    markup = draw_graph([Edge(hostile, hostile, 1, 1)]) + draw_paths(
        [ChainPath((hostile, hostile), hostile, 1, hostile, 1, 0)]
    )
    assert "<script" not in markup
    assert "<svg onload" not in markup
    assert "\x00" not in markup
    assert "&lt;script&gt;" in markup


def test_denied_edges_are_red_and_dashed_allowed_ones_green_and_solid():
    graph = draw_graph([Edge("good", "api", 5, 0), Edge("bad", "api", 5, 1)])
    good, bad = groups(graph, "edge")
    assert good.get("data-state") == "allowed"
    assert bad.get("data-state") == "denied"
    good_paths = list(good.iter(f"{SVG}path"))
    bad_paths = list(bad.iter(f"{SVG}path"))
    assert all(p.get("stroke-dasharray") is None for p in good_paths)
    assert all(p.get("stroke-dasharray") for p in bad_paths)
    assert {p.get("stroke") for p in bad_paths} == {"#c62828"}


def test_the_layout_is_deterministic_and_one_row_per_edge():
    edges = [Edge(f"actor-{i % 3}", f"api-{i % 2}", i, i % 2) for i in range(6)]
    assert draw_graph(edges) == draw_graph(list(edges))
    pills = [g.find(f"{SVG}rect") for g in groups(draw_graph(edges), "edge")]
    ys = [float(p.get("y")) for p in pills if p is not None]
    assert ys == sorted(ys)
    assert len(set(ys)) == len(edges)  # labels never overlap


def test_long_chains_keep_the_first_and_current_actor():
    chain = tuple(f"actor-{i}" for i in range(7))
    (path,) = groups(draw_paths([ChainPath(chain, "api", 2, "u", 1, 1)]), "path")
    labels = [g.get("data-label") for g in path.iter(f"{SVG}g") if g is not path]
    assert labels == ["2 users", "actor-0", "actor-1", "… 4 more", "actor-6", "api"]
    assert path.get("data-chain") == " → ".join(chain)


def test_the_day_chart_has_a_bar_per_day_with_its_counts():
    first = date(2026, 3, 27)
    days = [Day(first + timedelta(days=i), 10 * i, i, i % 3, 1) for i in range(5)]
    markup = draw_days(days)
    events = groups(markup, "events")
    cache = groups(markup, "cache")
    assert [e.get("data-day") for e in events] == [d.day.isoformat() for d in days]
    assert [int(e.get("data-allowed")) for e in events] == [d.allowed for d in days]
    assert [int(e.get("data-denied")) for e in events] == [d.denied for d in days]
    assert [int(c.get("data-hits")) for c in cache] == [d.cache_hits for d in days]
    assert [int(c.get("data-misses")) for c in cache] == [d.cache_misses for d in days]


def test_empty_inputs_still_draw():
    assert "No events in this period" in draw_graph([])
    assert draw_paths([]) == ""
    ET.fromstring(draw_days([]))


def test_each_actors_edges_sit_on_consecutive_rows_so_actor_boxes_never_overlap():
    edges = [Edge("a", "x", 9, 0), Edge("b", "x", 8, 0), Edge("a", "y", 7, 0), Edge("c", "y", 1, 0)]
    drawn = [(g.get("data-actor"), g.get("data-api")) for g in groups(draw_graph(edges), "edge")]
    assert drawn == [("a", "x"), ("a", "y"), ("b", "x"), ("c", "y")]
    boxes = [g.find(f"{SVG}rect") for g in groups(draw_graph(edges), "actor")]
    tops = sorted(float(b.get("y")) for b in boxes if b is not None)
    heights = [float(b.get("height")) for b in boxes if b is not None]
    assert all(low + heights[0] <= high for low, high in pairwise(tops))
