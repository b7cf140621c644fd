"""The training progress bar (tqdm, on stderr), safe against a Ctrl-C while it closes."""

from __future__ import annotations

import signal
import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """The training progress bar; as a context manager it is closed on every way out.

    A signal handled in Python code that runs from a finalizer or an exit hook (tqdm's
    ``__del__``, its monitor thread's ``atexit`` hook) cannot be raised there, only printed
    with a traceback, and a second Ctrl-C tends to land just there, as the command ends. So the
    monitor thread is off, and ``close`` releases the bar inside ``stop_on_interrupt``: a
    signal arriving meanwhile is held, then delivered as soon as the bar is gone.
    """

    def __init__(self, total: int | None, quiet: bool) -> None:
        self.total, self.quiet = total, quiet
        self.resumed_from = 0  # the step before the first one shown (a resumed run's checkpoint)
        self._bar: Any = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, step: int, **postfix: str) -> None:
        """Show that ``step`` is done, with ``postfix`` values beside the bar if given."""
        if self._bar is None:
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread
            self.resumed_from = step - 1
            self._bar = tqdm(
                total=self.total,
                initial=self.resumed_from,
                desc="training",
                unit="step",
                disable=self.quiet,
                leave=False,
                file=sys.stderr,
            )
        self._bar.update(1)
        if postfix:
            self._bar.set_postfix(postfix)

    def close(self) -> None:
        """Clear the bar and release it (tqdm's ``__del__`` runs here) with signals held."""
        from ..stopping import stop_on_interrupt

        with stop_on_interrupt() as held:
            if self._bar is not None:
                self._bar.close()
            self._bar = None
        if held.signum is not None:
            signal.raise_signal(held.signum)
