"""Test-session setup shared by every test module."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def interactive_sigint() -> Iterator[None]:
    """Run as under an interactive shell, where Ctrl-C raises ``KeyboardInterrupt``.

    A shell starts a background job (``cmd &``, as CI may) with SIGINT ignored, and an ignored
    signal is inherited across ``exec``: the signal tests, in this process and in the children it
    starts, would then test a process that has chosen to ignore Ctrl-C (a case bptt honours and
    ``tests/test_signals.py`` checks on purpose). A Python handler here is reset to the default
    in every child, so they start as from a terminal too.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def default_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default ``BPTT_BACKEND`` (compiled loops where numba is), whatever the shell has set."""
    monkeypatch.delenv("BPTT_BACKEND", raising=False)
