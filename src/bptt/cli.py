"""The ``bptt`` command line. Exit status: 0 ok, 1 a check failed, 2 bad usage or input."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from ._version import __version__
from .errors import Terminated, raise_terminated

__all__ = ["UsageError", "main"]


class UsageError(Exception):
    """A user's mistake: reported as one line on stderr with exit status 2, never a traceback."""


class _ParseError(UsageError):
    """A bad command line, already worded by argparse with the subcommand's name."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ParseError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    from .checks import CONFIGS, TORCH_TOLERANCE, run_config
    from .gradcheck import TOLERANCE

    try:
        import torch  # noqa: F401

        use_torch = not args.no_torch
    except ImportError:
        use_torch = False
    print(f"numeric: complex-step central differences, pass at rel err <= {TOLERANCE:.0e}")
    if use_torch:
        print(f"torch:   autograd in float64, pass at max|a-t|/max|t| <= {TORCH_TOLERANCE:.0e}")
    else:
        print("torch:   not importable; autograd column skipped")
    head = f"{'configuration':<36} {'gradient':<9} {'shape':<11} {'numeric':>9} {'torch':>9}"
    print(head + "\n" + "-" * len(head))
    failed = 0
    for cfg in CONFIGS:
        for row in run_config(cfg, seed=args.seed, use_torch=use_torch):
            t = "-" if row.torch is None else f"{row.torch:.1e}"
            mark = "ok" if row.ok else "FAIL"
            failed += not row.ok
            print(f"{row.config:<36} {row.name:<9} {row.shape!s:<11} {row.numeric:>9.1e} {t:>9}  {mark}")
    print(f"{len(CONFIGS)} configurations: " + ("all gradients pass" if not failed else f"{failed} FAIL"))
    return 1 if failed else 0


DEFAULT_MODEL = "adder.npz"


def shipped_model() -> Path:
    """The adder that ships inside the package (see ``SHIPPED_COMMAND``)."""
    return Path(str(resources.files("bptt") / "data" / "adder.npz"))


SHIPPED_COMMAND = "bptt train --seed 0 --out src/bptt/data/adder.npz"


@contextmanager
def _any_length_decimals() -> Iterator[None]:
    """Lift Python's limit on int <-> decimal conversions for operands and sums, and only for them.

    The limit guards against quadratic-time conversions of hostile input; everything else (a
    model file's JSON record, say) keeps it.
    """
    if not hasattr(sys, "set_int_max_str_digits"):  # Python without the limit
        yield
        return
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


def _natural(text: str) -> int:
    """A non-negative decimal integer of any length, for argparse."""
    digits = text.strip().replace("_", "")
    if not digits.isdigit() or not digits.isascii():
        raise argparse.ArgumentTypeError(f"expected a non-negative decimal integer, got {text[:40]!r}")
    with _any_length_decimals():
        return int(digits)


def _hex_natural(text: str) -> int:
    """A non-negative hexadecimal integer of any length (``0x`` optional)."""
    digits = text.strip().replace("_", "").removeprefix("0x").removeprefix("0X")
    if not digits or not digits.isascii() or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise argparse.ArgumentTypeError(f"expected a non-negative hexadecimal integer, got {text[:40]!r}")
    return int(digits, 16)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a seed: an integer ≥ 0, got {text!r}")
    return value


def _load(path: str | None) -> Any:
    """The model at ``path``; by default ``./adder.npz`` if it exists, else the shipped adder."""
    from .io import load

    if path is None:
        path = DEFAULT_MODEL if Path(DEFAULT_MODEL).exists() else str(shipped_model())
    try:
        return load(path)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _accuracy_table(model: Any, bits: int, seed: int) -> list[tuple[str, float]]:
    """The exact-match checks ``bptt train`` ends with: all short pairs, then long random sums."""
    import numpy as np

    from .tasks.addition import accuracy

    rng = np.random.default_rng([seed, 2])
    short = (f"all {4**bits:,} pairs of {bits}-bit operands", accuracy(model, bits))
    if bits > 10:
        short = (f"10,000 random {bits}-bit sums", accuracy(model, bits, 10_000, rng))
    return [
        short,
        ("1,000 random 1,000-bit sums", accuracy(model, 1000, 1000, rng)),
        ("100 random 10,000-bit sums", accuracy(model, 10_000, 100, rng)),
    ]


def _train_settings(args: argparse.Namespace) -> dict[str, Any]:
    """bits, hidden, seed and preset: from the flags, or from the checkpoint being resumed."""
    given = {"n_bits": args.bits, "hidden": args.hidden, "seed": args.seed, "preset": args.preset}
    if args.resume is None:
        defaults = {"n_bits": 8, "hidden": 16, "seed": 0, "preset": "default"}
        return {k: defaults[k] if v is None else v for k, v in given.items()}
    from .checkpoint import load_checkpoint

    try:
        saved = load_checkpoint(args.resume).settings
    except ValueError as e:
        raise UsageError(str(e)) from None
    if saved.get("task") != "addition" or saved.get("options"):
        raise UsageError(f"--resume {args.resume!r} is not a checkpoint of 'bptt train'")
    for k, v in given.items():
        if v is not None and v != saved.get(k):
            raise UsageError(f"--resume {args.resume!r} was trained with {k}={saved.get(k)!r}, not {v!r}")
    return {k: saved[k] for k in given}


ADDITION_ONLY = ("bits", "preset", "plot", "checkpoint_every", "checkpoint", "resume")
CHARLM_ONLY = ("text", "cell", "steps", "k1", "k2", "batch")


def _cmd_train(args: argparse.Namespace) -> int:
    for name in ADDITION_ONLY if args.task == "charlm" else CHARLM_ONLY:
        if getattr(args, name) not in (None, False):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} does not apply to --task {args.task}")
    if args.task == "charlm":
        return _train_charlm(args)
    from .stopping import Diverged, Interrupted
    from .tasks.addition import PRESETS, operand_width, train

    args.out = DEFAULT_MODEL if args.out is None else args.out  # "" is refused, not defaulted
    _writable(args.out, "--out")
    if args.plot is not None:
        _image_path(args.plot, "--plot")
    settings = _train_settings(args)
    bits, H = settings["n_bits"], settings["hidden"]
    _require_memory(_addition_bytes(bits, H), f"--bits {bits} --hidden {H}")
    checkpoint = (
        str(Path(args.out).with_suffix("")) + ".ckpt.npz" if args.checkpoint is None else args.checkpoint
    )
    _writable(checkpoint, "--checkpoint")
    recipe = PRESETS[settings["preset"]]

    def meta(history: Any) -> dict[str, Any]:
        return {
            "command": shlex.join(["bptt", *args.argv]),
            "task": "addition",
            "preset": settings["preset"],
            "bits": settings["n_bits"],
            "hidden": settings["hidden"],
            "seed": settings["seed"],
            "steps": history.steps,
            "seconds": history.seconds,
            "converged": history.converged,
        }

    try:
        with _Progress(recipe.steps, args.quiet) as bar:

            def progress(step: int, loss: float, history: Any) -> None:
                if history.accuracy and history.check_step[-1] == step:
                    exact, margin = f"{history.accuracy[-1]:.0%}", f"{history.margin[-1]:.2f}"
                    bar.step(step, loss=f"{loss:.4f}", exact=exact, margin=margin)
                else:
                    bar.step(step)

            model, history = train(
                settings["n_bits"],
                settings["hidden"],
                settings["seed"],
                preset=settings["preset"],
                callback=progress,
                checkpoint=checkpoint,
                checkpoint_every=args.checkpoint_every,
                resume=args.resume,
                interruptible=True,
            )
    except Interrupted as e:
        again = ["bptt", "train", "--resume", checkpoint, "--out", args.out]
        for flag in ("checkpoint", "checkpoint_every", "plot"):  # where the first run wrote, again
            again += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))] if getattr(args, flag) else []
        again += ["--quiet"] if args.quiet else []
        print(
            f"bptt train: {e}; checkpoint saved to {checkpoint}; continue with: {shlex.join(again)}",
            file=sys.stderr,
        )
        return e.exit_status
    except Diverged as e:
        return _save_last_good(e, args.out, meta(e.history))
    # What happened, from the history: a resumed run trained only the steps after its checkpoint.
    steps = (
        f"{history.steps} steps" if not bar.resumed_from else f"steps {bar.resumed_from + 1}-{history.steps}"
    )
    ms = f"{history.seconds * 1000:.0f} ms"
    if not history.converged:
        print(f"stopped after {steps}, {ms}, without meeting the stopping rule")
    else:
        verdict = "met the stopping rule" if recipe.steps is None else "ran the fixed schedule"
        print(f"trained in {steps}, {ms} ({verdict})")
    _save_model(model, args.out, meta(history), history.arrays())
    print(f"saved {args.out}")
    if args.plot:
        from .plots import plot_history

        plot_history(history, args.plot)
        print(f"plotted {args.plot}")
    exact = _print_table(_accuracy_table(model, operand_width(settings["n_bits"], recipe), settings["seed"]))
    return exact if history.converged else 1


def _save_model(model: Any, path: str, meta: dict[str, Any], extra: dict[str, Any]) -> None:
    from .io import save

    try:
        save(model, path, meta=meta, extra=extra)
    except OSError as e:
        raise UsageError(f"cannot write {path!r}: {e.strerror or e}") from None


def _save_last_good(e: Any, path: str, meta: dict[str, Any]) -> int:
    """After ``Diverged``: save its weights (finite, by ``UpdateGuard``) if a step had completed; exit 1."""
    if e.step == 0:
        print(
            f"bptt train: error: {e}; no step had completed, so there are no good weights to save",
            file=sys.stderr,
        )
    else:
        _save_model(e.model, path, meta, e.history.arrays())
        print(
            f"bptt train: error: {e}; saved the last good weights (step {e.step}) to {path}", file=sys.stderr
        )
    return 1


def _addition_bytes(bits: int, hidden: int) -> float:
    """About what training an adder and its accuracy table hold: weights with their gradients,
    optimizer buffers and copies; states and δ of the largest batch; the evaluation's sums."""
    weights = 8 * 8 * hidden * (hidden + 4)
    states = 8 * 16 * hidden * max((bits + 1) * 64, 257 * 32 + 33 * 64)
    sums = 4**bits if bits <= 10 else 10_000
    return weights + states + 6 * 8 * (bits + 1) * sums


def _train_charlm(args: argparse.Namespace) -> int:
    from .stopping import Diverged, Interrupted
    from .tasks import charlm

    args.out = "charlm.npz" if args.out is None else args.out
    _writable(args.out, "--out")
    try:
        text = charlm.default_text() if args.text is None else charlm.load_text(args.text)
    except ValueError as e:
        raise UsageError(str(e)) from None
    cell: str = args.cell or "lstm"
    k1: int = args.k1 or 25
    k2: int = args.k2 or max(k1, 50)
    if k2 < k1:
        raise UsageError(f"--k2 {k2} must be at least --k1 {k1}")
    options: dict[str, Any] = {
        "cell": cell,
        "steps": args.steps or 1500,
        "batch": args.batch or 32,
        "k1": k1,
        "k2": k2,
    }
    vocab = charlm.Vocabulary.of(text)  # what train uses: an interrupted model is saved with it
    V, H, B = len(vocab), args.hidden or 128, options["batch"]
    weights = 8 * 8 * 4 * H * (V + H + 1)  # LSTM weights, gradients, Adam's buffers and copies
    window = 8 * 32 * k2 * B * (V + 4 * H)  # one-hot inputs, gates, states and δ of one window
    _require_memory(weights + window + 16 * len(text), f"--hidden {H} --batch {B} --k2 {k2}")
    meta = {"command": shlex.join(["bptt", *args.argv]), "task": "charlm", "vocab": vocab.chars, **options}
    try:
        with _Progress(options["steps"], args.quiet) as bar:

            def progress(step: int, loss: float, history: Any) -> None:
                if history.check_step and history.check_step[-1] == step:
                    bar.step(step, loss=f"{loss:.3f}", held_out_bpc=f"{history.bpc[-1]:.3f}")
                else:
                    bar.step(step)

            model, vocab, history = charlm.train(
                text,
                hidden=args.hidden or 128,
                seed=args.seed or 0,
                callback=progress,
                interruptible=True,
                **options,
            )
    except ValueError as e:
        raise UsageError(str(e)) from None
    except Interrupted as e:  # keep what was learnt: the model so far, marked as stopped early
        _save_model(e.model, args.out, {**meta, "updates": e.step, "stopped": str(e)}, e.history.arrays())
        print(
            f"bptt train: {e} of {options['steps']}; saved the model trained so far to {args.out}",
            file=sys.stderr,
        )
        return e.exit_status
    except Diverged as e:
        return _save_last_good(e, args.out, {**meta, "updates": e.step, "stopped": str(e)})
    steps_s = history.seconds / len(history.loss)
    print(
        f"trained {len(history.loss)} updates in {history.seconds:.1f} s ({1000 * steps_s:.1f} ms per update)"
    )
    _save_model(model, args.out, {**meta, "updates": len(history.loss)}, history.arrays())
    print(f"saved {args.out}")
    train_ids, held = charlm.split(vocab.encode(text))
    rows = [
        ("unigram, add-one smoothing", charlm.unigram_bpc(train_ids, held, len(vocab))),
        ("bigram, add-one smoothing", charlm.bigram_bpc(train_ids, held, len(vocab))),
        (f"bptt {cell.upper()} {args.hidden or 128}", history.bpc[-1]),
    ]
    width = max(len(n) for n, _ in rows)
    print(f"{'held-out bits per character':<{width}}  bpc")
    for name, value in rows:
        print(f"{name:<{width}}  {value:.3f}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from .io import read
    from .tasks import charlm

    _require_memory(64 * args.length, f"--length {args.length}")  # the indices and the text, per character

    try:
        model, meta, _ = read(args.model)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if meta.get("task") != "charlm" or not isinstance(meta.get("vocab"), str):
        raise UsageError(f"--model {args.model!r} is not a character model (train one with --task charlm)")
    try:
        text = charlm.sample(
            model,
            charlm.Vocabulary(meta["vocab"]),
            args.length,
            temperature=args.temperature,
            prime=args.prime,
            rng=args.seed,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(text)
    return 0


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive temperature, got {text!r}")
    return value


def _print_table(rows: list[tuple[str, float]]) -> int:
    width = max(len(name) for name, _ in rows)
    print(f"{'exact-match accuracy':<{width}}  result")
    for name, acc in rows:
        print(f"{name:<{width}}  {acc:8.2%}")
    return 0 if all(acc == 1.0 for _, acc in rows) else 1


class _Progress:
    """The training progress bar (tqdm, on stderr); as a context manager it is closed on every way out.

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

    def __enter__(self) -> _Progress:
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
        import signal

        from .stopping import stop_on_interrupt

        with stop_on_interrupt() as held:
            if self._bar is not None:
                self._bar.close()
            self._bar = None
        if held.signum is not None:
            signal.raise_signal(held.signum)


def _writable(path: str, flag: str) -> None:
    """Refuse an output path before any work is done, rather than fail after it."""
    from ._files import check_writable

    try:
        check_writable(path, what=flag)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _available_memory() -> int:
    """Bytes this process may still allocate: free RAM, or a lower address-space limit."""
    try:
        with open("/proc/meminfo", "rb") as f:
            fields = dict(line.split(b":", 1) for line in f)
        free = int(fields[b"MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    return free if limit == resource.RLIM_INFINITY else min(free, limit)


def _require_memory(nbytes: float, what: str) -> None:
    """Refuse up front, with the size named, work that would not fit in memory."""
    from ._files import format_bytes

    free = _available_memory()
    if nbytes > free:
        raise UsageError(
            f"{what} needs about {format_bytes(int(nbytes))} of memory; {format_bytes(free)} is available"
        )


def _image_path(path: str, flag: str) -> None:
    """Refuse up front an image path that cannot be written or whose extension is no image format."""
    _require_matplotlib()
    _writable(path, flag)
    from .plots import image_format

    try:
        image_format(path)
    except ValueError as e:
        raise UsageError(f"{flag} {e.args[0].removeprefix('plot: ')}") from None


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("plots need matplotlib: pip install 'bptt[plot]'") from None


def _cmd_add(args: argparse.Namespace) -> int:
    from .tasks.addition import add

    parse = _hex_natural if args.hex else _natural
    try:
        a, b = parse(_operand_text(args.a)), parse(_operand_text(args.b))
    except argparse.ArgumentTypeError as e:
        raise UsageError(str(e)) from None
    model = _load(args.model)
    try:
        total = add(model, a, b)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.hex:
        print(f"{total:x}")
    else:
        with _any_length_decimals():
            print(total)
    if args.check:
        exact = a + b
        if total != exact:
            wrong = (total ^ exact).bit_length()
            print(
                f"check: MISMATCH, the RNN's sum differs from a + b (highest wrong bit {wrong})",
                file=sys.stderr,
            )
            return 1
        print(f"check: exact ({exact.bit_length()} bits)", file=sys.stderr)
    return 0


OPERAND_FILE_LIMIT = 1 << 26  # bytes of an @FILE operand: 64 MiB of digits is 200 million bits


def _operand_text(arg: str) -> str:
    """The operand itself, or the text of the file an ``@FILE`` argument names.

    The file's content is the number, decoded strictly as UTF-8; an ``@`` inside it is not
    followed (argparse's own @-files would recurse and split the number at newlines).
    """
    if not arg.startswith("@"):
        return arg
    from ._files import read_regular

    try:
        raw = read_regular(arg[1:], limit=OPERAND_FILE_LIMIT, what="operand file")
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(
            f"operand file {arg[1:]!r} is not UTF-8 text (byte {e.start} cannot be decoded)"
        ) from None
    except ValueError as e:
        raise UsageError(str(e)) from None


def _cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from .tasks.addition import accuracy

    samples = args.samples
    if samples is None and args.bits > 10:
        samples = 1000
    sums = 4**args.bits if samples is None else samples
    # x (T, B, 2), y (T, B, 1), the sampled bits and the predictions: about 6 float64 per step and sum
    _require_memory(6 * 8 * (args.bits + 1) * sums, f"--bits {args.bits} with {sums:,} sums")
    model = _load(args.model)
    try:
        acc = accuracy(model, args.bits, samples, np.random.default_rng(args.seed))
    except ValueError as e:
        raise UsageError(str(e)) from None
    what = f"all {4**args.bits:,} pairs" if samples is None else f"{samples:,} random sums"
    return _print_table([(f"{what} of {args.bits}-bit operands", acc)])


def _cmd_explain(args: argparse.Namespace) -> int:
    import numpy as np

    from .explain import explain
    from .layers import Dense, Last, Sequential, Sigmoid
    from .recurrent import RNN

    rng = np.random.default_rng(args.seed)
    if args.model is not None:
        model = _load(args.model)
        width = sum(max(p.shape) for p in model.params.values())
        _require_memory(
            8 * 16 * args.steps * args.batch * width, f"--steps {args.steps} --batch {args.batch}"
        )
        first = model[0]
        inputs = getattr(first, "input_size", getattr(first, "in_features", None))
        if not isinstance(inputs, int):
            raise UsageError(f"cannot tell the input size of {args.model!r}: its first layer is {first!r}")
        x = rng.integers(0, 2, (args.steps, args.batch, inputs)).astype(float)
    else:  # the seed's network: identity recurrence, no biases, sigmoid on the last state and the output
        I, H, O = args.input, args.hidden, args.output
        # weights, gradients and the deliberate mistakes' copies; states and δ per step
        T, B = args.steps, args.batch
        _require_memory(8 * (8 * H * (I + H + O) + 16 * T * B * (I + H + O)), "this network")
        rnn = RNN(I, H, activation=args.activation, bias=False, rng=rng)
        rnn.h0 = rng.normal(0.0, 0.5, (args.batch, H))
        model = Sequential([rnn, Last(), Sigmoid(), Dense(H, O, bias=False, rng=rng), Sigmoid()])
        x = rng.normal(size=(args.steps, args.batch, I))
    print(explain(model, x, mistakes=args.mistakes, rng=rng))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    """Draw one picture to a PNG: training curves, an adder's hidden states, or gradient norms."""
    _image_path(args.out, "--out")
    if args.kind != "hidden" and (args.a is not None or args.b is not None):
        raise UsageError(f"--a and --b choose the sum for 'plot hidden'; 'plot {args.kind}' takes neither")
    if args.kind == "gradnorm" and args.model is not None:
        raise UsageError("'plot gradnorm' draws freshly initialised RNNs; it takes no --model")
    from . import plots

    def history() -> Any:
        from .io import read
        from .tasks.addition import History

        path = args.model
        if path is None:
            path = DEFAULT_MODEL if Path(DEFAULT_MODEL).exists() else str(shipped_model())
        try:
            extra = read(path)[2]
        except ValueError as e:
            raise UsageError(str(e)) from None
        if extra.get("loss") is None or extra["loss"].size == 0:
            raise UsageError(f"{path!r} holds no training history (models saved by 'bptt train' do)")
        try:
            past = History.from_arrays(extra)
        except (TypeError, ValueError):
            past = None
        if past is None or len(past.check_step) != len(past.accuracy):
            raise UsageError(f"{path!r} holds a malformed training history")
        return past

    try:
        if args.kind == "history":
            plots.plot_history(history(), args.out)
        elif args.kind == "gradnorm":
            plots.plot_gradnorm(args.out, seed=args.seed)
        else:
            from .tasks.addition import carry_probe

            model = _load(args.model)
            try:
                probe = carry_probe(model, rng=args.seed)
                chains = carry_probe(model, rng=args.seed, p_propagate=0.85)
                if args.kind == "hidden":
                    a, b = 1234 if args.a is None else args.a, 567 if args.b is None else args.b
                    plots.plot_hidden(model, a, b, args.out)
                else:
                    plots.plot_pca(model, args.out, rng=args.seed)
            except ValueError as e:
                raise UsageError(str(e)) from None
            print(
                f"carry probe: reads the carry right at {probe.accuracy:.2%} of held-out steps of random "
                f"64-bit sums, {chains.accuracy:.2%} of carry-chain-rich ones"
            )
            units = ", ".join(f"{unit} ({weight:+.2f})" for unit, weight in probe.top_units)
            print(f"carry units (largest probe weights): {units}")
    except OSError as e:
        raise UsageError(f"cannot write {args.out!r}: {e.strerror or e}") from None
    print(f"plotted {args.out}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        import threadpoolctl  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("the benchmark needs torch and threadpoolctl: pip install 'bptt[bench]'") from None
    from .bench import nbytes, run

    if args.json:
        _writable(args.json, "--json")
    for shape in args.shapes or ():
        for cell in args.cells:
            _require_memory(nbytes(shape, "float64", cell), f"--shapes {','.join(map(str, shape))}")
    run(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``bptt`` argument parser with every subcommand."""
    parser = _Parser(prog="bptt", description="Recurrent networks in NumPy with proven BPTT.")
    parser.add_argument("--version", action="version", version=f"bptt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("gradcheck", help="prove every gradient on a fixed set of networks")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the weights and data (default 0)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch autograd column")
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("train", help="train the binary-addition RNN (or a character model) and save it")
    p.add_argument("--task", choices=["addition", "charlm"], default="addition", help="what to learn")
    p.add_argument("--bits", type=_positive, default=None, help="operand bits (default 8)")
    p.add_argument("--hidden", type=_positive, default=None, help="hidden units (default 16; charlm 128)")
    p.add_argument("--seed", type=_seed, default=None, help="seed of everything random (default 0)")
    p.add_argument("--out", default=None, help=f"model file (default {DEFAULT_MODEL}; charlm: charlm.npz)")
    p.add_argument("--preset", choices=["default", "classic"], default=None, help="training recipe (default)")
    p.add_argument("--plot", metavar="PATH", help="also draw loss and accuracy curves to a PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint-every", type=_positive, metavar="N", help="write a checkpoint every N steps")
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="checkpoint file (default: --out's name + .ckpt.npz); Ctrl-C writes it too",
    )
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint, bit for bit")
    p.add_argument("--text", metavar="FILE", help="charlm: UTF-8 training text (default: the shipped corpus)")
    p.add_argument(
        "--cell", choices=["rnn", "lstm"], default=None, help="charlm: recurrent cell (default lstm)"
    )
    p.add_argument("--steps", type=_positive, default=None, help="charlm: updates (default 1500)")
    p.add_argument("--batch", type=_positive, default=None, help="charlm: parallel streams (default 32)")
    p.add_argument(
        "--k1", type=_positive, default=None, help="charlm: update every k1 characters (default 25)"
    )
    p.add_argument(
        "--k2", type=_positive, default=None, help="charlm: backpropagate k2 characters (default 50)"
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="write text with a character model")
    p.add_argument("--model", default="charlm.npz", help="a model from `bptt train --task charlm`")
    p.add_argument("--length", type=_positive, default=300, help="characters to write (default 300)")
    p.add_argument("--temperature", type=_temperature, default=0.8, help="sampling temperature (default 0.8)")
    p.add_argument("--prime", default="", help="text to start from")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the sampling (default 0)")
    p.set_defaults(func=_cmd_sample)

    model_help = f"model file (default ./{DEFAULT_MODEL} if present, else the shipped adder)"
    p = sub.add_parser(
        "add",
        help="add two numbers with the RNN",
        epilog="@FILE reads an operand from a file (for numbers too long for a command line)",
    )
    p.add_argument("a", help="a non-negative integer, any length (decimal, or hexadecimal with --hex)")
    p.add_argument("b", help="a non-negative integer, any length")
    p.add_argument("--hex", action="store_true", help="operands and sum in hexadecimal (linear-time I/O)")
    p.add_argument("--model", help=model_help)
    p.add_argument("--check", action="store_true", help="compare with exact arithmetic; exit 1 if wrong")
    p.set_defaults(func=_cmd_add)

    p = sub.add_parser("eval", help="exact-match accuracy of an adder at any length")
    p.add_argument("--model", help=model_help)
    p.add_argument("--bits", type=_positive, default=8, help="operand bits (default 8)")
    p.add_argument("--samples", type=_positive, default=None, help="random sums (default: all pairs)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random sums (default 0)")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("plot", help="draw training curves, an adder's hidden states or gradient norms")
    kinds = {
        "history": "loss, accuracy and margin during training (from the model file)",
        "hidden": "the hidden state at every step of one sum, above its bits",
        "pca": "hidden states of many sums on two principal components",
        "gradnorm": "||dL/dh_t|| over 200 steps for tanh, sigmoid and relu RNNs",
    }
    p.add_argument("kind", choices=list(kinds), help="; ".join(f"{k}: {v}" for k, v in kinds.items()))
    p.add_argument("--model", help=model_help)
    p.add_argument("--out", required=True, metavar="PNG", help="image file to write")
    p.add_argument("--a", type=_natural, default=None, help="hidden: first operand (default 1234)")
    p.add_argument("--b", type=_natural, default=None, help="hidden: second operand (default 567)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random sums and weights (default 0)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("explain", help="print BPTT's chain rule with every shape, evaluated")
    p.add_argument("--model", help="explain a saved model instead of the seed's network")
    p.add_argument("--input", type=_positive, default=8, help="input size (default 8)")
    p.add_argument("--hidden", type=_positive, default=16, help="hidden size (default 16)")
    p.add_argument("--output", type=_positive, default=8, help="output size (default 8)")
    p.add_argument("--steps", type=_positive, default=2, help="time steps T (default 2)")
    p.add_argument("--batch", type=_positive, default=1, help="sequences B (default 1)")
    p.add_argument("--activation", choices=["identity", "tanh", "sigmoid", "relu"], default="identity")
    p.add_argument("--mistakes", action="store_true", help="also show the wrong products and their errors")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the weights and data (default 0)")
    p.set_defaults(func=_cmd_explain)

    from .bench import add_arguments

    p = sub.add_parser("bench", help="time fwd+bwd against PyTorch's CPU RNN (needs bptt[bench])")
    add_arguments(p)
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bptt`` command; returns the exit status.

    Every way out is one line on stderr, never a traceback: a user's mistake, an operating-system
    error (unreadable file, full disk, read-only folder), memory, a closed output pipe and Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "bptt"
    previous = _handle_sigterm(raise_terminated)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help()
            return 0
        command = f"bptt {args.command}"
        status: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return status
    except _ParseError as e:
        print(e, file=sys.stderr)
        return 2
    except UsageError as e:
        print(f"{command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point stdout at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{command}: error: the output was closed before it was all written", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{command}: error: out of memory; try smaller sizes", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{command}: error: {_os_error(e)}", file=sys.stderr)
        return 2
    finally:
        _handle_sigterm(previous)


def _handle_sigterm(handler: Any) -> Any:
    """Install ``handler`` for SIGTERM and return the previous one; nothing outside the main
    thread (where Python allows no handlers) or where SIGTERM is ignored or not Python's."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if handler is None or previous in (None, signal.SIG_IGN):
        return None
    signal.signal(signal.SIGTERM, handler)
    return previous


def _os_error(e: OSError) -> str:
    """``'path': reason`` for an operating-system error, in one line."""
    where = f"{os.fsdecode(e.filename)!r}: " if e.filename is not None else ""
    return where + (e.strerror or str(e) or type(e).__name__)


if __name__ == "__main__":
    from bptt.__main__ import run

    run()
