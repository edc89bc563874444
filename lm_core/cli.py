"""`python -m lm_core {train,generate,bench,bench-bptt,evaluate-lyrics,bench-large,bench-memory}`.

Defaults are the book's settings. Bad arguments and bad files print one line
(`error: ...`) and exit with code 2; no traceback reaches the user. Every flag
is checked before the first training step (and before slow loads where it
can be): counts by their argparse type, settings by `TrainConfig.validate`,
output files by a probe write, so a bad value never costs a finished run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .corpus import BOOK_FILE, Corpus
from .errors import ConfigError, LabError
from .limits import MAX_CLI_CHECKPOINT_BYTES, MAX_THREADS

if TYPE_CHECKING:  # imported lazily at run time: `--help` and argument errors must not wait for torch
    from .checkpoint import Checkpoint
    from .training import EndEvent, EpochEvent, TrainConfig, Trainer

BOOK_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / BOOK_FILE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for our own errors
        self.exit(2, f"error: {message} (see `python -m lm_core {self.prog.split()[-1]} --help`)\n")


def _clip(value: str) -> float | None:
    if value.lower() in ("none", "off", "0"):
        return None
    try:
        theta = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"clip must be a number or 'none', not {value!r}") from None
    if not (math.isfinite(theta) and theta > 0):
        raise argparse.ArgumentTypeError("clip must be above 0 (or 'none')")
    return theta


def _max_chars(value: str) -> int | None:
    if value.lower() == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"max-chars must be a whole number or 'all', not {value!r}") from None
    if n < 2:
        raise argparse.ArgumentTypeError("max-chars must be at least 2")
    return n


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (inclusive); argparse names the flag in the error."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None
        if n < low or (high is not None and n > high):
            span = f"from {low:,} to {high:,}" if high is not None else f"at least {low:,}"
            raise argparse.ArgumentTypeError(f"must be {span} (got {n:,})")
        return n

    return parse


THREADS = _whole(1, MAX_THREADS)


def build_parser() -> argparse.ArgumentParser:
    from .models import MODEL_KINDS

    parser = _Parser(prog="python -m lm_core", description="The book's character-level RNN, from the terminal.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model and print perplexity per epoch")
    t.add_argument(
        "--corpus",
        default="songci",
        help="a .txt/.zip path, 'songci' (bundled, default) or 'songci:all' (every cleaned ci; also songci:su ...)",
    )
    t.add_argument("--songci-subset", default=None, help="which Song ci authors (default 辛弃疾)")
    t.add_argument("--model", choices=MODEL_KINDS, default="scratch-rnn")
    t.add_argument(
        "--sampling",
        choices=("random", "adjacent"),
        default=None,
        help="default: random for scratch models, adjacent for torch.nn (as the book)",
    )
    t.add_argument("--epochs", type=int, default=None, help="default: 250 (RNN) or 160 (GRU/LSTM)")
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--steps", type=int, default=35, help="num_steps T")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=None, help="default: 100 (SGD) or the book's Adam rate")
    t.add_argument("--optimizer", choices=("sgd", "adam"), default=None)
    t.add_argument("--clip", type=_clip, default=0.01, help="θ, or 'none'")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-chars", type=_max_chars, default=10_000, help="characters kept, or 'all'")
    t.add_argument("--val-fraction", type=float, default=0.0, help="held-out tail (whole ci) for validation perplexity")
    t.add_argument("--layers", type=int, default=1, help="stacked torch.nn layers, 1-3")
    t.add_argument("--dropout", type=float, default=0.0, help="dropout between layers (needs --layers 2 or 3)")
    t.add_argument("--embed", type=int, default=0, help="embedding size; 0 = one-hot input (the book)")
    t.add_argument("--steps-per-epoch", type=int, default=0, help="minibatches per epoch; 0 = a full pass")
    t.add_argument("--patience", type=int, default=0, help="early stopping after N epochs without a better val")
    t.add_argument("--jsonl", type=Path, default=None, help="write one JSON object per epoch here")
    t.add_argument("--save", type=Path, default=None, help="write a checkpoint here when done")
    t.add_argument("--resume", type=Path, default=None, help="continue training this checkpoint")
    t.add_argument("--print-every", type=_whole(1, 100_000), default=50, help="print greedy lines every N epochs")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--threads", type=THREADS, default=None, help="torch threads (default: torch's choice)")
    t.add_argument("--slim", action="store_true", help="save without the optimiser state (smaller file)")
    t.add_argument("--half", action="store_true", help="save the weights in float16 (half the file; loads as float32)")
    _add_exercise_flags(t)

    e = sub.add_parser("evaluate-lyrics", help="does a model write new ci? validation vs bigram, copied and CJK share")
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--corpus", default="songci:all", help="the corpus it was trained on (default songci:all)")
    e.add_argument("--max-chars", type=_max_chars, default=None, help="as in training (default: all)")
    e.add_argument("--threads", type=THREADS, default=1)
    e.add_argument("--show", type=_whole(0), default=5, help="print this many samples")

    bl = sub.add_parser("bench-large", help="chars/s and peak memory of a large model on all of Song ci")
    bl.add_argument("--model", choices=MODEL_KINDS, default="lstm")
    bl.add_argument("--hidden", type=int, default=512)
    bl.add_argument("--layers", type=int, default=2)
    bl.add_argument("--dropout", type=float, default=0.2)
    bl.add_argument("--embed", type=int, default=256)
    bl.add_argument("--steps", type=int, default=35, help="num_steps T")
    bl.add_argument("--batch", type=int, default=32)
    bl.add_argument("--sampling", choices=("random", "adjacent"), default="random")
    bl.add_argument("--val-fraction", type=float, default=0.0)
    bl.add_argument(
        "--steps-per-epoch", type=_whole(1, 1_000_000), default=20, help="minibatches timed (after one warm-up epoch)"
    )
    bl.add_argument("--threads", type=THREADS, default=1)
    bl.add_argument("--lesson", action="store_true", help="time the memorise-or-generalise preset instead")

    g = sub.add_parser("generate", help="write lyrics from a prefix with a checkpoint")
    g.add_argument("--checkpoint", type=Path, required=True)
    g.add_argument("--prefix", required=True)
    g.add_argument("--length", type=int, default=50)
    g.add_argument("--strategy", choices=("greedy", "sample"), default="greedy")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--seed", type=int, default=0)

    b = sub.add_parser("bench", help="seconds/epoch of each training path vs the book's procedure")
    b.add_argument("--corpus", type=Path, default=BOOK_CORPUS, help=f"default: ../shared/data/{BOOK_FILE}")
    b.add_argument("--epochs", type=int, default=6)
    b.add_argument("--seed", type=int, default=0)

    gb = sub.add_parser("bench-bptt", help="seconds per figure of the Gradients through time page")
    gb.add_argument("--corpus", type=Path, default=BOOK_CORPUS, help=f"default: ../shared/data/{BOOK_FILE}")
    gb.add_argument("--repeats", type=_whole(1), default=3)

    bm = sub.add_parser("bench-memory", help="the run-memory estimate against measured peak memory, per config")
    bm.add_argument("--full", action="store_true", help="also the reported 6.85 GB run itself (needs ~7 GB)")
    bm.add_argument("--only", default=None, help="only the configurations whose label contains this")
    return parser


def _add_exercise_flags(t: argparse.ArgumentParser) -> None:
    """The chapter's exercises the trainer can run, and the memory check's override."""
    t.add_argument(
        "--nonlinearity",
        choices=("tanh", "relu"),
        default="tanh",
        help="the RNN's φ (scratch-rnn, rnn): the book's tanh or ReLU; GRU/LSTM refuse relu",
    )
    t.add_argument(
        "--no-detach",
        action="store_true",
        help="adjacent sampling: do not detach the state between minibatches; each backward runs through the "
        "epoch so far (time grows with the square of its minibatches, memory with their number)",
    )
    t.add_argument(
        "--force",
        action="store_true",
        help="train even when the estimated peak memory is above the per-run budget (RNN_LAB_RUN_MEMORY)",
    )


def command_note(argv: list[str]) -> str:
    """The command line saved in a checkpoint, with every path cut to its file name.

    A checkpoint travels (shipped, uploaded, shared): it must not carry the folders of
    the machine it was trained on.
    """
    words = [Path(a).name if ("/" in a or "\\" in a) and not a.startswith("-") else a for a in argv]
    return "python -m lm_core " + " ".join(words)


def _load_corpus(spec: str, max_chars: int | None, subset: str | None = None):
    from .corpus import Corpus
    from .songci import DEFAULT_SUBSET, songci_corpus

    if spec == "songci":
        return songci_corpus(subset or DEFAULT_SUBSET, max_chars)
    if spec.startswith("songci:"):
        return songci_corpus(spec.split(":", 1)[1], max_chars)  # an id or an old subset name
    return Corpus.from_file(spec, max_chars)


def _set_threads(threads: int | None) -> None:
    """`--threads` (already within 1..MAX_THREADS by its argparse type), or torch's own choice."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)


def _check_output(path: Path, flag: str, make_parents: bool) -> None:
    """Refuse an output file that cannot be written, before the work whose result it is to hold.

    A probe file is made (and removed) in the nearest folder that exists: root
    ignores permission bits, a read-only file system does not, and only the OS
    knows. `make_parents`: missing folders will be created (as `--save` does).
    """
    path = path.expanduser()
    if path.is_dir():
        raise ConfigError(
            "error.cli.output_is_folder",
            flag=flag,
            path=path,
        )
    folder = path.parent
    if not make_parents and not folder.is_dir():
        raise ConfigError("error.cli.no_folder", flag=flag, path=path, folder=folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError("error.cli.not_a_folder", flag=flag, path=path, existing=existing)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=existing)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError("error.cli.not_writable", flag=flag, path=path, reason=reason) from exc
    os.close(fd)
    os.unlink(probe)


def _progress(done: int, total: int, ppl: float, secs: float) -> str:
    width = 30
    filled = int(width * done / total)
    eta = secs * (total - done)
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} perplexity {ppl:8.2f}  {secs:.2f}s/epoch  ~{eta:.0f}s left"


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run `python -m lm_core train` asks for: the book's settings for the model, overridden by the flags.

    Pure (no files, no printing, no torch threads), so each flag's mapping can be tested without
    training. An invalid combination raises the `ConfigError` the trainer would raise.
    """
    from .training import book_config

    overrides = {
        "hidden": args.hidden,
        "num_steps": args.steps,
        "batch_size": args.batch,
        "clip": args.clip,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "num_layers": args.layers,
        "dropout": args.dropout,
        "embed": args.embed,
        "steps_per_epoch": args.steps_per_epoch,
        "patience": args.patience,
    }
    overrides |= _exercise_settings(args)
    for key, value in (("epochs", args.epochs), ("lr", args.lr), ("optimizer", args.optimizer)):
        if value is not None:
            overrides[key] = value
    if args.optimizer and args.lr is None:  # another optimiser than the chapter's: that optimiser's usual rate
        overrides["lr"] = 100.0 if args.optimizer == "sgd" else 1e-3
    cfg = book_config(args.model, args.sampling, **overrides)
    cfg.validate()
    return cfg


def _exercise_settings(args: argparse.Namespace) -> dict[str, object]:
    return {"nonlinearity": args.nonlinearity, "detach": not args.no_detach}


def _new_trainer(corpus: Corpus, config: TrainConfig, force: bool, resumed: Checkpoint | None) -> Trainer:
    """The run (continuing `resumed` if given), its estimated peak memory checked against the per-run budget
    unless `--force`.

    The CLI refuses like the app (the same sentence, naming the setting to lower): the machine is shared
    with the app's workers, so an accidental 7 GB run should stop before it allocates. The operator, who
    may know better (a machine of their own, a budget set for the server), can say `--force`.
    """
    from .checkpoint import resume
    from .memory import run_memory_budget, size_text

    trainer = resume(resumed, corpus, config, memory_budget=math.inf if force else None)
    budget = run_memory_budget()
    over = " (above it: --force)" if trainer.memory.total > budget else ""
    print(
        f"memory: estimated peak about {size_text(trainer.memory.total)}, per-run budget {size_text(budget)}{over}",
        file=sys.stderr,
    )
    return trainer


def _print_setup(trainer: Trainer) -> None:
    """What is about to run: corpus and config on stderr, the n-gram baselines (if validating) on stdout."""
    corpus = trainer.corpus
    print(f"corpus {corpus.name}: {len(corpus):,} characters, vocabulary {corpus.vocab_size:,}", file=sys.stderr)
    print(f"config {json.dumps(trainer.config.to_dict(), ensure_ascii=False)}", file=sys.stderr)
    if trainer.baselines:
        b = trainer.baselines
        print(
            f"baselines on the validation split ({len(trainer.val_ids):,} characters): unigram {b.unigram:.2f}, "
            f"bigram {b.bigram:.2f}, uniform {b.vocab_size:,}"
        )


def _print_epoch(event: EpochEvent, trainer: Trainer, args: argparse.Namespace, prefixes: tuple[str, ...]) -> None:
    """The progress bar (a terminal only), and every `--print-every` epochs a line with greedy samples."""
    from .generation import generate

    epochs = trainer.config.epochs
    bar = not args.quiet and sys.stderr.isatty()
    if bar:
        print(_progress(event.epoch, epochs, event.perplexity, event.seconds), end="", file=sys.stderr)
    if event.epoch % args.print_every == 0 or event.epoch == epochs:
        if bar:
            print(file=sys.stderr)
        val = f", validation {event.val_perplexity:.2f}" if event.val_perplexity else ""
        if event.best_epoch is not None:
            val += f" (best {trainer.best_val:.2f} at epoch {event.best_epoch})"
        print(
            f"epoch {event.epoch}, perplexity {event.perplexity:.2f}{val}, "
            f"time {event.seconds:.2f} sec, clipped {event.clipped_fraction:.0%}"
        )
        for p in prefixes:
            print(" -", generate(trainer.model, trainer.corpus, p, 50).text)


def _run(trainer: Trainer, args: argparse.Namespace) -> EndEvent | None:
    """Train to the end (or Ctrl-C), writing `--jsonl` as it goes; the run's EndEvent, None if interrupted."""
    from .generation import default_prefixes
    from .training import EndEvent, EpochEvent

    prefixes = default_prefixes(trainer.corpus)
    jsonl = args.jsonl.open("w", encoding="utf-8") if args.jsonl else None
    end = None
    try:
        for event in trainer.train():
            if isinstance(event, EpochEvent):
                if jsonl:
                    jsonl.write(json.dumps(event.to_dict()) + "\n")
                    jsonl.flush()
                _print_epoch(event, trainer, args, prefixes)
            elif isinstance(event, EndEvent):
                end = event
    except KeyboardInterrupt:
        print("\ninterrupted: saving what was trained so far", file=sys.stderr)
    finally:
        if jsonl:
            jsonl.close()
    return end


def _save(trainer: Trainer, args: argparse.Namespace) -> None:
    """Write `--save` (best-by-validation weights when validating), `--slim` and `--half` applied."""
    from . import checkpoint

    ckpt = checkpoint.from_trainer(trainer, note=command_note(sys.argv[1:]), best=bool(trainer.val_ids))
    if args.slim:
        ckpt.optimizer_state = None
    checkpoint.save(ckpt, args.save, half=args.half)
    which = f" (best by validation: epoch {ckpt.best_epoch})" if ckpt.best_epoch else ""
    print(f"saved {args.save}{which}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    from . import checkpoint

    # Every flag before anything slow: the settings, where the results go, the checkpoint to resume.
    config = config_from_args(args)
    if args.save:
        _check_output(args.save, "--save", make_parents=True)
    if args.jsonl:
        _check_output(args.jsonl, "--jsonl", make_parents=False)
    resumed = checkpoint.load(args.resume, MAX_CLI_CHECKPOINT_BYTES) if args.resume else None
    _set_threads(args.threads)
    corpus = _load_corpus(args.corpus, args.max_chars, args.songci_subset)
    if resumed is not None and resumed.optimizer_dropped:
        print(f"note: {args.resume.name} has a malformed optimiser state; it starts afresh", file=sys.stderr)
    trainer = _new_trainer(corpus, config, args.force, resumed)
    _print_setup(trainer)
    end = _run(trainer, args)
    if args.save:
        _save(trainer, args)
    if end is not None and end.status == "diverged":
        print(f"error: {end.message}", file=sys.stderr)
        return 1
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from . import checkpoint
    from .generation import generate

    ckpt = checkpoint.load(args.checkpoint, MAX_CLI_CHECKPOINT_BYTES)
    model = ckpt.build_model()
    out = generate(model, ckpt.vocab, args.prefix, args.length, args.strategy, args.temperature, args.top_k, args.seed)
    print(out.text)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import training_paths
    from .corpus import Corpus
    from .training import TrainConfig

    if args.epochs < 2:
        raise ConfigError("error.cli.bench_epochs")
    TrainConfig(seed=args.seed).validate()  # before the corpus is read
    corpus = Corpus.from_file(args.corpus)
    print(f"bench on {args.corpus.name}: {len(corpus):,} characters, vocabulary {corpus.vocab_size:,}", file=sys.stderr)
    print(training_paths.main(corpus, args.epochs, args.seed))
    return 0


def cmd_bench_bptt(args: argparse.Namespace) -> int:
    from .bench import gradient_figures
    from .corpus import Corpus

    corpus = Corpus.from_file(args.corpus)
    print(f"bench-bptt on {args.corpus.name}: vocabulary {corpus.vocab_size:,}", file=sys.stderr)
    print(gradient_figures.main(corpus, max(1, args.repeats)))
    return 0


def cmd_evaluate_lyrics(args: argparse.Namespace) -> int:
    from . import checkpoint
    from .analysis.evaluate import LENGTH, MIN_COPIED, PREFIXES, SEEDS, TEMPERATURE, evaluate_lyrics

    _set_threads(args.threads)
    ckpt = checkpoint.load(args.checkpoint, MAX_CLI_CHECKPOINT_BYTES)
    corpus = _load_corpus(args.corpus, args.max_chars)
    report = evaluate_lyrics(ckpt, corpus)
    best = f", weights of epoch {ckpt.best_epoch}" if ckpt.best_epoch else ""
    print(f"checkpoint {args.checkpoint.name}: {ckpt.describe()}{best}")
    if report.val_perplexity is not None and report.baselines is not None:
        b = report.baselines
        print(
            f"validation perplexity {report.val_perplexity:.2f}; bigram {b.bigram:.2f}, unigram {b.unigram:.2f} "
            f"-> {report.below_bigram:.1%} below the bigram (target >= 25%)"
        )
    else:
        print("validation perplexity: none (the checkpoint was trained without a validation share)")
    n = len(report.samples)
    print(
        f"{n} samples of {LENGTH} characters at temperature {TEMPERATURE} ({len(SEEDS)} seeds × {', '.join(PREFIXES)}):"
    )
    print(f"copied from the training text in stretches of {MIN_COPIED}+: {report.copied_share:.1%} (target <= 10%)")
    print(f"CJK characters and the corpus's punctuation: {report.cjk_share:.1%} (target >= 95%)")
    for text in report.samples[:: max(1, n // max(1, args.show))][: args.show]:
        print(" -", text)
    return 0


def cmd_bench_large(args: argparse.Namespace) -> int:
    from .bench import large_model
    from .training import TrainConfig

    if args.lesson:
        print(large_model.lesson(args.threads))
        return 0
    cfg = TrainConfig(
        model=args.model,
        sampling=args.sampling,
        hidden=args.hidden,
        num_layers=args.layers,
        dropout=args.dropout,
        embed=args.embed,
        num_steps=args.steps,
        batch_size=args.batch,
        optimizer="adam",
        lr=2e-3,
        clip=1.0,
        val_fraction=args.val_fraction,
        steps_per_epoch=args.steps_per_epoch,
    )
    cfg.validate()  # before all of Song ci is loaded
    print(large_model.main(cfg, args.steps_per_epoch, args.threads))
    return 0


def cmd_bench_memory(args: argparse.Namespace) -> int:
    from .bench import run_memory

    run_memory.main(full=args.full, only=args.only)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "train": cmd_train,
        "generate": cmd_generate,
        "bench": cmd_bench,
        "bench-bptt": cmd_bench_bptt,
        "evaluate-lyrics": cmd_evaluate_lyrics,
        "bench-large": cmd_bench_large,
        "bench-memory": cmd_bench_memory,
    }
    try:
        return handlers[args.command](args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "), file=sys.stderr)
        return 2
