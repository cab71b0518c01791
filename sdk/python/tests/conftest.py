"""Live tests (test_live.py) read the broker and credentials from the environment; without
them they are skipped, unless ``BRADAX_LIVE_REQUIRED=1`` (catraca's CI) makes that a failure.

- ``BRADAX_BASE_URL``: the broker (``http://host:port/api/v1``)
- ``BRADAX_PROJECT_ID`` / ``BRADAX_API_KEY``: a full-tier project and a key with every scope
- ``BRADAX_NARROW_API_KEY``: a key of the same project holding only ``invoke_llm``
- ``BRADAX_STUDENT_PROJECT_ID`` / ``BRADAX_STUDENT_API_KEY``: a student project's key
- ``BRADAX_STUDENT_LIMITED_API_KEY`` / ``BRADAX_STUDENT_RPM``: a key of it with a small rpm
- ``BRADAX_MODEL`` (in the student allow-list) / ``BRADAX_FULL_ONLY_MODEL`` (not in it)
- ``BRADAX_EMBEDDING_MODEL``: passed to graphs' embed nodes when set
"""

from __future__ import annotations

import os

import pytest

LIVE_ENV = [
    "BRADAX_BASE_URL",
    "BRADAX_PROJECT_ID",
    "BRADAX_API_KEY",
    "BRADAX_NARROW_API_KEY",
    "BRADAX_STUDENT_PROJECT_ID",
    "BRADAX_STUDENT_API_KEY",
    "BRADAX_STUDENT_LIMITED_API_KEY",
    "BRADAX_STUDENT_RPM",
]


@pytest.fixture(scope="session")
def live_env() -> dict[str, str]:
    missing = [k for k in LIVE_ENV if not os.environ.get(k)]
    if missing:
        msg = "live broker not configured: " + ", ".join(missing)
        if os.environ.get("BRADAX_LIVE_REQUIRED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    env = {k: os.environ[k] for k in LIVE_ENV}
    env["BRADAX_MODEL"] = os.environ.get("BRADAX_MODEL", "gpt-4o-mini")
    env["BRADAX_FULL_ONLY_MODEL"] = os.environ.get("BRADAX_FULL_ONLY_MODEL", "gpt-4o")
    env["BRADAX_EMBEDDING_MODEL"] = os.environ.get("BRADAX_EMBEDDING_MODEL", "")
    return env
