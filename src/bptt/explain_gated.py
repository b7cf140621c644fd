"""``bptt.explain`` for the gated cells: LSTM and GRU gate equations and each gate's share of δ.

Like the rest of ``explain``, every printed term is evaluated from the engine's own arrays (the
cell's ``forward_cache()`` and per-step δ ``grad_a``/``grad_r``), and each relation is recorded as an
identity that ``Explanation.errors()`` checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._types import Array
from .functional import sigmoid
from .recurrent import GRU, LSTM

if TYPE_CHECKING:
    from .explain import Explanation

__all__ = ["gated_backward", "gated_forward"]


def _s(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else "(" + ",".join(str(n) for n in shape) + ")"


def _suffix(v: str) -> str:
    return v[1:] if v.startswith("h") else f"_{v}"


def gated_forward(ex: Explanation, layer: LSTM | GRU, u: str, v: str, xin: Array, out: Array) -> None:
    """Forward equations of an LSTM or GRU, one step at a time, with shapes and values."""
    from .explain import Line

    T, B, I = xin.shape
    H = layer.hidden_size
    W_ih, W_hh = layer.params["W_ih"], layer.params["W_hh"]
    b = layer.params["b"] if layer.bias else 0.0
    cache = layer.forward_cache()
    gates = cache["gates"]
    sfx = _suffix(v)
    bh, G = _s((B, H)), W_ih.shape[1]
    h0 = layer.initial_state(B)
    ex.forward.append(Line(f"{v}_0", "given h0" if layer.h0 is not None else "0", bh, h0))
    hs = np.concatenate([h0[None], out])
    if isinstance(layer, LSTM):
        c = cache["c"]
        ex.forward.append(Line(f"c{sfx}_0", "given c0" if layer.c0 is not None else "0", bh, c[0]))
        for t in range(1, T + 1):
            z = xin[t - 1] @ W_ih + hs[t - 1] @ W_hh + b
            plus_b = " + b" if layer.bias else ""
            ex.forward.append(
                Line(
                    f"z{sfx}_{t}",
                    f"{u}_{t} @ W_ih + {v}_{t - 1} @ W_hh{plus_b}",
                    f"{_s((B, I))}@{_s((I, G))} + {bh}@{_s((H, G))} -> {_s((B, G))}, blocks [i|f|g|o]",
                    z,
                )
            )
            act = np.concatenate(
                [sigmoid(z[:, : 2 * H]), np.tanh(z[:, 2 * H : 3 * H]), sigmoid(z[:, 3 * H :])], 1
            )
            ex.forward.append(
                Line(f"i,f,g,o{sfx}_{t}", f"σ, σ, tanh, σ of z{sfx}_{t}'s blocks", f"4×{bh}", gates[t - 1])
            )
            ex.identities.append(("LSTM gates = σ/tanh(z)", act, gates[t - 1]))
            i, f, g, o = (gates[t - 1][:, k * H : (k + 1) * H] for k in range(4))
            ex.forward.append(Line(f"c{sfx}_{t}", f"f ⊙ c{sfx}_{t - 1} + i ⊙ g", f"{bh} -> {bh}", c[t]))
            ex.identities.append(("c_t = f ⊙ c_{t-1} + i ⊙ g", f * c[t - 1] + i * g, c[t]))
            ex.forward.append(Line(f"{v}_{t}", f"o ⊙ tanh(c{sfx}_{t})", f"{bh} -> {bh}", out[t - 1]))
            ex.identities.append(("h_t = o ⊙ tanh(c_t)", o * np.tanh(c[t]), out[t - 1]))
        return
    hn = cache["hn"]
    for t in range(1, T + 1):
        a = xin[t - 1] @ W_ih + b
        rec = hs[t - 1] @ W_hh
        if layer.bias:
            rec[:, 2 * H :] += layer.params["b_hn"]
        ex.forward.append(
            Line(
                f"â{sfx}_{t}",
                f"{u}_{t} @ W_ih" + (" + b" if layer.bias else ""),
                f"{_s((B, I))}@{_s((I, G))} -> {_s((B, G))}, blocks [r|z|n]",
                a,
            )
        )
        ex.forward.append(
            Line(
                f"ĥ{sfx}_{t}",
                f"{v}_{t - 1} @ W_hh" + (" + [0|0|b_hn]" if layer.bias else ""),
                f"{bh}@{_s((H, G))} -> {_s((B, G))}",
                rec,
            )
        )
        r, z, n = (gates[t - 1][:, k * H : (k + 1) * H] for k in range(3))
        ex.identities.append(("GRU ĥ_n = h W_hn + b_hn", rec[:, 2 * H :], hn[t - 1]))
        ex.forward.append(
            Line(f"r,z{sfx}_{t}", "σ(â_r + ĥ_r), σ(â_z + ĥ_z)", f"2×{bh}", gates[t - 1][:, : 2 * H])
        )
        ex.identities.append(
            ("r, z = σ(â + ĥ)", sigmoid(a[:, : 2 * H] + rec[:, : 2 * H]), gates[t - 1][:, : 2 * H])
        )
        ex.forward.append(Line(f"n{sfx}_{t}", "tanh(â_n + r ⊙ ĥ_n)", bh, n))
        ex.identities.append(("n = tanh(â_n + r ⊙ ĥ_n)", np.tanh(a[:, 2 * H :] + r * rec[:, 2 * H :]), n))
        ex.forward.append(Line(f"{v}_{t}", f"(1 - z) ⊙ n + z ⊙ {v}_{t - 1}", bh, out[t - 1]))
        ex.identities.append(("h_t = (1-z) ⊙ n + z ⊙ h_{t-1}", (1 - z) * n + z * hs[t - 1], out[t - 1]))


def gated_backward(
    ex: Explanation,
    layer: LSTM | GRU,
    pre: str,
    u: str,
    v: str,
    xin: Array,
    out: Array,
    up: Array,
    grad_in: Array,
) -> None:
    """BPTT through an LSTM or GRU step by step, each gate's contribution to δ, and the sums."""
    from .explain import GradientSum, Line, _bias_sum, _outer_sum

    T, B, I = xin.shape
    H = layer.hidden_size
    W_ih, W_hh = layer.params["W_ih"], layer.params["W_hh"]
    gates = layer.forward_cache()["gates"]
    sfx = _suffix(v)
    bh = _s((B, H))
    hs = np.concatenate([layer.initial_state(B)[None], out])
    d_in = layer.grad_a  # δ of the input-side pre-activations, (T, B, G·H)
    d_rec = layer.grad_r if isinstance(layer, GRU) else d_in
    dh_next, dc_next = np.zeros((B, H)), np.zeros((B, H))
    for t in range(T, 0, -1):
        from_next = d_rec[t] @ W_hh.T if t < T else 0.0
        if isinstance(layer, GRU) and t < T:
            from_next = from_next + dh_next * gates[t][:, H : 2 * H]  # h_t also reaches h_{t+1} through z
        dh = up[t - 1] + from_next
        via = (
            ""
            if t == T
            else (
                f" + δ{v}_{t + 1} ⊙ z_{t + 1} + δĥ_{t + 1} @ W_hhᵀ"
                if isinstance(layer, GRU)
                else f" + δz{sfx}_{t + 1} @ W_hhᵀ"
            )
        )
        ex.backward.append(Line(f"δ{v}_{t}", f"∂L/∂{v}_{t} from its output{via}", bh, dh))
        if isinstance(layer, LSTM):
            c = layer.forward_cache()["c"]
            i, f, g, o = (gates[t - 1][:, k * H : (k + 1) * H] for k in range(4))
            tc = np.tanh(c[t])
            dc = dh * o * (1 - tc * tc) + (dc_next * gates[t][:, H : 2 * H] if t < T else 0.0)
            via_c = "" if t == T else f" + δc{sfx}_{t + 1} ⊙ f_{t + 1}"
            ex.backward.append(Line(f"δc{sfx}_{t}", f"δ{v}_{t} ⊙ o ⊙ (1 - tanh²c{sfx}_{t}){via_c}", bh, dc))
            dz = np.concatenate(
                [
                    dc * g * i * (1 - i),
                    dc * c[t - 1] * f * (1 - f),
                    dc * i * (1 - g * g),
                    dh * tc * o * (1 - o),
                ],
                1,
            )
            ex.backward.append(
                Line(
                    f"δz{sfx}_{t}",
                    "[δc ⊙ g ⊙ i(1-i) | δc ⊙ c_{t-1} ⊙ f(1-f) | δc ⊙ i ⊙ (1-g²) | δh ⊙ tanh(c) ⊙ o(1-o)]",
                    f"4×{bh} -> {_s((B, 4 * H))}",
                    dz,
                )
            )
            ex.identities.append(("δz_t: each gate's share", dz, d_in[t - 1]))
            dc_next = dc
        else:
            r, z, n = (gates[t - 1][:, k * H : (k + 1) * H] for k in range(3))
            hn = layer.forward_cache()["hn"][t - 1]
            dn = dh * (1 - z) * (1 - n * n)
            dz_ = dh * (hs[t - 1] - n) * z * (1 - z)
            dr = dn * hn * r * (1 - r)
            ex.backward.append(Line(f"δn̂{sfx}_{t}", f"δ{v}_{t} ⊙ (1 - z) ⊙ (1 - n²)", bh, dn))
            ex.backward.append(Line(f"δẑ{sfx}_{t}", f"δ{v}_{t} ⊙ ({v}_{t - 1} - n) ⊙ z(1 - z)", bh, dz_))
            ex.backward.append(Line(f"δr̂{sfx}_{t}", "δn̂ ⊙ ĥ_n ⊙ r(1 - r)", bh, dr))
            ex.backward.append(
                Line(f"δĥ{sfx}_{t}", "[δr̂ | δẑ | δn̂ ⊙ r]  (the recurrent side)", _s((B, 3 * H)), d_rec[t - 1])
            )
            ex.identities.append(("GRU δâ_t", np.concatenate([dr, dz_, dn], 1), d_in[t - 1]))
            ex.identities.append(("GRU δĥ_t", np.concatenate([dr, dz_, dn * r], 1), d_rec[t - 1]))
        dh_next = dh
    h_0_grad = d_rec[0] @ W_hh.T + (dh_next * gates[0][:, H : 2 * H] if isinstance(layer, GRU) else 0.0)
    ex.backward.append(Line(f"δ{v}_0", "(the same rule, one step before the first)", bh, h_0_grad))
    assert layer.grad_h0 is not None
    ex.identities.append(("δh_0", h_0_grad, layer.grad_h0))
    if isinstance(layer, LSTM):
        dc0 = dc_next * gates[0][:, H : 2 * H]
        ex.backward.append(Line(f"δc{sfx}_0", f"δc{sfx}_1 ⊙ f_1", bh, dc0))
        assert layer.grad_c0 is not None
        ex.identities.append(("δc_0 = δc_1 ⊙ f_1", dc0, layer.grad_c0))
    ex.backward.append(
        Line(
            f"δ{u}_t",
            "δâ_t @ W_ihᵀ" if isinstance(layer, GRU) else f"δz{sfx}_t @ W_ihᵀ",
            f"{_s((B, W_ih.shape[1]))}@{_s(W_ih.T.shape)} -> {_s((B, I))}, t = 1..{T}",
            grad_in,
        )
    )
    ex.identities.append(("δx = δ(input side) @ W_ihᵀ", d_in @ W_ih.T, grad_in))
    name = "δâ" if isinstance(layer, GRU) else f"δz{sfx}"
    rec_name = "δĥ" if isinstance(layer, GRU) else f"δz{sfx}"
    grads: list[GradientSum] = [
        _outer_sum(
            pre + "W_ih",
            W_ih.shape,
            [(f"{u}_{t}", xin[t - 1]) for t in range(1, T + 1)],
            [(f"{name}_{t}", d_in[t - 1]) for t in range(1, T + 1)],
        ),
        _outer_sum(
            pre + "W_hh",
            W_hh.shape,
            [(f"{v}_{t - 1}", hs[t - 1]) for t in range(1, T + 1)],
            [(f"{rec_name}_{t}", d_rec[t - 1]) for t in range(1, T + 1)],
        ),
    ]
    if layer.bias:
        grads.append(_bias_sum(pre + "b", [(f"{name}_{t}", d_in[t - 1]) for t in range(1, T + 1)]))
        if isinstance(layer, GRU):
            gs = _bias_sum(pre + "b_hn", [(f"δĥ_n,{t}", d_rec[t - 1][:, 2 * H :]) for t in range(1, T + 1)])
            gs.label = "db_hn"
            grads.append(gs)
    ex.gradients[0:0] = grads
