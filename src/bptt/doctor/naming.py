"""Which of the learner's arrays plays which role (``W_ih``, ``W_hh``, ``b``, ``W_ho``, ``b_o``), and
whether it writes row or column vectors.

Three sources, in this order of authority:

1. ``names`` (the CLI's ``--map``): fixed;
2. conventional names: ``U``/``W``/``V`` (Britz's tutorial), ``Wxh``/``Whh``/``Why``/``bh``/``by``
   (min-char-rnn), ``Wx``/``Wh``/``b`` (cs231n), ``W_ih``/``W_hh``/``W_ho``, ``weight_ih``, and a
   layer's words: ``hidden.W``, ``W_input``, ``output_layer.b``;
3. shapes: ``W_hh`` is square ``(H, H)``; ``W_ih`` has ``H`` on its output side (``(I, H)`` for
   rows, ``(H, I)`` for columns) and ``W_ho`` on its input side; ``b`` has ``H`` entries and ``b_o``
   ``O`` (as ``(n,)``, ``(1, n)`` or ``(n, 1)``).

``assign`` lists every mapping the shapes allow, keeps those that agree with ``names``, and takes
the one that agrees best with the conventional names (then: the one that fills more roles). When
two are equally good, it refuses, naming the candidates and how to say which is which.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from itertools import product

from .layouts import LAYOUTS, MATRICES
from .spec import ROLES

__all__ = ["Assignment", "assign", "hint"]

Shape = tuple[int, ...]
# (layout, role -> name): one way to read the learner's arrays
Assignment = tuple[str, dict[str, str]]

# Whole names (lower case) that say their role.
_NAMED = {
    "W_ih": "w_ih wih wxh w_xh u wx w_x w_in win weight_ih weight_ih_l0 w_input w_i wi",
    "W_hh": "w_hh whh w wh w_h w_hidden weight_hh weight_hh_l0 w_rec wrec w_recurrent w_s ws",
    "W_ho": "w_ho who why w_hy v wy w_y w_out wout w_output weight_ho w_vocab w_o wo",
    "b": "b bh b_h bias bias_h b_hidden bias_hidden b_hh bhh",
    "b_o": "b_o bo by b_y c b_out bout b_output bias_o bias_out bias_output bias_y b_vocab b_v bv",
}
_ROLE_OF = {word: role for role, words in _NAMED.items() for word in words.split()}
# Words of a layer in a name (``input_layer.W``, ``W_hidden``), matched against its tokens.
_LAYER_WORDS = {
    "in": ("input", "inp", "in", "i2h", "x2h", "ih", "xh"),
    "hid": ("hidden", "hid", "recurrent", "rec", "rnn", "cell", "h2h", "hh"),
    "out": ("output", "out", "readout", "dense", "fc", "linear", "head", "h2o", "decoder", "ho", "hy"),
}
_GENERIC = {"w", "weight", "weights", "b", "bias", "biases", "kernel"}
_BIAS_WORDS = {"b", "bias", "biases"}


def _tokens(text: str) -> list[str]:
    """``"input_layer"`` -> ``["input", "layer"]``; ``"hiddenLayer"`` -> ``["hidden", "layer"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _layer(tokens: list[str]) -> str | None:
    """The layer (``"in"``, ``"hid"``, ``"out"``) that some token names, if exactly one does."""
    layers = {layer for layer, words in _LAYER_WORDS.items() for t in tokens if t in words}
    return layers.pop() if len(layers) == 1 else None


def hint(name: str, shape: Shape) -> str | None:
    """The role the learner's ``name`` (dotted for a sub-object's array: ``hidden.W``) suggests for
    an array of ``shape``, or None.

    A generic leaf (``W``, ``b``, ``weights``) takes its layer from the path (``input_layer.W`` is
    ``W_ih``; ``layers.0.W`` says nothing; a top-level ``W`` is Britz's ``W_hh``); a leaf that says
    its role (``Wxh``, ``U``, ``b_o``) decides; any other leaf with a weight or bias word and a
    layer word (``W_input``, ``bias_out``) takes its role from those words.
    """
    *path, leaf = name.split(".")
    low = leaf.lower()
    layer = None
    if low in _GENERIC and path:  # a layer's own W: its layer says which (no layer word: no hint)
        layer = _layer(_tokens(".".join(path)))
        if layer is None:
            return None
    elif low not in _ROLE_OF:
        tokens = _tokens(leaf)
        if any(t in _GENERIC for t in tokens):
            layer = _layer(tokens)
            low = next(t for t in tokens if t in _GENERIC)
    role = _ROLE_OF.get(low) if layer is None else _role_in(layer, bias=low in _BIAS_WORDS)
    return role if role is not None and _fits(role, shape) else None


def _fits(role: str, shape: Shape) -> bool:
    """A matrix role for a 2-D shape, a bias role for a vector (``(n,)``, ``(1, n)``, ``(n, 1)``)."""
    return len(shape) == 2 if role in MATRICES else _length(shape) is not None


def _role_in(layer: str, *, bias: bool) -> str:
    """The role of a weight matrix or a bias in a layer (``"in"``, ``"hid"``, ``"out"``)."""
    if bias:
        return "b_o" if layer == "out" else "b"
    return {"in": "W_ih", "hid": "W_hh", "out": "W_ho"}[layer]


def _length(shape: Shape) -> int | None:
    """A vector's number of entries: ``(n,)``, ``(1, n)``, ``(n, 1)``; None for anything else."""
    if len(shape) == 1:
        return shape[0]
    if len(shape) == 2 and 1 in shape:
        return shape[0] * shape[1]
    return None


def _mappings(shapes: Mapping[str, Shape], layout: str) -> Iterator[dict[str, str]]:
    """Every role -> name mapping that the shapes allow in ``layout``."""
    matrices = [n for n, s in shapes.items() if len(s) == 2]
    side = 1 if layout == "row" else 0  # where W_ih keeps H: (I, H) or (H, I)
    for hh in (n for n in matrices if shapes[n][0] == shapes[n][1]):
        H = shapes[hh][0]
        ihs = [n for n in matrices if n != hh and shapes[n][side] == H]
        hos = [n for n in matrices if n != hh and shapes[n][1 - side] == H]
        for ih, ho in product(ihs, hos):
            if ih != ho:
                weights = {"W_ih": ih, "W_hh": hh, "W_ho": ho}
                yield from _with_biases(weights, shapes, H, shapes[ho][side])


def _with_biases(
    weights: dict[str, str], shapes: Mapping[str, Shape], H: int, O: int
) -> Iterator[dict[str, str]]:
    """``weights`` with each choice of ``b`` (``H`` entries) and ``b_o`` (``O``), none included."""
    free = [n for n, s in shapes.items() if n not in weights.values() and _length(s) is not None]
    bs = [None, *(n for n in free if _length(shapes[n]) == H)]
    bos = [None, *(n for n in free if _length(shapes[n]) == O)]
    for b, bo in product(bs, bos):
        if b is None or b != bo:
            biases = {role: n for role, n in (("b", b), ("b_o", bo)) if n is not None}
            yield weights | biases


def _score(mapping: dict[str, str], hints: Mapping[str, str | None]) -> tuple[int, int]:
    """(names that agree - names that disagree, roles filled): the larger, the better."""
    agree = sum(1 for role, name in mapping.items() if hints[name] == role)
    disagree = sum(1 for role, name in mapping.items() if hints[name] not in (None, role))
    return agree - disagree, len(mapping)


def _check_names(shapes: Mapping[str, Shape], names: Mapping[str, str]) -> None:
    """Refuse a name that is no weight, a role that is none, and one role named twice."""
    listing = _listing(shapes, shapes)
    seen: dict[str, str] = {}
    for name, role in names.items():
        if name not in shapes:
            raise ValueError(
                f"doctor: names has {name!r}, which is not one of the learner's weights: {listing}"
            )
        if role not in ROLES:
            raise ValueError(
                f"doctor: names maps {name!r} to {role!r}, which is no role; the roles are {', '.join(ROLES)}"
            )
        if role in seen:
            raise ValueError(f"doctor: names gives two names for {role}: {seen[role]!r} and {name!r}")
        seen[role] = name


def _listing(names: Iterable[str], shapes: Mapping[str, Shape]) -> str:
    """``"U (2, 16), V (16, 1)"``."""
    return ", ".join(f"{n} {shapes[n]}" for n in names)


def assign(
    shapes: Mapping[str, Shape], names: Mapping[str, str] | None = None, layout: str | None = None
) -> Assignment:
    """The layout and role -> name mapping of the learner's arrays.

    Parameters
    ----------
    shapes : Mapping[str, tuple of int]
        The learner's float arrays, name -> shape (each 1-D or 2-D).
    names : Mapping[str, str], optional
        Learner name -> role, fixed.
    layout : str, optional
        ``"row"`` or ``"column"``; None: inferred.

    Returns
    -------
    (layout, mapping)
        ``mapping`` has ``W_ih``, ``W_hh``, ``W_ho`` and, where the learner has them, ``b``, ``b_o``.

    Raises
    ------
    ValueError
        A bad ``names``; shapes that fit no RNN; or two readings equally good, with the candidates.
    """
    fixed = dict(names or {})
    _check_names(shapes, fixed)
    hints = {n: hint(n, s) for n, s in shapes.items()}
    readings = [
        (lay, m)
        for lay in ([layout] if layout is not None else LAYOUTS)
        for m in _mappings(shapes, lay)
        if all(m.get(role) == name for name, role in fixed.items())
    ]
    if not readings:
        raise ValueError(_no_fit(shapes, fixed, layout))
    best = max(_score(m, hints) for _, m in readings)
    tied = [(lay, m) for lay, m in readings if _score(m, hints) == best]
    if len(tied) > 1:
        raise ValueError(_ambiguity(tied, shapes))
    return tied[0]


def _no_fit(shapes: Mapping[str, Shape], fixed: Mapping[str, str], layout: str | None) -> str:
    """Why no reading of the shapes is an RNN."""
    listing = _listing(shapes, shapes)
    squares = [n for n, s in shapes.items() if len(s) == 2 and s[0] == s[1]]
    hh = [n for n, role in fixed.items() if role == "W_hh"]
    if hh and hh[0] not in squares:
        return f"doctor: W_hh is square (H, H), but names maps {hh[0]!r} {shapes[hh[0]]} to it"
    if not squares:
        return f"doctor: none of the learner's weights is square, so none can be W_hh (H, H): {listing}"
    how = f"as {layout} vectors " if layout is not None else ""
    given = f" with names={dict(fixed)}" if fixed else ""
    return (
        f"doctor: the learner's weights fit no RNN {how}with W_ih (I, H), W_hh (H, H), W_ho (H, O), "
        f"b (H,), b_o (O,) (transposed for column vectors){given}: {listing}"
    )


def _ambiguity(tied: list[Assignment], shapes: Mapping[str, Shape]) -> str:
    """The first role that equally good readings fill differently, its candidates, how to say it."""
    layouts = sorted({lay for lay, _ in tied})
    for role in ROLES:
        candidates = sorted({m[role] for _, m in tied if role in m})
        if len(candidates) > 1 or (candidates and any(role not in m for _, m in tied)):
            first = candidates[0]
            also = " or layout='row' / 'column' (--layout)" if len(layouts) > 1 else ""
            return (
                f"doctor: cannot tell which of {_listing(candidates, shapes)} is {role}; "
                f"give names={{{first!r}: {role!r}, ...}} (--map {first}={role}){also}"
            )
    m = tied[0][1]
    return (
        "doctor: cannot tell whether the learner writes row vectors (x @ W, W_ih (I, H)) or column "
        f"vectors (W @ x, W_ih (H, I)): W_ih {m['W_ih']} is {shapes[m['W_ih']]} and W_ho {m['W_ho']} is "
        f"{shapes[m['W_ho']]}; give layout='row' or layout='column' (--layout row)"
    )
