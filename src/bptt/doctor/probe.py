"""The learner's code as the doctor drives it: one call that sets weights, runs data and returns gradients.

``adapter.probe`` builds a ``Probe`` from the learner's object or function, whatever its
conventions; ``diagnose`` only ever sees the reference convention of ``spec``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .._types import Array

__all__ = ["Probe"]


@dataclass(frozen=True)
class Probe:
    """The learner, in the reference convention (``spec``'s module docstring).

    Attributes
    ----------
    shapes : Mapping[str, tuple[int, ...]]
        Each role the learner's weights fill, with its shape in the reference convention:
        ``W_ih (I, H)``, ``W_hh (H, H)``, ``W_ho (H, O)`` always; ``b (H,)`` and ``b_o (O,)`` when
        the learner has them.
    names : Mapping[str, str]
        Role to the learner's own name for it, for the report: every weight's role
        (``"W_ih" -> "U"``), and every other gradient role the learner returns (``"x" -> "dx"``).
    batched : bool
        Whether the learner takes ``B > 1`` sequences at once (``run`` then accepts any ``B``; if
        not, only ``B = 1``).
    run : Callable
        ``run(weights, x, y) -> gradients``. ``weights`` maps each role of ``shapes`` to an array
        of that shape; ``x`` is ``(T, B, I)``; ``y`` is ``(T, B, O)``, or ``(B, O)`` with
        ``Spec.steps == "last"``. It writes the weights into the learner's own arrays, runs the
        learner's forward and backward once, and returns copies of the gradients it found, by
        role, converted to the reference convention: each weight role of ``shapes``, and
        ``"x" (T, B, I)``, ``"h0" (B, H)``, ``"delta" (T, B, H)`` where the learner gives them.
        A weight gradient the learner did not return is absent. A gradient whose shape fits
        neither convention is passed on exactly as the learner returned it (the diagnosis
        reports its shape). It resets nothing between calls, so a learner that accumulates
        gradients shows it on the second call. An exception raised in the learner's code
        propagates unchanged, traceback included.
    learner_shape : Callable[[str, tuple[int, ...]], tuple[int, ...]]
        A role's reference-convention shape as the learner writes it (``(I, H)`` becomes
        ``(H, I)`` for column vectors), for the report.
    convention : str
        The learner's conventions in words, e.g. ``"column vectors (W @ x), one sequence as a
        list of (I, 1) steps"``.
    files : tuple[str, ...]
        The files of the learner's code, to find its own frames in a traceback.
    """

    shapes: Mapping[str, tuple[int, ...]]
    names: Mapping[str, str]
    batched: bool
    run: Callable[[Mapping[str, Array], Array, Array], dict[str, Array]]
    learner_shape: Callable[[str, tuple[int, ...]], tuple[int, ...]]
    convention: str
    files: tuple[str, ...]
