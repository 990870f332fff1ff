"""A separate Python process for the memo-revocation and audit-outage tests (not a test module).

Django is configured by ``exchange_process_worker.setup`` against the PostgreSQL database
``OBO_TEST_DB`` and, for the cache, ``OBO_CACHE`` (a JSON ``CACHES`` dict), with
``OBO_SETTINGS`` as ``AUTH0_OBO``. Commands:

- ``migrate``: create the tables.
- ``serve``: print ``ready``, then answer one JSON line per command line on stdin:
  ``get`` (exchange ``OBO_SUBJECT`` for ``OBO_AUDIENCE``; a hash of the token, never the token,
  and whether the cache answered), ``revoke`` (revoke every cached token), ``quit``.
- ``audit-outage``: queue ``OBO_EVENTS`` audit rows, one per ``OBO_PAUSE`` seconds, through the
  buffered writer thread while the parent cuts the database; then flush until the database takes
  everything and print what was queued and how many flushes the database refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time


def serve() -> None:
    from django_auth0_obo import signals
    from django_auth0_obo.exchange import get_token_on_behalf_of
    from django_auth0_obo.models import ExchangedToken
    from django_auth0_obo.token_cache import revoke_tokens

    seen: list[bool] = []
    signals.token_exchanged.connect(lambda sender, **kw: seen.append(kw["cache_hit"]), weak=False)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "get":
            result = get_token_on_behalf_of(
                os.environ["OBO_SUBJECT"], os.environ["OBO_AUDIENCE"], os.environ["OBO_SCOPE"]
            )
            digest = hashlib.sha256(result["access_token"].encode()).hexdigest()
            answer: dict[str, object] = {"token_sha256": digest, "cache_hit": seen[-1]}
        elif command == "revoke":
            answer = {"revoked": revoke_tokens(ExchangedToken.objects.all())}
        else:
            return
        print(json.dumps(answer), flush=True)


class _Refusals(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "kept for the next flush" in record.getMessage():
            self.count += 1


def audit_outage() -> dict[str, int]:
    from django_auth0_obo import audit

    refusals = _Refusals()
    logging.basicConfig(stream=sys.stderr)  # what the writer says lands in the test's output
    logging.getLogger("django_auth0_obo").addHandler(refusals)
    events, pause = int(os.environ["OBO_EVENTS"]), float(os.environ["OBO_PAUSE"])
    print("ready", flush=True)
    for i in range(events):
        audit.write_event(
            {
                "kind": "request",
                "subject": f"auth0|outage-{i}",
                "outcome": "allowed",
                "path": "/outage",
            }
        )
        time.sleep(pause)
    written_at_end = 0
    deadline = time.monotonic() + 60
    while audit.audit_buffer.buffer.accounted() and time.monotonic() < deadline:
        written_at_end += audit.flush()
        time.sleep(0.2)
    return {
        "queued": events,
        "refused_flushes": refusals.count,
        "left": audit.audit_buffer.buffer.accounted(),
    }


if __name__ == "__main__":
    from exchange_process_worker import setup  # the same directory: on sys.path as a script

    setup()
    if sys.argv[1] == "migrate":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    elif sys.argv[1] == "serve":
        serve()
    else:
        print(json.dumps(audit_outage()), flush=True)
