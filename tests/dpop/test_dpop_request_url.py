"""``absolute_url.request_url``, the URL a proof's ``htu`` is compared with, is exactly what
``request.build_absolute_uri()`` gives without query and fragment — for any path a client can
send, behind trusted proxies, and with the same ALLOWED_HOSTS refusal."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.test import RequestFactory
from hypothesis import example, given, settings
from hypothesis import strategies as st

from django_auth0_obo import absolute_url, dpop
from django_auth0_obo.absolute_url import request_url

#: Characters that matter to URLs: reserved, escapes, spaces, dots, non-ASCII, controls.
URL_CHARACTERS = st.sampled_from(list("/%?#;=:@&+$,!*'()[]~._- \t\"<>\\^`{|}aZ09é€😀\x7f\u0301"))
PATHS = st.lists(st.one_of(URL_CHARACTERS, st.characters(codec="utf-8")), max_size=40).map("".join)


def _without_query(url: str) -> str:
    return url.partition("#")[0].partition("?")[0]


def _normalized(url: str) -> str | None:
    try:
        return dpop.normalize_htu(url)
    except ValueError:
        return None


def _assert_same_url(request: HttpRequest) -> None:
    ours = request_url(request)
    django = _without_query(request.build_absolute_uri())
    assert ours.isascii()
    assert _normalized(ours) == _normalized(django)
    if "/./" not in request.path and "/../" not in request.path:
        # Django only joins dot segments (urljoin) in that case; otherwise the strings are equal
        assert ours == django


@settings(max_examples=300, deadline=None)
@given(path=PATHS, quoted=st.booleans())
@example(path="//evil.example/x", quoted=False)
@example(path="///a//b", quoted=False)
@example(path="/a/./b/../c", quoted=False)
@example(path="/a/b/..", quoted=False)
@example(path="/100%/done", quoted=False)
@example(path="/%41%2F%zz", quoted=False)
@example(path="/sp ace/é/😀", quoted=True)
@example(path="/q?x=1#frag", quoted=False)
@example(path="/q%3Fx%23y", quoted=False)
def test_the_htu_url_is_build_absolute_uri_without_query(path: str, quoted: bool) -> None:
    sent = "/" + (quote(path, safe="") if quoted else path)
    # Given with the origin: RequestFactory splits what it gets as a URL, so a bare "//x/y"
    # would lose "//x" as a host (and "//[" would raise) instead of arriving as the path.
    _assert_same_url(RequestFactory().get(f"http://testserver{sent}"))


#: What a path segment may hold (RFC 3986 pchar) besides escapes, and non-ASCII letters.
SEGMENT_CHARACTERS = st.sampled_from(list("aZ09-._~:@!$&'()*+,;=é€"))
#: Paths as a client may write them: each character literal or percent-escaped (UTF-8).
CLIENT_PATHS = st.lists(
    st.lists(
        st.tuples(SEGMENT_CHARACTERS, st.booleans()).map(
            lambda c: quote(c[0], safe="") if c[1] else c[0]
        ),
        max_size=8,
    ).map("".join),
    min_size=1,
    max_size=4,
).map(lambda segments: "/" + "/".join(segments))


@given(path=CLIENT_PATHS)
@example(path="/api/items;v=1")
@example(path="/api/key=value")
@example(path="/api/items%3Bv%3D1")
@example(path="/:@!$&'()*+,;=")
def test_a_proof_naming_the_url_the_client_sent_matches_the_request_url(path: str) -> None:
    """However the client escapes the path's characters in its request and its ``htu``, Django
    routes the same decoded path, and the proof matches: ``escape_uri_path`` escapes ``;`` and
    ``=`` where clients write them literally."""
    sent = f"http://testserver{path}"
    request = RequestFactory().get(sent)
    assert dpop.comparable_htu(sent) == dpop.comparable_htu(request_url(request))


def test_an_escaped_slash_is_not_the_request_urls_slash() -> None:
    """Django decodes ``%2F`` before routing, but it is not a segment boundary to the client:
    a proof for ``/a%2Fb`` does not name a request for ``/a/b``."""
    request = RequestFactory().get("http://testserver/a/b")
    assert dpop.comparable_htu("http://testserver/a%2Fb") != dpop.comparable_htu(
        request_url(request)
    )


@pytest.mark.parametrize(
    ("settings_", "meta"),
    [
        ({}, {}),
        ({}, {"SERVER_PORT": "8443", "HTTP_HOST": "testserver:8443"}),
        (
            {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https")},
            {"HTTP_X_FORWARDED_PROTO": "https"},
        ),
        (
            {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https")},
            {"HTTP_X_FORWARDED_PROTO": "http, https"},
        ),
        (
            {"USE_X_FORWARDED_HOST": True, "ALLOWED_HOSTS": ["api.example.com"]},
            {"HTTP_X_FORWARDED_HOST": "api.example.com"},
        ),
        ({"USE_X_FORWARDED_PORT": True}, {"HTTP_X_FORWARDED_PORT": "8080"}),
        ({"ALLOWED_HOSTS": ["[::1]"]}, {"HTTP_HOST": "[::1]:8000"}),
    ],
    ids=["plain", "port", "trusted proto", "proto list", "forwarded host", "fwd port", "ipv6"],
)
def test_proxy_settings_apply_as_to_build_absolute_uri(
    settings: Any, settings_: dict[str, Any], meta: dict[str, str]
) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    for name, value in settings_.items():
        setattr(settings, name, value)
    _assert_same_url(RequestFactory().get("/api/whoami", **meta))


def test_a_host_outside_allowed_hosts_is_refused_as_by_build_absolute_uri(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["api.example.com"]
    request = RequestFactory().get("/api/whoami", HTTP_HOST="evil.example")
    with pytest.raises(DisallowedHost):
        request.build_absolute_uri()
    with pytest.raises(DisallowedHost):
        request_url(request)


# The accepted-host memo (``absolute_url``): a remembered host never outlives the settings that
# accepted it, a refused host is never remembered, and Django's own check still decides.


def test_a_remembered_host_is_refused_once_allowed_hosts_no_longer_names_it(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["api.example.com", "old.example.com"]
    request = RequestFactory().get("/api/whoami", HTTP_HOST="old.example.com")
    assert request_url(request) == "http://old.example.com/api/whoami"
    assert request_url(request) == "http://old.example.com/api/whoami"  # now remembered
    settings.ALLOWED_HOSTS = ["api.example.com"]
    with pytest.raises(DisallowedHost):
        request_url(request)


def test_a_change_made_without_a_signal_is_seen_too(settings: Any) -> None:
    """Django's test runner assigns ALLOWED_HOSTS directly; in-place edits send nothing either."""
    settings.ALLOWED_HOSTS = ["api.example.com", "old.example.com"]
    request = RequestFactory().get("/api/whoami", HTTP_HOST="old.example.com")
    request_url(request)
    django_settings.ALLOWED_HOSTS.remove("old.example.com")  # no setting_changed
    with pytest.raises(DisallowedHost):
        request_url(request)


def test_debug_decides_for_localhost_only_while_it_is_on(settings: Any) -> None:
    settings.ALLOWED_HOSTS = []
    settings.DEBUG = True
    request = RequestFactory().get("/api/whoami", HTTP_HOST="localhost:8000")
    assert request_url(request) == "http://localhost:8000/api/whoami"
    settings.DEBUG = False
    with pytest.raises(DisallowedHost):
        request_url(request)


def test_a_refused_host_is_refused_every_time_and_never_remembered(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["api.example.com"]
    request = RequestFactory().get("/api/whoami", HTTP_HOST="evil.example")
    for _ in range(3):
        with pytest.raises(DisallowedHost):
            request_url(request)
    assert "evil.example" not in absolute_url._accepted_hosts


def test_the_remembered_hosts_stay_bounded_whatever_hosts_arrive(settings: Any) -> None:
    settings.ALLOWED_HOSTS = [".example.com"]
    for number in range(absolute_url.MAX_HOSTS * 3):
        host = f"tenant{number}.example.com"
        request = RequestFactory().get("/api/whoami", HTTP_HOST=host)
        assert request_url(request) == f"http://{host}/api/whoami"
        assert len(absolute_url._accepted_hosts) <= absolute_url.MAX_HOSTS


def test_a_request_class_with_its_own_get_host_is_always_asked(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    asked: list[str] = []

    class PinnedHostRequest(HttpRequest):
        def get_host(self) -> str:
            asked.append(self.path)
            return "pinned.example"

    request_url(RequestFactory().get("/api/whoami"))  # testserver, now remembered
    request = PinnedHostRequest()
    request.path = "/api/whoami"
    request.META = {"SERVER_NAME": "testserver", "SERVER_PORT": "80"}
    assert request_url(request) == "http://pinned.example/api/whoami"
    assert request_url(request) == "http://pinned.example/api/whoami"
    assert asked == ["/api/whoami", "/api/whoami"]
