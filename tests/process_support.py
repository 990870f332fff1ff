"""Helpers for tests that run the app in other processes against PostgreSQL and Redis
(not a test module): a JSON-line worker, a cache named for one test, and the database fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests import services
from tests.exchange.test_exchange_processes import postgres_database  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("perf_process_worker.py")
#: Redis for these tests: CACHE_URL when it names Redis, else database 4 on the local server.
REDIS_URL = services.redis_url()


def redis_caches() -> dict[str, Any]:
    """A ``CACHES`` whose default is the shared Redis, under a prefix no other test uses (the
    calling test is skipped where no Redis answers; see ``services.require_server``)."""
    services.require_server("redis")
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"perf-test-{uuid.uuid4().hex}",
        }
    }


def local_caches() -> dict[str, Any]:
    return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def worker_env(database: str, obo: dict[str, Any], caches: dict[str, Any], **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        OBO_TEST_DB=database,
        OBO_SETTINGS=json.dumps(obo),
        OBO_CACHE=json.dumps(caches),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, str(WORKER), "migrate"], env=env, check=True, timeout=120)


class Worker:
    """One worker process answering a JSON line per command."""

    def __init__(self, mode: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), mode],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.readline())

    def result(self, timeout: float = 120) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
