"""The README's demo command runs the whole chain on real local ports and says so."""

from __future__ import annotations

import json

from tests.demo_run import DemoRun


def test_the_demo_runs_the_whole_on_behalf_of_chain_and_audits_it(demo_run: DemoRun):
    result = demo_run.result
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "Demo completed" in out
    assert "token-endpoint calls for the two requests: 1" in out
    assert '"cache_hit": true' in out
    assert "actor_not_allowed" in out
    assert "DPoP proof replayed" in out
    assert "denied  actor_not_allowed" in out
    assert "/admin/django_auth0_obo/delegationevent/" in out
    assert "/admin/django_auth0_obo/delegationevent/overview/" in out
    # The MCP path: the official client's own OAuth, then one exchange for two tool calls.
    assert "/mcp  → 401" in out
    assert "/.well-known/oauth-protected-resource/mcp  → 200" in out
    assert "/oidc/register  → 201" in out
    assert "/authorize  → 302" in out
    assert "token-endpoint exchanges for the two tool calls: 1" in out
    assert "MCP path completed." in out
    assert "request  allowed -                  auth0|alice → calendar-mcp-server" in out
    assert "auth0_obo.W" not in out + result.stderr  # no system check warning mid-output


def test_the_demo_keeps_its_database_and_its_audit_rows_load_as_a_fixture(demo_run: DemoRun):
    """``--keep-db`` leaves the rows a test can read (the overview browser test draws them)."""
    assert demo_run.result.returncode == 0, demo_run.result.stdout[-2000:]
    assert f"copied to {demo_run.database}" in demo_run.result.stdout
    rows = json.loads(demo_run.audit_rows.read_text())
    assert {r["model"] for r in rows} == {"django_auth0_obo.delegationevent"}
    seen = {(r["fields"]["current_actor"], r["fields"]["outcome"]) for r in rows}
    assert ("rogue-agent", "denied") in seen
    assert ("calendar-mcp-server", "allowed") in seen
