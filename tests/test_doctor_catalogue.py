"""The doctor's proof: learner-style RNNs, one correct per convention and one per catalogue mistake.

Each file in ``tests/doctor_learners/`` (and the two seed adders in ``examples/``) is written the
way a learner writes an RNN (Britz's, min-char-rnn's, cs231n's, PyTorch's layout, the seed's one
class per layer, a plain function) and declares what it is in a module-level ``DOCTOR`` dict:
the class or function to check, the ``check`` settings, the full name -> role map, its layout and
its planted mistake (``None`` for a correct one).

Part 1 proves the learners themselves, with no doctor involved: every correct one agrees with
torch autograd in float64 (rtol 1e-9) in every gradient it returns, and every buggy one does not
(the seed's mistake raises NumPy's shape error). Part 2 holds the doctor to them: a clean bill of
health for every correct learner, the planted mistake named first for every buggy one, and for
the seed's own layer classes the corrected term printed.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# The seed adders are examples for newcomers: their settings live here, not in the files.
SEED_SETTINGS = {"activation": "sigmoid", "output": "sigmoid", "loss": "half_mse", "data": "steps"}
SEED_ROLES = {"input.W": "W_ih", "hidden.W": "W_hh", "output.W": "W_ho"}
EXAMPLE_DOCTOR = {
    "seed_adder.py": {"bug": "seed-shape-mistake"},
    "seed_adder_fixed.py": {"bug": None},
}
FILES = sorted((ROOT / "tests" / "doctor_learners").glob("*.py")) + [EXAMPLES / n for n in EXAMPLE_DOCTOR]
KEYS = (
    "missing-recurrence",
    "last-step-only",
    "no-activation-derivative",
    "activation-derivative-twice",
    "derivative-of-preactivation",
    "recurrent-weight-not-transposed",
    "gradient-transposed",
    "off-by-one",
    "accumulating-gradients",
    "flipped-sign",
    "scale",
    "seed-shape-mistake",
    "h0-gradient",
    "bias-not-summed",
    "overwritten-cache",
)
GRADIENT_FORMS = ("{}", "d{}", "grad_{}", "{}_grad", "d_{}")
# The other gradients: keys of a returned dict; on an object, the same less the bare "x" and "h0"
# (there they are the learner's own input and state).
EXTRA_KEYS = {"x": ("x", "dx", "grad_x"), "h0": ("h0", "dh0", "grad_h0"), "delta": ("delta", "deltas")}


def _load(path: Path) -> tuple[ModuleType, dict[str, Any]]:
    """A fresh copy of the learner's module (its weights untouched by other tests) and its DOCTOR."""
    spec = importlib.util.spec_from_file_location(f"doctor_learner_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if path.parent == EXAMPLES:
        doctor = {
            "learner": "AdderRNN",
            "check": SEED_SETTINGS,
            "roles": SEED_ROLES,
            "layout": "row",
            **EXAMPLE_DOCTOR[path.name],
        }
    else:
        doctor = module.DOCTOR
    return module, doctor


def _build(module: ModuleType, doctor: dict[str, Any]) -> Any:
    """The learner: an instance of its class (default sizes), or its function."""
    target = getattr(module, doctor["learner"])
    return target() if isinstance(target, type) else target


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_every_mistake_is_planted_and_every_convention_has_a_correct_learner() -> None:
    """The catalogue is complete: each key planted, the scale twice, correct learners in every data
    layout, both weight layouts, objects and functions."""
    doctors = [_load(p)[1] for p in FILES]
    planted = [d["bug"] for d in doctors if d["bug"] is not None]
    assert set(planted) == set(KEYS)
    assert planted.count("scale") == 2
    correct = [d for d in doctors if d["bug"] is None]
    assert {d["check"].get("data", "sequence") for d in correct} == {
        "sequence",
        "time-major",
        "batch-major",
        "steps",
        "column-steps",
    }
    assert {d["layout"] for d in correct} == {"row", "column"}
    assert {"weights" in d for d in correct} == {True, False}  # functions and objects


# --- the learners in and out of the reference convention (independent of the doctor's adapter) ---


def _roles_shapes(
    learner_arrays: dict[str, np.ndarray], roles: dict[str, str], layout: str
) -> dict[str, tuple]:
    """Each role's shape in the reference convention (row vectors, biases 1-D)."""
    out = {}
    for name, role in roles.items():
        shape = learner_arrays[name].shape
        if role in ("b", "b_o"):
            out[role] = (int(np.prod(shape)),)
        else:
            out[role] = shape[::-1] if layout == "column" else shape
    return out


def _owner(learner: Any, name: str) -> tuple[Any, str]:
    """The object that holds ``name`` (``hidden.W`` -> the hidden layer) and the leaf name."""
    *path, leaf = name.split(".")
    for part in path:
        learner = getattr(learner, part)
    return learner, leaf


def _learner_arrays(module: ModuleType, learner: Any, doctor: dict[str, Any]) -> dict[str, np.ndarray]:
    """The learner's own weight arrays, by its names."""
    where = doctor.get("weights")
    if isinstance(where, str):
        return {n: getattr(module, where)[n] for n in doctor["roles"]}
    if isinstance(where, tuple):
        return {n: getattr(module, n) for n in doctor["roles"]}
    arrays = {}
    for name in doctor["roles"]:
        owner, leaf = _owner(learner, name)
        arrays[name] = getattr(owner, leaf) if hasattr(owner, leaf) else owner.params[leaf]
    return arrays


def _to_learner(a: np.ndarray, data: str) -> Any:
    """``x (T, B, F)`` / ``y (T, B, O)`` or ``y (B, O)`` (last step only) in the learner's data layout."""
    if a.ndim == 2:
        return {"sequence": a[0], "column-steps": a.T}.get(data, a).copy()
    if data == "sequence":
        return a[:, 0].copy()
    if data == "batch-major":
        return a.transpose(1, 0, 2).copy()
    if data == "steps":
        return [s.copy() for s in a]
    if data == "column-steps":
        return [s.T.copy() for s in a]
    return a.copy()


def _series_back(g: Any, data: str, layout: str, what: str) -> np.ndarray:
    """A per-step gradient (``x`` in the data's layout, ``delta`` in the states') as ``(T, B, F)``."""
    g = np.stack(g) if isinstance(g, list) else np.asarray(g)
    if g.ndim == 2:  # one sequence: (T, F)
        return g[:, None, :]
    if data == "batch-major":
        return g.transpose(1, 0, 2)
    if data == "column-steps" or (what == "delta" and layout == "column"):
        return g.transpose(0, 2, 1)
    return g


def _state_back(g: np.ndarray, data: str) -> np.ndarray:
    """The initial state's gradient as ``(B, H)``."""
    if g.ndim == 1:
        return g[None, :]
    return g.T if data == "column-steps" else g


def _found(holder: Any, leaf: str, forms: tuple[str, ...]) -> Any:
    """The first of ``forms`` filled with ``leaf`` found in a dict, or as an attribute / ``grads`` entry."""
    for form in forms:
        key = form.format(leaf)
        if isinstance(holder, dict):
            if key in holder:
                return holder[key]
        elif key != leaf and hasattr(holder, key):
            return getattr(holder, key)
        elif isinstance(getattr(holder, "grads", None), dict) and key in holder.grads:
            return holder.grads[key]
    return None


def _run(module: ModuleType, learner: Any, doctor: dict[str, Any], w: dict[str, np.ndarray], x, y) -> dict:
    """Write the reference weights ``w`` into the learner, run it once, and return what it gave,
    by role, in the reference convention (a gradient of the wrong size comes back as it is)."""
    settings, layout = doctor["check"], doctor["layout"]
    data = settings.get("data", "sequence")
    arrays = _learner_arrays(module, learner, doctor)
    for name, role in doctor["roles"].items():
        value = w[role].T if layout == "column" and role not in ("b", "b_o") else w[role]
        arrays[name][...] = value.reshape(arrays[name].shape)
    xl, yl = _to_learner(x, data), _to_learner(y, data)
    if "weights" in doctor:
        returned = learner(xl, yl)
    else:
        learner.forward(xl)
        two = len(inspect.signature(learner.backward).parameters) == 2
        returned = learner.backward(xl, yl) if two else learner.backward(yl)
    out = {}
    for name, role in doctor["roles"].items():
        owner, leaf = (None, name) if isinstance(returned, dict) else _owner(learner, name)
        g = _found(returned if isinstance(returned, dict) else owner, leaf, GRADIENT_FORMS)
        if g is not None:
            g = np.array(g, dtype=float)
            if role in ("b", "b_o") and g.size == w[role].size:
                g = g.reshape(w[role].shape)
            elif layout == "column" and role not in ("b", "b_o"):
                g = g.T
            out[role] = g
    for role, keys in EXTRA_KEYS.items():
        holder = returned if isinstance(returned, dict) else learner
        g = _found(holder, "", keys if isinstance(returned, dict) or role == "delta" else keys[1:])
        if g is not None:
            out[role] = (
                _state_back(np.asarray(g), data) if role == "h0" else _series_back(g, data, layout, role)
            )
    return out


# --- the oracle: torch autograd, float64 -----------------------------------------------------------


def _torch_gradients(
    settings: dict[str, str], w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> dict:
    """Every gradient of the reference network (spec.py) by autograd: the weights', x, h0, δa_t."""
    act = getattr(torch, settings.get("activation", "tanh"))
    tw = {r: torch.tensor(v, requires_grad=True) for r, v in w.items()}
    tx = torch.tensor(x, requires_grad=True)
    T, B, _ = x.shape
    h0 = torch.zeros(B, w["W_hh"].shape[0], dtype=torch.float64, requires_grad=True)
    h, pre, outs = h0, [], []
    every = settings.get("steps", "every") == "every"
    for t in range(T):
        a = tx[t] @ tw["W_ih"] + h @ tw["W_hh"] + tw.get("b", 0.0)
        a.retain_grad()
        pre.append(a)
        h = act(a)
        if every or t == T - 1:
            outs.append(h @ tw["W_ho"] + tw.get("b_o", 0.0))
    o = torch.stack(outs) if every else outs[-1]
    ty = torch.tensor(y)
    loss = _torch_loss(settings, o, ty)
    loss.backward()
    grads = {r: t.grad.numpy() for r, t in tw.items()}
    grads.update(x=tx.grad.numpy(), h0=h0.grad.numpy(), delta=np.stack([a.grad.numpy() for a in pre]))
    return grads


def _torch_loss(settings: dict[str, str], o: Any, y: Any) -> Any:
    """The loss of spec.py's ``Spec`` on the output layer's pre-activation ``o``."""
    output, loss = settings.get("output", "identity"), settings.get("loss", "mse")
    yhat = {"softmax": lambda: torch.softmax(o, dim=-1), "sigmoid": lambda: torch.sigmoid(o)}.get(
        output, lambda: o
    )()
    if loss in ("mse", "half_mse"):
        total = ((yhat - y) ** 2).sum() * (0.5 if loss == "half_mse" else 1.0)
    elif loss == "bce":
        total = -(y * torch.log(yhat) + (1 - y) * torch.log(1 - yhat)).sum()
    else:
        total = -(y * torch.log(yhat)).sum()
    if settings.get("reduction", "sum") == "mean":
        total = total / (y.numel() if loss != "cross_entropy" else y.numel() // y.shape[-1])
    return total


def _draw(shapes: dict[str, tuple], settings: dict[str, str], T: int, B: int, seed: int) -> tuple:
    """Random weights by role, ``x (T, B, I)`` and a target of the loss's kind."""
    rng = np.random.default_rng(seed)
    w = {r: rng.normal(0.0, 0.6, s) for r, s in shapes.items()}
    I, O = shapes["W_ih"][0], shapes["W_ho"][1]
    x = rng.normal(size=(T, B, I))
    ys = (T, B, O) if settings.get("steps", "every") == "every" else (B, O)
    loss = settings.get("loss", "mse")
    if loss == "cross_entropy":
        y = np.eye(O)[rng.integers(0, O, size=ys[:-1])]  # one-hot targets
    else:
        y = rng.uniform(size=ys) if loss == "bce" else rng.normal(size=ys)
    return w, x, y


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    """Normwise relative error; infinite when the shapes differ."""
    if got.shape != want.shape:
        return float("inf")
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-300))


def _prepare(path: Path, T: int, B: int, seed: int = 0) -> tuple:
    module, doctor = _load(path)
    learner = _build(module, doctor)
    if not doctor.get("batched", doctor["check"].get("data", "sequence") != "sequence"):
        B = 1  # a learner of one sequence at a time
    shapes = _roles_shapes(_learner_arrays(module, learner, doctor), doctor["roles"], doctor["layout"])
    w, x, y = _draw(shapes, doctor["check"], T, B, seed)
    return module, doctor, learner, w, x, y


# --- part 1: the learners are what they say they are -----------------------------------------------

CORRECT = [p for p in FILES if _load(p)[1]["bug"] is None]
BUGGY = [p for p in FILES if _load(p)[1]["bug"] is not None]


@pytest.mark.parametrize(("T", "B"), [(1, 1), (4, 3)])
@pytest.mark.parametrize("path", CORRECT, ids=_ids(CORRECT))
def test_correct_learner_agrees_with_torch(path: Path, T: int, B: int) -> None:
    """Every gradient a correct learner returns equals torch autograd's (float64, rtol 1e-9)."""
    module, doctor, learner, w, x, y = _prepare(path, T, B)
    got = _run(module, learner, doctor, w, x, y)
    want = _torch_gradients(doctor["check"], w, x, y)
    assert set(doctor["roles"].values()) <= set(got), "every weight gradient is returned"
    for role, g in got.items():
        np.testing.assert_allclose(
            g, want[role], rtol=1e-9, atol=1e-12 * np.abs(want[role]).max(), err_msg=role
        )


@pytest.mark.parametrize("path", BUGGY, ids=_ids(BUGGY))
def test_buggy_learner_disagrees_with_torch(path: Path) -> None:
    """A planted mistake shows: some gradient is off (the second call's, for accumulation), or the
    learner raises NumPy's shape error (the seed's mistake)."""
    module, doctor, learner, w, x, y = _prepare(path, 4, 3)
    want = _torch_gradients(doctor["check"], w, x, y)
    if doctor["bug"] == "seed-shape-mistake":
        with pytest.raises(ValueError, match="not aligned"):
            _run(module, learner, doctor, w, x, y)
        return
    got = _run(module, learner, doctor, w, x, y)
    if doctor["bug"] == "accumulating-gradients":
        assert max(_rel(g, want[r]) for r, g in got.items()) < 1e-9, "the first call is right"
        got = _run(module, learner, doctor, w, x, y)
    assert max(_rel(g, want[r]) for r, g in got.items()) > 1e-3


# --- part 2: the doctor on them ----------------------------------------------------------------------


def _check(path: Path) -> tuple[Any, dict[str, Any]]:
    """The doctor's report on the learner in ``path``, called as a learner would call it: the
    object or function alone, with the settings (and, where the file says so, ``names``)."""
    from bptt.doctor import check

    module, doctor = _load(path)
    return check(_build(module, doctor), **doctor["check"]), doctor


@pytest.mark.parametrize("path", CORRECT, ids=_ids(CORRECT))
def test_doctor_gives_a_correct_learner_a_clean_bill_of_health(path: Path) -> None:
    """No false alarm: healthy, no diagnosis, every weight's gradient compared and in agreement."""
    report, doctor = _check(path)
    assert report.healthy, str(report)
    assert report.diagnoses == []
    assert set(doctor["roles"].values()) <= set(report.errors)
    assert max(report.errors.values()) < 1e-9, report.errors
    assert str(report).splitlines()[-1].startswith("healthy: every gradient agrees"), str(report)


@pytest.mark.parametrize("path", BUGGY, ids=_ids(BUGGY))
def test_doctor_names_the_planted_mistake(path: Path) -> None:
    """The planted mistake is named, alone, with its catalogue number, its terms and, for a scale,
    the factor."""
    report, doctor = _check(path)
    assert not report.healthy
    assert [d.key for d in report.diagnoses] == [doctor["bug"]], str(report)
    first = report.diagnoses[0]
    assert first.number == KEYS_NUMBER[doctor["bug"]]
    assert first.title and first.wrong and first.right
    assert doctor.get("detail", "") in first.detail, str(report)
    assert f"#{first.number} {first.key}: {first.title}" in str(report)


def test_doctor_names_the_seeds_mistake_and_prints_the_corrected_term() -> None:
    """The seed's layer classes (examples/seed_adder.py): NumPy's shape error is caught, the failing
    product is shown with its shapes and roles, and the term that should be there is printed."""
    report, _ = _check(EXAMPLES / "seed_adder.py")
    assert report.crashed and not report.healthy
    assert [d.key for d in report.diagnoses] == ["seed-shape-mistake"]
    lines = str(report).splitlines()
    assert (
        "your code raised ValueError: shapes (1,2) and (16,16) not aligned: 2 (dim 1) != 16 (dim 0)" in lines
    )
    assert "    W_hidden (16,16) is W_hh, the hidden-to-hidden weight" in lines
    failing = "np.dot(delta_pre_hidden, W_hidden), that is δx_5 @ W_hh   (1,2) @ (16,16): ValueError"
    assert any(line.startswith("   yours: " + failing) for line in lines)
    assert "   right: δh_{t-1} = δa_t @ W_hhᵀ   (1,16)@(16,16) -> (1,16)" in lines
    assert any(
        line.endswith("+ δa_2 @ W_hhᵀ from step 2  (1,16) + (1,16)@(16,16) -> (1,16)") for line in lines
    )


KEYS_NUMBER = {
    **dict.fromkeys(
        ("no-activation-derivative", "activation-derivative-twice", "derivative-of-preactivation"), 3
    ),
    **dict.fromkeys(("recurrent-weight-not-transposed", "gradient-transposed"), 4),
    "missing-recurrence": 1,
    "last-step-only": 2,
    "off-by-one": 5,
    "accumulating-gradients": 6,
    "flipped-sign": 7,
    "scale": 8,
    "seed-shape-mistake": 9,
    "h0-gradient": 10,
    "bias-not-summed": 11,
    "overwritten-cache": 12,
}


INFERABLE = [p for p in FILES if p.name != "seed_adder.py"]  # the seed's crashes before any gradient


@pytest.mark.parametrize("path", INFERABLE, ids=_ids(INFERABLE))
def test_doctor_infers_every_role_without_names(path: Path) -> None:
    """Given no ``names``, the doctor reads each learner's roles from its names and shapes (every
    learner's sizes make the shapes unambiguous), so its table lists exactly the file's map."""
    from bptt.doctor import check

    module, doctor = _load(path)
    settings = {k: v for k, v in doctor["check"].items() if k != "names"}
    report = check(_build(module, doctor), **settings)
    weights = {row.name: row.role for row in report.rows if row.role in ("W_ih", "W_hh", "b", "W_ho", "b_o")}
    assert weights == doctor["roles"], str(report)


def test_readme_doctor_excerpt_is_what_the_commands_print(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "Check your own BPTT": its two commands exit 1 and 0, and the excerpt's lines
    appear, in order, in the first one's output."""
    import contextlib
    import io
    import re
    import shlex

    from bptt.cli import main

    section = (ROOT / "README.md").read_text().split("## Check your own BPTT\n", 1)[1].split("\n## ", 1)[0]
    commands, excerpt = re.findall(r"```\n(.*?)```", section, flags=re.S)[:2]
    monkeypatch.chdir(ROOT)
    printed = []
    for command, status_due in zip(commands.splitlines(), (1, 0), strict=True):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(shlex.split(command)[1:]) == status_due, out.getvalue()
        printed.append(out.getvalue().splitlines())
    lines = iter(printed[0])
    for want in filter(None, excerpt.splitlines()):
        assert any(line == want for line in lines), want
