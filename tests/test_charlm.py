"""The character language model: text loading, baselines, training, saving and sampling."""

from __future__ import annotations

import math
import re
import signal
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

import bptt
import bptt.trainer
from bptt.cli import main
from bptt.functional import one_hot
from bptt.stopping import Diverged, Interrupted
from bptt.tasks import charlm

TEXT = "the cat sat on the mat. the dog sat on the log. " * 12


def test_the_default_corpus_ships() -> None:
    """A self-written English corpus of about 30,000 ASCII characters ships with the package."""
    text = charlm.default_text()
    assert len(text) > 28_000 and text.isascii()
    assert text.startswith("Small Essays for a Character Model")


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "does not exist"),
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"abc\x00def" * 40, "binary"),
        (b"caf\xe9 au lait " * 20, "not UTF-8"),
        (b"too short", "at least 100"),
    ],
)
def test_load_text_refuses_what_is_not_text(tmp_path: Path, content: bytes | None, words: str) -> None:
    """Missing, empty, binary, non-UTF-8 or tiny files are refused with what was expected."""
    path = tmp_path / "t.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=words):
        charlm.load_text(path)
    with pytest.raises(ValueError, match="directory"):
        charlm.load_text(tmp_path)


def test_vocabulary_round_trip() -> None:
    """encode then decode gives the text back; unknown characters are named."""
    vocab = charlm.Vocabulary.of(TEXT)
    assert vocab.decode(vocab.encode(TEXT)) == TEXT
    assert len(vocab) == len(set(TEXT))
    with pytest.raises(ValueError, match="'Z'"):
        vocab.encode("the Z")


def test_baselines_match_counting_by_hand() -> None:
    """Unigram and bigram bpc with add-one smoothing, recomputed here with plain Counters."""
    vocab = charlm.Vocabulary.of(TEXT)
    ids = vocab.encode(TEXT)
    train, held = charlm.split(ids)
    V = len(vocab)
    uni = Counter(train.tolist())
    expected_uni = -np.mean([math.log2((uni[c] + 1) / (len(train) + V)) for c in held])
    pairs = Counter(pairwise(train.tolist()))
    firsts = Counter(train[:-1].tolist())
    expected_bi = -np.mean(
        [math.log2((pairs[(a, b)] + 1) / (firsts[a] + V)) for a, b in pairwise(held.tolist())]
    )
    assert charlm.unigram_bpc(train, held, V) == pytest.approx(expected_uni, rel=1e-12)
    assert charlm.bigram_bpc(train, held, V) == pytest.approx(expected_bi, rel=1e-12)


def test_bpc_of_a_model_equals_its_cross_entropy() -> None:
    """bpc is the mean negative log2-probability of each next character, computed in one pass."""
    vocab = charlm.Vocabulary.of(TEXT)
    ids = vocab.encode(TEXT[:200])
    model = charlm.build_model(len(vocab), 8, "rnn", np.random.default_rng(0))
    logits = model.forward(one_hot(ids[:-1, None], len(vocab)))[:, 0]  # (T, V)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(len(ids) - 1), ids[1:]].mean() / math.log(2)
    assert charlm.bpc(model, ids, chunk=37) == pytest.approx(expected, rel=1e-12)


def _tiny(seed: int = 0) -> tuple[bptt.Sequential, charlm.Vocabulary, charlm.CharHistory]:
    return charlm.train(TEXT, cell="lstm", hidden=12, steps=12, batch=4, k1=5, k2=9, check_every=6, seed=seed)


def test_training_is_deterministic_and_learns() -> None:
    """The same seed gives bit-identical weights; the training loss falls."""
    a, _, history = _tiny()
    b, _, _ = _tiny()
    for k, v in a.params.items():
        assert np.array_equal(v, b.params[k]), k
    assert len(history.loss) == 12 and history.check_step == [6, 12] and len(history.bpc) == 2
    assert np.mean(history.loss[-3:]) < np.mean(history.loss[:3])


def test_training_is_float32_by_default_and_float64_on_request() -> None:
    """Every weight, gradient and optimizer buffer stays in the dtype asked for; both learn the same."""
    held = {}
    for dtype in (np.float32, np.float64):
        recipe = {"hidden": 12, "steps": 12, "batch": 4, "k1": 5, "k2": 9, "check_every": 6}
        model, _, history = charlm.train(TEXT, **recipe, **({} if dtype == np.float32 else {"dtype": dtype}))
        assert {v.dtype for v in (*model.params.values(), *model.grads.values())} == {np.dtype(dtype)}
        held[dtype] = history.bpc
    assert held[np.float32] == pytest.approx(held[np.float64], abs=1e-4)
    with pytest.raises(TypeError, match=r"float32 or np\.float64, got 'float16'"):
        charlm.train(TEXT, steps=1, dtype="float16")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interruptible_training_stops_after_the_current_update(signum: int) -> None:
    """SIGINT or SIGTERM: Interrupted carries the model after that update, as a shorter run ends."""

    def press(step: int, loss: float, history: charlm.CharHistory) -> None:
        if step == 5:
            signal.raise_signal(signum)

    name = signal.Signals(signum).name
    with pytest.raises(Interrupted, match=f"^interrupted by {name} after step 5$") as info:
        charlm.train(
            TEXT, hidden=12, steps=12, batch=4, k1=5, k2=9, check_every=6, callback=press, interruptible=True
        )
    assert info.value.signum == signum and info.value.step == 5 and len(info.value.history.loss) == 5
    five, _, _ = charlm.train(TEXT, hidden=12, steps=5, batch=4, k1=5, k2=9, check_every=6)
    for k, v in five.params.items():
        assert np.array_equal(v, info.value.model.params[k]), k


def test_a_non_finite_gradient_stops_training_before_the_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN gradient norm at update 3 raises Diverged; the weights are update 2's, all finite."""
    real, calls = bptt.clip_grad_norm, []

    def clip(model: bptt.Sequential, max_norm: float) -> float:
        calls.append(max_norm)
        return float("nan") if len(calls) == 3 else real(model, max_norm)

    monkeypatch.setattr(bptt.trainer, "clip_grad_norm", clip)
    with pytest.raises(Diverged, match="gradient norm became nan at step 3") as info:
        _tiny()
    assert info.value.step == 2 and len(info.value.history.loss) == 2
    monkeypatch.undo()
    two, _, _ = charlm.train(TEXT, cell="lstm", hidden=12, steps=2, batch=4, k1=5, k2=9, check_every=6)
    for k, v in two.params.items():
        assert np.array_equal(v, info.value.model.params[k]), k


def _scripted_bpc(monkeypatch: pytest.MonkeyPatch, values: list[float]) -> None:
    """Make the held-out checks report ``values``, one per check, in order."""
    script = iter(values)
    monkeypatch.setattr(charlm, "bpc", lambda *args, **kwargs: next(script))


SCRIPT = [3.0, 2.0, 2.5, 2.1, 2.4, 2.2]  # checks at updates 2, 4, ..., 12: the best is update 4's


def _same_weights(a: bptt.Sequential, b: bptt.Sequential) -> bool:
    return all(np.array_equal(v, b.params[k]) for k, v in a.params.items())


def test_training_returns_the_best_checks_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without early stopping all updates run, and the model returned is the best check's."""
    recipe = {"hidden": 12, "batch": 4, "k1": 5, "k2": 9, "check_every": 2, "patience": None}
    _scripted_bpc(monkeypatch, SCRIPT)
    model, _, history = charlm.train(TEXT, steps=12, **recipe)  # type: ignore[arg-type]
    assert len(history.loss) == 12 and history.converged and history.bpc == SCRIPT
    assert history.best_step == 4 and history.best_bpc == 2.0 and history.checks_since_best == 4
    monkeypatch.undo()
    four, _, _ = charlm.train(TEXT, steps=4, **recipe)  # type: ignore[arg-type]
    assert _same_weights(model, four)


@pytest.mark.parametrize("patience, stopped_at", [(1, 6), (2, 8), (3, 10), (4, 12), (5, 12)])
def test_patience_stops_after_checks_without_improvement(
    monkeypatch: pytest.MonkeyPatch, patience: int, stopped_at: int
) -> None:
    """Training ends at the check that makes ``patience`` in a row without a lower bpc."""
    _scripted_bpc(monkeypatch, SCRIPT)
    _, _, history = charlm.train(
        TEXT, hidden=12, steps=12, batch=4, k1=5, k2=9, check_every=2, patience=patience
    )
    assert len(history.loss) == stopped_at and history.check_step[-1] == stopped_at
    assert history.converged == (stopped_at < 12 or patience == 4)  # the rule ended it
    assert history.best_step == 4


def test_the_best_model_has_the_best_held_out_bpc() -> None:
    """The returned model's held-out bpc is ``history.best_bpc``, the lowest of all checks."""
    model, vocab, history = charlm.train(
        TEXT, hidden=12, steps=12, batch=4, k1=5, k2=9, check_every=3, lr=0.05, patience=None
    )
    _, held = charlm.split(vocab.encode(TEXT))
    assert history.best_bpc == min(history.bpc) and history.best_step in history.check_step
    assert charlm.bpc(model, held) == history.best_bpc


@pytest.mark.parametrize("patience", [0, -1, 2.5, True])
def test_patience_must_be_a_positive_integer_or_none(patience: object) -> None:
    with pytest.raises((ValueError, TypeError), match="patience"):
        charlm.train(TEXT, steps=2, batch=4, patience=patience)  # type: ignore[arg-type]


def test_the_progress_bar_shows_training_and_held_out_figures_in_bits() -> None:
    """At a check, the training loss (nats) is shown divided by ln 2 beside the held-out bpc."""
    from bptt.cli.train_charlm import postfix

    history = charlm.CharHistory(loss=[2.0, 1.0], check_step=[2], bpc=[1.75])
    assert postfix(2, 1.0, history) == {"train_bpc": f"{1 / math.log(2):.3f}", "held_out_bpc": "1.750"}
    assert postfix(3, 1.0, history) == {}


def test_sample_is_seeded_and_starts_with_the_prime() -> None:
    """Sampling is reproducible for a seed, keeps the prime, and writes only known characters."""
    model, vocab, _ = _tiny()
    one = charlm.sample(model, vocab, 40, temperature=0.7, prime="the ", rng=3)
    two = charlm.sample(model, vocab, 40, temperature=0.7, prime="the ", rng=3)
    assert one == two and one.startswith("the ") and len(one) == 44
    assert set(one) <= set(vocab.chars)
    with pytest.raises(ValueError, match="temperature"):
        charlm.sample(model, vocab, 5, temperature=0.0)


def test_save_load_sample_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bptt train --task charlm` then `bptt sample` prints what sampling the saved model gives."""
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    out = tmp_path / "c.npz"
    argv = ["train", "--task", "charlm", "--text", str(text), "--steps", "8", "--hidden", "10"]
    assert main([*argv, "--batch", "4", "--k1", "5", "--k2", "7", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bigram, add-one smoothing" in printed and "bptt LSTM 10" in printed
    assert main(["sample", "--model", str(out), "--length", "30", "--prime", "the ", "--seed", "4"]) == 0
    sampled = capsys.readouterr().out.rstrip("\n")
    model, meta, _ = bptt.io.read(out)
    assert sampled == charlm.sample(
        model, charlm.Vocabulary(meta["vocab"]), 30, temperature=0.8, prime="the ", rng=4
    )


def test_cli_reports_and_saves_the_best_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--patience 2`: training stops at update 400, says update 200 was best, and saves that model."""
    text, out = tmp_path / "t.txt", tmp_path / "c.npz"
    text.write_text(TEXT)
    recipe = ["--hidden", "6", "--batch", "4", "--k1", "5", "--k2", "5"]
    _scripted_bpc(monkeypatch, [3.0, 2.0, 2.5, 2.6, 2.7])
    argv = ["train", "--task", "charlm", "--text", str(text), "--steps", "500", *recipe]
    assert main([*argv, "--patience", "2", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    best = "best held-out bpc 2.000 at update 200 (of 400; stopped early after 2 checks without improvement)"
    assert best in printed and re.search(r"\nbptt LSTM 6, best check +2\.000\n", printed)
    saved, meta, extra = bptt.io.read(out)
    assert (meta["best_step"], meta["best_bpc"], meta["updates"], meta["patience"]) == (200, 2.0, 400, 2)
    assert list(extra["check_step"]) == [100, 200, 300, 400]
    monkeypatch.undo()
    two_hundred, _, _ = charlm.train(TEXT, hidden=6, steps=200, batch=4, k1=5, k2=5, patience=None)
    assert _same_weights(saved, two_hundred)


def test_cli_patience_zero_turns_early_stopping_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--patience 0` runs every update and records no patience."""
    text, out = tmp_path / "t.txt", tmp_path / "c.npz"
    text.write_text(TEXT)
    _scripted_bpc(monkeypatch, [3.0, 2.0, 2.5, 2.6])
    argv = [
        "train",
        "--task",
        "charlm",
        "--text",
        str(text),
        "--steps",
        "300",
        "--hidden",
        "6",
        "--batch",
        "4",
    ]
    assert main([*argv, "--k1", "5", "--k2", "5", "--patience", "0", "--quiet", "--out", str(out)]) == 0
    assert "at update 200 (of 300; early stopping off)" in capsys.readouterr().out
    assert bptt.io.read(out)[1]["patience"] is None


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--task", "charlm", "--text", "missing.txt"], "does not exist"),
        (["train", "--task", "charlm", "--k1", "9", "--k2", "3"], "--k2 3 must be at least --k1 9"),
        (["train", "--task", "charlm", "--bits", "3"], "--bits does not apply"),
        (["train", "--task", "charlm", "--out", ""], "--out '' is empty"),
        (["train", "--cell", "lstm"], "--cell does not apply"),
        (["sample", "--model", "missing.npz"], "does not exist"),
        (["sample", "--model", str(bptt.cli.shipped_model())], "not a character model"),
        (["sample", "--temperature", "0"], "positive temperature"),
    ],
)
def test_cli_bad_input(
    argv: list[str],
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad values exit 2 with one line that says what was expected."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02" * 50, b"\xff\xfe" * 80])
def test_cli_refuses_bad_text_files(
    content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty, binary or non-UTF-8 --text file: exit 2, one line, nothing written."""
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    out = tmp_path / "c.npz"
    assert main(["train", "--task", "charlm", "--text", str(path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()
