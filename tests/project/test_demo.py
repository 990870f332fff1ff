"""The README's demo command runs the whole chain on real local ports and says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_the_whole_on_behalf_of_chain_and_audits_it():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--once"],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
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
