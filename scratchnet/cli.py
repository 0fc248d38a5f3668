"""`python -m scratchnet` (or `scratchnet`): build the data, train, sweep, evaluate, denoise,
benchmark."""
from __future__ import annotations

import argparse
import pickle
import sys
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

EPILOG = """\
examples:
  python -m scratchnet data                              # data/train_data.pkl, data/val_data.pkl
  python -m scratchnet data --from-folder ~/photos --data-dir data/photos
  python -m scratchnet train --model unet --epochs 5 --out runs/unet.pth
  python -m scratchnet train --model unet --epochs 8 --out runs/unet.pth --resume
  python -m scratchnet train --epochs 5 --out runs/tracked.pth --log-dir runs/tracked
  python -m scratchnet sweep --lr 1e-3,3e-3,1e-2 --batch-size 16,64 --channels 24,48 --seeds 3
  python -m scratchnet evaluate                          # pretrained models vs. classical baselines
  python -m scratchnet evaluate --checkpoint runs/unet.pth
  python -m scratchnet denoise noisy.png clean.png --model unet
  python -m scratchnet benchmark --quick
  python -m scratchnet handout build/student            # the course's student edition
  python -m scratchnet grade submissions/* --csv grades.csv
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (0 on success). Anything wrong with a file,
    a flag or the machine is one line on stderr — which file or flag, what is wrong, what to
    do — and exit status 1; warnings are one line each; Ctrl-C is exit status 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "benchmark":
        from .benchmark import main as benchmark_main

        return benchmark_main(argv[1:]) or 0
    args = build_parser().parse_args(argv)
    prefix = f"scratchnet {args.command}"

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{prefix}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return args.run(args)
        except KeyboardInterrupt:
            print(f"\n{prefix}: interrupted; no file was left half-written", file=sys.stderr)
            return 130
        except (ValueError, OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
            print(f"{prefix}: error: {_one_line(e)}", file=sys.stderr)
            return 1


def _one_line(e: BaseException) -> str:
    """An exception as one line that names the file when the OS error carries one."""
    if isinstance(e, OSError) and e.filename and str(e.filename) not in (e.strerror or ""):
        return f"{e.filename}: {e.strerror or e}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = " ".join(str(e).split())
    return text or type(e).__name__


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .coursework.grade import DEFAULT_JOBS, DEFAULT_TIMEOUT

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="scratchnet", formatter_class=formatter, epilog=EPILOG,
        description="A Noise2Noise denoiser built on scratchnet, PyTorch's core rebuilt from "
                    "scratch.")
    parser.add_argument("--version", action="version", version=f"scratchnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, description: str, examples: str):
        return sub.add_parser(name, help=help_, description=textwrap.fill(description, 79),
                              epilog=examples, formatter_class=formatter)

    p = command("data", "build the training and validation data files",
                "Write DIR/train_data.pkl (two noisy copies of each 32×32 crop) and "
                "DIR/val_data.pkl (noisy, clean) in the course's format, from images shipped with "
                "scikit-image, scikit-learn and matplotlib, or from your own image folder. "
                "Existing files are kept unless --force.",
                "examples:\n  python -m scratchnet data\n"
                "  python -m scratchnet data --n-train 2000 --n-val 200 --data-dir /tmp/small\n"
                "  python -m scratchnet data --noise poisson --peak 20 --data-dir data/poisson "
                "--force\n"
                "  python -m scratchnet data --from-folder ~/photos --data-dir data/photos")
    p.add_argument("--data-dir", "--dir", dest="data_dir", type=Path, default=None,
                   metavar="DIR",
                   help="output folder (default: $SCRATCHNET_DATA_DIR, or data/ in the checkout)")
    p.add_argument("--n-train", type=_positive_int, default=50_000,
                   help="training pairs (default 50000)")
    p.add_argument("--n-val", type=_positive_int, default=1_000,
                   help="validation images (default 1000)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--noise", default="gaussian", choices=_noise_models(),
                   help="noise model (default gaussian)")
    p.add_argument("--sigma", type=_positive_float, default=None,
                   help="gaussian noise: standard deviation on the 0..255 scale (default 25)")
    p.add_argument("--peak", type=_positive_float, default=None,
                   help="poisson noise: photons at full brightness; fewer is noisier (default 40)")
    p.add_argument("--amount", type=_fraction, default=None,
                   help="salt_pepper noise: fraction of values set to 0 or 255 (default 0.05)")
    p.add_argument("--from-folder", type=Path, default=None, metavar="FOLDER",
                   help="crop your own images (png, jpg, …, searched recursively) instead")
    p.add_argument("--no-colour-augment", dest="colour_augment", action="store_false",
                   help="keep the training crops in their own colours (default: random hue, "
                        "saturation and inversion before the noise, so the network meets colours "
                        "its few source photographs lack)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(run=run_data)

    p = command("train", "train a denoiser, with checkpoints you can resume",
                "Train on DATA_DIR/train_data.pkl (built first if absent), report the PSNR on "
                "DATA_DIR/val_data.pkl after every epoch, and save a checkpoint after every epoch "
                "(latest weights, optimizer state, history, and the best epoch's weights).",
                "examples:\n  python -m scratchnet train --model course --epochs 10\n"
                "  python -m scratchnet train --model unet --epochs 5 --out runs/unet.pth "
                "--export unet.pth\n"
                "  python -m scratchnet train --model unet --epochs 8 --out runs/unet.pth "
                "--resume\n"
                "  python -m scratchnet train --optimizer sgd --lr 0.05 --momentum 0.9 "
                "--max-train 5000\n"
                "  python -m scratchnet train --epochs 5 --out runs/tracked.pth --log-dir "
                "runs/tracked\n"
                "  tensorboard --logdir runs")
    _model_args(p)
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs in all (default 10)")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="mini-batch size (default 32)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="optimizer (default adam; when resuming, the checkpoint's)")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default 1e-3 for adam, 0.05 for sgd; when resuming, "
                        "the checkpoint's)")
    p.add_argument("--momentum", type=_non_negative_float, default=None,
                   help="sgd momentum (default 0.9)")
    _data_args(p, train=True)
    p.add_argument("--max-train", type=_positive_int, default=None, metavar="N",
                   help="use only the first N training pairs")
    p.add_argument("--augment", action="store_true",
                   help="random flips/90° rotations of the training pairs")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the initial weights, shuffling and augmentation (default 0)")
    p.add_argument("--out", type=Path, default=None, metavar="CKPT",
                   help="checkpoint file (default runs/<model>.pth)")
    p.add_argument("--resume", action="store_true",
                   help="continue from CKPT if it exists, up to --epochs epochs in all (its "
                        "model and optimizer unless given)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing CKPT (and --export file) instead of refusing")
    p.add_argument("--export", type=Path, default=None, metavar="PTH",
                   help="also save the best weights as a bare state_dict (the format of "
                        "scratchnet/weights/*.pth); not the same file as CKPT")
    p.add_argument("--log-dir", type=Path, default=None, metavar="DIR",
                   help="also write TensorBoard event files to DIR, this run's own folder: the "
                        "loss of each batch, per epoch the loss, validation PSNR and learning "
                        "rate, a few validation images, and the hyperparameters (tensorboard "
                        "--logdir PARENT compares the runs in PARENT); with --resume they go on. "
                        "Needs pip install -e \".[tracking]\"")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_train)

    p = command("sweep", "train the course network over a grid of settings and compare them",
                "Train the course network with Adam for every combination of the learning "
                "rates, batch sizes and widths given (or --random K of them), with --seeds "
                "seeds each, each run in its own folder under OUT with its TensorBoard events "
                "and, once finished, its result.json. Run the same command again (after Ctrl-C, "
                "say) and the finished runs are skipped; a half-done one starts over. Prints "
                "the mean ± std over seeds of each setting, best first, and writes "
                "OUT/summary.csv (one row per run) and OUT/summary.png (PSNR by setting). "
                "Needs pip install -e \".[tracking]\".",
                "examples:\n  python -m scratchnet sweep --lr 1e-3,3e-3,1e-2 --batch-size 16,64 "
                "--channels 24,48 --epochs 5 --max-train 2000 --max-val 200\n"
                "  python -m scratchnet sweep --lr 1e-3,3e-3 --seeds 3 --jobs 2 --out runs/lr\n"
                "  python -m scratchnet sweep --lr 1e-4,1e-2 --batch-size 16,32,64 --random 8 "
                "--out runs/random\n"
                "  tensorboard --logdir runs/sweep")
    p.add_argument("--lr", type=_list_of(_positive_float, "positive numbers"), default=(1e-3,),
                   metavar="LIST",
                   help="learning rates, comma-separated (default 1e-3); with --random, the "
                        "range to draw from, log-uniformly")
    p.add_argument("--batch-size", type=_list_of(_positive_int, "positive integers"),
                   default=(32,), metavar="LIST", help="mini-batch sizes (default 32)")
    p.add_argument("--channels", type=_list_of(_positive_int, "positive integers"),
                   default=(48,), metavar="LIST",
                   help="widths of the course network (default 48)")
    p.add_argument("--seeds", type=_positive_int, default=1, metavar="N",
                   help="train each setting with the seeds 0 … N-1 (default 1)")
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs per run (default 10)")
    p.add_argument("--random", type=_positive_int, default=None, metavar="K",
                   help="train K settings drawn at random instead of every combination: the "
                        "learning rate log-uniform between the smallest and largest --lr, batch "
                        "size and width among those given")
    p.add_argument("--random-seed", type=_seed, default=0, metavar="S",
                   help="seed of the --random draw (default 0: the same K settings every time)")
    _data_args(p, train=True)
    p.add_argument("--max-train", type=_positive_int, default=None, metavar="N",
                   help="train on the first N training pairs only")
    p.add_argument("--max-val", type=_positive_int, default=None, metavar="N",
                   help="validate on the first N validation pairs only")
    p.add_argument("--out", type=Path, default=Path("runs/sweep"), metavar="OUT",
                   help="folder of the runs and the summary (default runs/sweep)")
    p.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                   help=f"runs trained at a time, each in its own process sharing the CPUs "
                        f"(default 1; this machine has {_cpu_count()})")
    p.add_argument("--device", default="auto", help="cpu, cuda, … (default: cuda if available)")
    p.set_defaults(run=run_sweep)

    p = command("evaluate", "PSNR of denoisers and classical baselines on validation data",
                "Print a table of PSNRs on (noisy, clean) validation pairs: the noisy input, "
                "the classical baselines — non-local means and total variation (their strength "
                "tuned on the first --tune-on images) and BM3D (CBM3D, its noise level measured "
                "on them) — and each denoiser (the shipped weights by default), with the number "
                "of images behind each figure and its time. BM3D takes about a second per 32×32 "
                "image per core: the baselines run in --jobs processes, and --every or --max-val "
                "take a subset.",
                "examples:\n  python -m scratchnet evaluate\n"
                "  python -m scratchnet evaluate --every 10 --jobs 4          # 100 of 1000 images\n"
                "  python -m scratchnet evaluate --baselines nlm,tv --max-val 200\n"
                "  python -m scratchnet evaluate --checkpoint runs/unet.pth --model course\n"
                "  python -m scratchnet evaluate --val data/poisson/val_data.pkl --no-baselines\n"
                "  python -m scratchnet evaluate --model unet --ensemble --unclip --no-baselines")
    p.add_argument("--model", action="append", choices=_model_names(), default=None,
                   help="a model with the shipped weights (repeatable; default: all of them "
                        "unless --checkpoint is given)")
    p.add_argument("--checkpoint", action="append", type=Path, default=None, metavar="CKPT",
                   help="a checkpoint written by train (repeatable); its best epoch is used")
    _data_args(p, train=False)
    p.add_argument("--max-val", type=_positive_int, default=None, metavar="N",
                   help="use only the first N validation images")
    p.add_argument("--every", type=_positive_int, default=1, metavar="K",
                   help="use every K-th validation image (of the first N with --max-val), "
                        "starting with the first (default 1: all)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--baselines", type=_baseline_list, default=None, metavar="LIST",
                       help=f"classical baselines to run, comma-separated among "
                            f"{','.join(_baseline_names())} (default: all of them)")
    which.add_argument("--no-baselines", action="store_true",
                       help="skip the classical baselines (they take a while)")
    p.add_argument("--tune-on", type=_positive_int, default=200, metavar="N",
                   help="images used to tune the baselines' strength and measure the noise "
                        "level (default 200)")
    p.add_argument("--jobs", type=_positive_int, default=_cpu_count(), metavar="N",
                   help=f"processes the baselines run in (default: the CPUs, {_cpu_count()}); "
                        "the figures do not depend on it")
    _enhance_args(p, measure=True)
    p.add_argument("--device", default="auto", help="cpu, cuda, … (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_evaluate)

    p = command("denoise", "denoise an image file",
                "Denoise one image of any size: it is padded by reflection to a multiple of the "
                "model's stride, denoised, and cropped back; a large one is denoised in "
                "overlapping tiles (--tile), so photos of any size fit in memory. Grey images "
                "come out as RGB.",
                "examples:\n  python -m scratchnet denoise noisy.png denoised.png\n"
                "  python -m scratchnet denoise photo.jpg out.png --model unet\n"
                "  python -m scratchnet denoise photo.jpg out.png --checkpoint runs/unet.pth\n"
                "  python -m scratchnet denoise big.jpg out.jpg --tile 256 --no-progress\n"
                "  python -m scratchnet denoise noisy.png out.png --ensemble --unclip 25")
    p.add_argument("input", type=Path, help="image file to read (png, jpg, …)")
    p.add_argument("output", type=Path,
                   help="image file to write (.png, .jpg, …: the format follows the suffix); an "
                        "existing file is replaced, keeping its permissions")
    p.add_argument("--model", choices=_model_names(), default=None,
                   help="model with the shipped weights (default unet)")
    p.add_argument("--checkpoint", type=Path, default=None, metavar="CKPT",
                   help="use a checkpoint written by train instead")
    p.add_argument("--device", default="auto", help="cpu, cuda, … (default: cuda if available)")
    p.add_argument("--tile", type=_count, default=512, metavar="N",
                   help="denoise an image taller or wider than N pixels in tiles of at most "
                        "N×N, each with a margin of context as wide as the network's receptive "
                        "field (the same result; memory stays under about 1 GB at any size); 0: "
                        "the whole image at once (default 512)")
    _enhance_args(p, measure=False)
    p.add_argument("--no-progress", action="store_true", help="no progress bar over the tiles")
    p.set_defaults(run=run_denoise)

    p = command("handout", "write the student edition of the course",
                "Write OUT, the course's student edition: the package with each task's solution "
                "replaced by a stub that raises NotImplementedError naming the task, without the "
                "fast paths; the notebooks with outputs cleared, solution cells blanked and hidden "
                "tests removed; the task tests, a Makefile and a README. A student edition "
                "written before into OUT is replaced; any other non-empty OUT is refused.",
                "examples:\n  python -m scratchnet handout build/student\n"
                "  python -m scratchnet handout /tmp/student --source ~/src/scratchnet")
    p.add_argument("out", type=Path, metavar="OUT", help="folder to write (replaced if it holds a "
                                                         "previous hand-out)")
    p.add_argument("--source", type=Path, default=None, metavar="DIR",
                   help="the instructor's checkout (default: the one scratchnet runs from)")
    p.set_defaults(run=run_handout)

    p = command("grade", "grade students' copies of the hand-out",
                "Grade each SUBMISSION (a student's copy of the hand-out folder) with the "
                "instructor's tests/tasks/ and notebooks (graded cells with their hidden tests) "
                "of the checkout scratchnet runs from. Only the submission's scratchnet/ and "
                "notebooks/*.ipynb are used: each is copied into a temporary folder and run "
                "there, in a sandbox, in subprocesses with time limits. Prints points per task "
                "and submission; written answers are graded by hand (\"manual\"). A task "
                "whose code uses a forbidden API or reaches around the grader scores 0 and the "
                "submission is FLAGGED.",
                "examples:\n  python -m scratchnet grade submissions/*\n"
                "  python -m scratchnet grade submissions/* --csv grades.csv --feedback feedback\n"
                "  python -m scratchnet grade submissions/* --csv grades.csv --resume\n"
                "  python -m scratchnet grade submissions/* --similarity similarity.html\n"
                "  python -m scratchnet grade alice --tasks T01,T04.4 --timeout 10")
    p.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                   help="a student's hand-out folder (with scratchnet/ and notebooks/)")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE",
                   help="also write one row per submission (submission, each task, total, max, "
                        "flags), each as soon as it is graded")
    p.add_argument("--feedback", type=Path, default=None, metavar="DIR",
                   help="also write DIR/<submission>.md for each submission: its points per "
                        "task, every failing check's full message and its flags")
    p.add_argument("--resume", action="store_true",
                   help="skip the submissions already in the --csv file (an interrupted run's)")
    p.add_argument("--similarity", type=Path, default=None, metavar="FILE.html",
                   help="also compare the submissions' task code pairwise (copydetect; the "
                        "hand-out's code as boilerplate) and write the most similar pairs, "
                        "their matching code side by side, to FILE.html")
    p.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit of one test (default {DEFAULT_TIMEOUT:g}); a notebook cell "
                        "gets 4 times as much, a notebook and a test run 20 times")
    p.add_argument("--jobs", type=_positive_int, default=DEFAULT_JOBS, metavar="N",
                   help=f"test runs and notebooks at a time (default {DEFAULT_JOBS})")
    p.add_argument("--tasks", default=None, metavar="IDS",
                   help="grade only these tasks, ids or whole notebooks (e.g. T01,T04.4)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="say why points were lost (first line of each failing check)")
    p.add_argument("--source", type=Path, default=None, metavar="DIR",
                   help="the instructor's checkout (default: the one scratchnet runs from)")
    p.add_argument("--keep", action="store_true",
                   help="keep each submission's temporary folder and print where it is (for "
                        "debugging the grader)")
    p.set_defaults(run=run_grade)

    sub.add_parser("benchmark", add_help=False,
                   help="time scratchnet against torch.nn (see: python -m scratchnet benchmark "
                        "--help)")
    return parser


OPTIMIZERS = ("adam", "sgd")


def _number(kind: type, test, rule: str):
    """An argparse type: kind(text), which must pass `test`; the message names the rule."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text}")
        return value

    parse.__name__ = rule
    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_count = _number(int, lambda v: v >= 0, "an integer ≥ 0")
_seed = _number(int, lambda v: 0 <= v < 2**63, "a seed, an integer ≥ 0")
_positive_float = _number(float, lambda v: v > 0 and v != float("inf"), "a positive number")
_non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number ≥ 0")
_fraction = _number(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]")
_noise_level = _number(float, lambda v: 0 < v < 255, "a noise level in (0, 255)")


def _baseline_names() -> list[str]:
    from .baselines import METHODS

    return list(METHODS)


def _baseline_list(text: str) -> tuple[str, ...]:
    """An argparse type: 'nlm,bm3d' → ('nlm', 'bm3d'), each a known baseline, none twice."""
    names = _baseline_names()
    chosen = tuple(part.strip().lower() for part in text.split(","))
    bad = [c for c in chosen if c not in names]
    why = "empty" if not text.strip() else f"unknown {', '.join(map(repr, bad))}" if bad \
        else "repeated" if len(set(chosen)) != len(chosen) else None
    if why:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(names)}"
                                         f" (or --no-baselines), got {text!r} ({why})")
    return chosen


_baseline_list.__name__ = "a list of baselines"


def _list_of(parse, plural: str):
    """An argparse type: '1e-3,3e-3' → (0.001, 0.003), each item read by `parse`, none twice."""
    def parse_list(text: str) -> tuple:
        items = text.split(",")
        try:
            values = tuple(parse(item.strip()) for item in items)
        except argparse.ArgumentTypeError:
            values = None
        why = "empty" if not text.strip() else "" if values is None else \
            "repeated" if len(set(values)) != len(values) else None
        if why is not None:
            raise argparse.ArgumentTypeError(f"expected comma-separated {plural}, got {text!r}"
                                             + (f" ({why})" if why else ""))
        return values

    parse_list.__name__ = f"a list of {plural}"
    return parse_list


def _cpu_count() -> int:
    """The CPUs this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                     # not Linux
        return os.cpu_count() or 1


def _enhance_args(p: argparse.ArgumentParser, measure: bool) -> None:
    """--ensemble and --unclip: what Model.predict can add to a network without retraining it."""
    p.add_argument("--ensemble", action="store_true",
                   help="average each network's outputs over the 8 flips/90° rotations of the "
                        "image (8× the time)")
    if measure:
        p.add_argument("--unclip", nargs="?", type=_noise_level, const=0.0, default=None,
                       metavar="SIGMA",
                       help="undo the bias that clipping to 0..255 puts into the mean of "
                            "Gaussian noise of level SIGMA (between 0 and 255, exclusive) — "
                            "for each network and each baseline; without SIGMA it is measured "
                            "from the noisy pairs of DATA_DIR/train_data.pkl. For Gaussian "
                            "noise only: on other noise it makes results worse")
    else:
        p.add_argument("--unclip", type=_noise_level, default=None, metavar="SIGMA",
                       help="undo the bias that clipping to 0..255 put into the network's "
                            "Noise2Noise targets: SIGMA is the Gaussian noise level of its "
                            "training data (25 for the shipped weights, between 0 and 255). For "
                            "photos with Gaussian-like noise of about that level; on clean "
                            "photos or other noise it makes results worse")


def _unclip_sigma(args: argparse.Namespace) -> float | None:
    """--unclip's σ on the 0..1 scale: as given, or (0.0 = no value given) measured with
    pair_noise_sigma from the first 2000 pairs of DATA_DIR's training file, which must exist (it
    is not built for this); None without --unclip."""
    if args.unclip is None:
        return None
    if args.unclip:
        return args.unclip / 255
    from .data import TRAIN_FILE, default_data_dir
    from .unclip import pair_noise_sigma

    train = (args.data_dir if args.data_dir is not None else default_data_dir()) / TRAIN_FILE
    if not train.exists():
        raise ValueError(f"--unclip without SIGMA measures the noise level from the noisy pairs "
                         f"of {train}, which does not exist: give the level (--unclip 25) or "
                         "the folder that holds the training pairs (--data-dir)")
    a, b = _load_pairs(train, "--data-dir", 2000)
    sigma = pair_noise_sigma(a, b)
    print(f"--unclip: noise level {sigma * 255:.2f} (0..255), measured from {len(a)} noisy "
          f"pairs of {train}", file=sys.stderr)
    return sigma


def _enhanced(model, args: argparse.Namespace, sigma: float | None) -> str:
    """The label of `model` with the --ensemble/--unclip options it runs with."""
    label = str(model)
    if args.ensemble:
        label += " + 8× self-ensemble"
    return label if sigma is None else _with_unclip(label, sigma)


def _with_unclip(label: str, sigma: float) -> str:
    """A result's label, marked as unclipped at noise level sigma (0..1 scale)."""
    return f"{label} + unclip (σ={sigma * 255:.1f})"


def _noise_models() -> tuple[str, ...]:
    from .data.noise import NOISE_MODELS

    return NOISE_MODELS


def _model_names() -> list[str]:
    from .models import MODELS

    return sorted(MODELS)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=_model_names(), default=None,
                   help="architecture (default course; when resuming, the checkpoint's)")
    p.add_argument("--channels", type=_positive_int, default=None,
                   help="width: course channels (default 48), unet channels of the first level")
    p.add_argument("--device", default="auto", help="cpu, cuda, … (default: cuda if available)")


def _data_args(p: argparse.ArgumentParser, train: bool) -> None:
    p.add_argument("--data-dir", "--dir", dest="data_dir", type=Path, default=None, metavar="DIR",
                   help="folder of train_data.pkl and val_data.pkl (default: as for data)")
    if train:
        p.add_argument("--train", type=Path, default=None, metavar="PKL",
                       help="training pairs (default DATA_DIR/train_data.pkl)")
    p.add_argument("--val", type=Path, default=None, metavar="PKL",
                   help="validation pairs (default DATA_DIR/val_data.pkl)")


def _data_files(args: argparse.Namespace, need_train: bool) -> tuple[Path | None, Path]:
    """The training (when needed) and validation files: those given, else the default ones in
    DATA_DIR, which are built first when absent."""
    from .data import TRAIN_FILE, VAL_FILE, default_data_dir
    from .data.paths import build_missing

    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    train = getattr(args, "train", None) or data_dir / TRAIN_FILE
    val = args.val or data_dir / VAL_FILE
    build_train = need_train and getattr(args, "train", None) is None and not train.exists()
    build_val = args.val is None and not val.exists()
    if build_train or build_val:
        print(f"building the default data set in {data_dir} (once; see python -m scratchnet "
              "data --help)", file=sys.stderr)
        build_missing(train if build_train else None, val if build_val else None)
    return (train if need_train else None), val


def _load_pairs(path: Path, flag: str, limit: int | None = None):
    """The pairs in `path`, the first `limit` of them; a ValueError naming the file and the flag
    that chooses it when there are none."""
    from .data import load_pairs

    a, b = load_pairs(path)
    if len(a) == 0:
        raise ValueError(f"{path} holds no images: rebuild it (python -m scratchnet data "
                         f"--force) or choose another file with {flag}")
    return (a, b) if limit is None else (a[:limit], b[:limit])


def run_data(args: argparse.Namespace) -> int:
    from .data import (
        TRAIN_FILE,
        VAL_FILE,
        build_default_dataset,
        dataset_from_folder,
        default_data_dir,
        save_pairs,
    )

    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    targets = {"train": data_dir / TRAIN_FILE, "val": data_dir / VAL_FILE}
    todo = {k: p for k, p in targets.items() if args.force or not p.exists()}
    for p in targets.values():
        if p not in todo.values():
            print(f"{p} exists; kept (use --force to rebuild it)")
    if not todo:
        return 0
    noise_kw = {k: v for k, v in (("sigma", None if args.sigma is None else args.sigma / 255),
                                  ("peak", args.peak), ("amount", args.amount)) if v is not None}
    _check_noise_flags(args.noise, noise_kw)
    sizes = (args.n_train if "train" in todo else 0, args.n_val if "val" in todo else 0)
    if args.from_folder is not None:
        pairs = dataset_from_folder(args.from_folder, *sizes, args.seed, args.noise,
                                    colour_augment=args.colour_augment, **noise_kw)
    else:
        pairs = build_default_dataset(*sizes, args.seed, args.noise,
                                      colour_augment=args.colour_augment, **noise_kw)
    for (key, path), (a, b) in zip(targets.items(), pairs):
        if key in todo:
            save_pairs(path, a, b)
            print(f"wrote {path}: {len(a)} pairs of {tuple(a.shape[1:])} uint8 images")
    return 0


def _check_noise_flags(noise: str, noise_kw: dict[str, float]) -> None:
    """A ValueError naming the flag when one is given that the noise model does not use."""
    from .data.noise import NOISE_PARAMETER

    for key in noise_kw:
        if NOISE_PARAMETER[noise] != key:
            raise ValueError(f"--{key} does not apply to --noise {noise} (it takes "
                             f"--{NOISE_PARAMETER[noise]})")


def run_train(args: argparse.Namespace) -> int:
    import torch

    from .models import build_model
    from .optim import SGD, Adam
    from .train import fit, load_checkpoint

    name = args.model or "course"
    out = args.out if args.out is not None else Path("runs") / f"{name}.pth"
    for flag, path in (("--out", out), ("--export", args.export)):
        if path is not None and path.is_dir():
            raise ValueError(f"{flag} {path} is a folder: give a file name such as "
                             f"{path / (name + '.pth')}")
    if args.export is not None and args.export.resolve() == out.resolve():
        raise ValueError(f"--export {args.export} is the checkpoint file itself (--out): "
                         "choose another file for the bare weights")
    ckpt = None
    if out.exists():
        if args.resume:
            ckpt = load_checkpoint(out)
        elif not args.force:
            raise ValueError(f"{out} exists ({_describe_checkpoint(out)}): add --resume to "
                             "continue it, --force to replace it, or choose another --out")
    if args.export is not None and args.export.exists() and not (args.force or args.resume):
        raise ValueError(f"--export {args.export} exists: add --force to replace it, or choose "
                         "another file")
    spec = ckpt["spec"] if ckpt is not None else None
    if spec is not None:
        if args.model not in (None, spec["name"]):
            raise ValueError(f"--model {args.model}: {out} holds a {spec['name']} model; leave "
                             "--model out to resume it, or train elsewhere with --out")
        if args.channels not in (None, spec["kwargs"].get("channels")):
            raise ValueError(f"--channels {args.channels}: {out} holds a {spec['name']} model "
                             f"with {spec['kwargs'].get('channels')} channels; leave --channels "
                             "out to resume it")
        name = spec["name"]
    optimizer_name = args.optimizer or (ckpt["optimizer_class"].lower() if ckpt else "adam")
    if ckpt is not None and optimizer_name != ckpt["optimizer_class"].lower():
        raise ValueError(f"--optimizer {optimizer_name}: {out} was trained with "
                         f"{ckpt['optimizer_class']}; leave --optimizer out to resume it")
    if args.momentum is not None and optimizer_name != "sgd":
        raise ValueError(f"--momentum applies to --optimizer sgd, not {optimizer_name}")
    if args.log_dir is not None:
        from .tracking import summary_writer_class

        summary_writer_class()                      # before the data is read
    train_path, val_path = _data_files(args, need_train=True)
    train_pairs = _load_pairs(train_path, "--train")
    val_pairs = _load_pairs(val_path, "--val")
    torch.manual_seed(args.seed)
    kwargs = {} if args.channels is None else {"channels": args.channels}
    if spec is not None:
        kwargs = spec["kwargs"]
    model = build_model(name, **kwargs)
    if optimizer_name == "adam":
        optimizer = Adam(model.parameters(), lr=1e-3 if args.lr is None else args.lr)
    elif optimizer_name == "sgd":
        optimizer = SGD(model.parameters(), lr=0.05 if args.lr is None else args.lr,
                        momentum=0.9 if args.momentum is None else args.momentum)
    else:
        raise ValueError(f"{out} was trained with {ckpt['optimizer_class']}, which the CLI "
                         f"cannot continue; choose --optimizer {' or '.join(OPTIMIZERS)}")
    n_train = min(len(train_pairs[0]), args.max_train or len(train_pairs[0]))
    print(f"training {name} ({sum(p.numel() for p in model.parameters())} parameters) on "
          f"{n_train} pairs from {train_path}, validating on {len(val_pairs[0])} images from "
          f"{val_path}")
    if ckpt is not None:
        done = ckpt["epoch"]
        old_lr = ckpt["optimizer"]["param_groups"][0]["lr"]
        lr = "" if args.lr is None or args.lr == old_lr else \
            f"; learning rate {args.lr:g} (the checkpoint's was {old_lr:g})"
        print(f"resuming {out} after epoch {done}{lr}")
        if done >= args.epochs:
            print(f"{out} already holds {done} epochs: nothing to train (ask for more with "
                  f"--epochs {done + 1} or more)")
    try:
        history = fit(model, train_pairs, val_pairs, epochs=args.epochs,
                      batch_size=args.batch_size, optimizer=optimizer, device=args.device,
                      checkpoint=out, resume=args.resume, seed=args.seed, augment=args.augment,
                      progress=not args.no_progress, max_train=args.max_train,
                      lr=args.lr if ckpt is not None else None, log_dir=args.log_dir,
                      callback=_print_epoch if args.no_progress else None)
    except KeyboardInterrupt:
        kept = f"{out} holds the last finished epoch: add --resume to continue from it" \
            if out.exists() else f"no epoch finished, so {out} was not written"
        print(f"\ninterrupted; {kept}", file=sys.stderr)
        return 130
    print(history if not args.no_progress else str(history).splitlines()[-1])
    print(f"checkpoint: {out}")
    if args.log_dir is not None:
        print(f"TensorBoard events: {args.log_dir} (tensorboard --logdir {args.log_dir.parent})")
    if args.export is not None:
        from .course import export_weights

        history_file = export_weights(load_checkpoint(out), args.export)
        print(f"best weights (epoch {history.best_epoch}): {args.export}, history: {history_file}")
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from .sweep import (
        CSV_FILE,
        FIGURE_FILE,
        SweepInterrupted,
        format_summary,
        grid_configs,
        random_configs,
        summarise,
        sweep,
    )
    from .tracking import summary_writer_class

    summary_writer_class()                          # before the data is read
    grid = {"lr": args.lr, "batch_size": args.batch_size, "channels": args.channels}
    settings = random_configs(grid, args.random, args.random_seed) if args.random else \
        grid_configs(grid)
    train_path, val_path = _data_files(args, need_train=True)
    train_pairs = _load_pairs(train_path, "--train")
    val_pairs = _load_pairs(val_path, "--val")
    n_train = min(len(train_pairs[0]), args.max_train or len(train_pairs[0]))
    n_val = min(len(val_pairs[0]), args.max_val or len(val_pairs[0]))
    print(f"sweep: {len(settings)} setting(s) × {args.seeds} seed(s), {args.epochs} epoch(s) "
          f"each, on {n_train} pairs from {train_path}, validating on {n_val} images from "
          f"{val_path}; runs in {args.out}", flush=True)
    try:
        rows = sweep(settings, train_pairs=train_pairs, val_pairs=val_pairs, seeds=args.seeds,
                     epochs=args.epochs, out=args.out, max_train=args.max_train,
                     max_val=args.max_val, jobs=args.jobs, device=args.device,
                     log=lambda line: print(line, flush=True))
    except SweepInterrupted as e:
        print(f"\ninterrupted; {e}", file=sys.stderr)
        return 130
    print(f"\n{format_summary(summarise(rows))}\n")
    print(f"wrote {args.out / CSV_FILE} (one row per run) and {args.out / FIGURE_FILE}; "
          f"their curves: tensorboard --logdir {args.out}")
    return 0


def _print_epoch(history) -> None:
    """fit's callback without a progress bar: the epoch's line as soon as it is done."""
    print(str(history).splitlines()[history.epochs - 1], flush=True)


def _describe_checkpoint(path: Path) -> str:
    """'epoch 5, best 26.75 dB' for a checkpoint; what else the file is, otherwise."""
    from .train import load_checkpoint

    try:
        ckpt = load_checkpoint(path)
    except (ValueError, OSError):
        return "not a scratchnet checkpoint"
    history = ckpt["history"]
    best = f", best {history['best_psnr']:.2f} dB" if history.get("val_psnr") else ""
    return f"a {ckpt['spec']['name'] if ckpt['spec'] else 'model'} checkpoint, epoch " \
           f"{ckpt['epoch']}{best}"


def _denoisers(args: argparse.Namespace) -> list:
    """The Models evaluate and denoise use: shipped weights of each --model, then each
    --checkpoint's best epoch."""
    from .course import Model

    checkpoints = args.checkpoint if isinstance(args.checkpoint, list) else \
        [args.checkpoint] if args.checkpoint is not None else []
    names = args.model if isinstance(args.model, list) else [args.model] if args.model else []
    if not names and not checkpoints:
        names = _model_names()
    models = []
    for name in names:
        model = Model(name, device=args.device, progress=False)
        model.load_pretrained_model()
        models.append(model)
    models += [Model.from_checkpoint(c, device=args.device, progress=False) for c in checkpoints]
    return models


def run_evaluate(args: argparse.Namespace) -> int:
    import time

    from .metrics import psnr

    sigma = _unclip_sigma(args)            # refused before any data is built or denoised
    _, val_path = _data_files(args, need_train=False)
    noisy, clean = _load_pairs(val_path, "--val", args.max_val)
    total = len(noisy)
    noisy, clean = noisy[::args.every], clean[::args.every]
    models = _denoisers(args)              # a bad checkpoint fails before the baselines run
    methods = () if args.no_baselines else args.baselines or tuple(_baseline_names())
    rows: list[tuple[str, float, int, float, str]] = []
    if not methods:
        rows.append(("noisy input", float(psnr(noisy.float() / 255, clean.float() / 255)),
                     len(noisy), 0.0, ""))
    else:
        from .baselines import evaluate_baselines

        results = evaluate_baselines(noisy, clean, tune_on=args.tune_on, methods=methods,
                                     jobs=args.jobs, progress=not args.no_progress,
                                     unclip_sigma=sigma)
        for method, result in results.items():
            notes = ", ".join(f"{k}={v:.4g}" for k, v in result.items()
                              if k not in ("psnr", "psnr_unclipped", "images", "seconds",
                                           "tuned_on"))
            if "tuned_on" in result:
                notes += f" (from the first {result['tuned_on']})"
            rows.append((method, result["psnr"], result["images"], result["seconds"], notes))
            if "psnr_unclipped" in result:
                rows.append((_with_unclip(method, sigma), result["psnr_unclipped"],
                             result["images"], result["seconds"], ""))
    options = [{}]
    if args.ensemble or sigma is not None:
        options.append({"ensemble": args.ensemble, "unclip_sigma": sigma})
    for model in models:
        for option in options:
            start = time.perf_counter()
            denoised = model.predict(noisy, **option)
            label = _enhanced(model, args, sigma) if option else str(model)
            rows.append((label, float(psnr(denoised / 255, clean.float() / 255)), len(noisy),
                         time.perf_counter() - start, ""))
    subset = "" if args.every == 1 else f", every {_ordinal(args.every)} of {total}"
    print(f"{len(noisy)} validation images from {val_path}{subset}\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'method':<{width}}  PSNR (dB)  images  seconds  notes")
    for label, value, count, seconds, notes in rows:
        print(f"{label:<{width}}  {value:9.2f}  {count:6d}  {seconds:7.1f}  {notes}".rstrip())
    return 0


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def run_denoise(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from .data import read_image
    from .files import atomic_write

    output_format = _image_format(args.output)
    if args.model is not None and args.checkpoint is not None:
        raise ValueError(f"--model {args.model} and --checkpoint {args.checkpoint}: give one "
                         "(a checkpoint says which model it holds)")
    if args.checkpoint is None:
        args.model = args.model or "unet"
    (model,) = _denoisers(args)
    image = read_image(args.input)                                   # uint8 (3, H, W)
    h, w = image.shape[1:]
    denoised = model.predict(image[None], tile=args.tile or None,
                             progress=not args.no_progress, ensemble=args.ensemble,
                             unclip_sigma=None if args.unclip is None else args.unclip / 255)[0]
    del image
    array = denoised.round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    del denoised
    options = {"quality": 95} if output_format == "JPEG" else {}
    atomic_write(args.output, lambda f: Image.fromarray(np.ascontiguousarray(array)).save(
        f, format=output_format, **options))
    print(f"{args.input} ({w}×{h}) → {args.output}")
    return 0


def _image_format(path: Path) -> str:
    """PIL's format name for an output file's suffix; a ValueError saying what to give instead
    for a folder or an unknown suffix."""
    from PIL import Image

    if path.is_dir():
        raise ValueError(f"output {path} is a folder: give a file name such as "
                         f"{path / 'denoised.png'}")
    formats = Image.registered_extensions()
    fmt = formats.get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"output {path}: {'no' if not path.suffix else 'unknown'} image suffix "
                         f"{path.suffix!r}".replace(" ''", "") + "; end the name in .png, .jpg, "
                         ".tif, .bmp or .webp")
    return fmt


def run_handout(args: argparse.Namespace) -> int:
    from .coursework.handout import make_handout

    handout = make_handout(args.out, args.source)
    print(f"wrote the student edition to {handout.path}: {handout.summary()}")
    return 0


def run_grade(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .coursework.feedback import ClassReport
    from .coursework.grade import (
        check_submission,
        format_table,
        grade,
        parse_tasks,
        submission_names,
    )

    if args.resume and args.csv is None:
        raise ValueError("--resume needs --csv FILE: the table of the run to go on from")
    tasks = parse_tasks(args.tasks)
    paths = []
    for given in args.submissions:
        path = check_submission(given)
        if path.resolve() in (p.resolve() for p in paths):
            print(f"{given}: given twice, graded once", file=sys.stderr)
        else:
            paths.append(path)
    if args.similarity is not None:
        _similarity(paths, args)

    def stop(signum, frame):
        raise KeyboardInterrupt

    report = ClassReport(tasks, args.csv, args.feedback, resume=args.resume)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:        # Ctrl-C or SIGTERM: the grader kills its processes and removes its folders
        if args.resume and not args.csv.exists():
            print(f"--resume: {args.csv} does not exist yet: grading every submission",
                  file=sys.stderr)
        with report:
            skip = report.done()
            if skip:
                print(f"--resume: {len(skip)} submission(s) already in {args.csv}, not graded "
                      "again", file=sys.stderr)
            todo = [p for p, n in zip(paths, submission_names(paths)) if n not in skip]
            results = grade(todo, tasks=args.tasks, timeout=args.timeout, jobs=args.jobs,
                            source=args.source, keep=args.keep, on_result=report.add,
                            log=lambda line: print(line, file=sys.stderr, flush=True)) \
                if todo else []
    except KeyboardInterrupt:
        kept = (f"; {len(report.rows)} of {len(paths)} submission(s) are in {args.csv}: run "
                "again with --resume to go on") if args.csv and report.rows else ""
        print(f"\ninterrupted: grading stopped, its processes and temporary folders removed{kept}",
              file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if results:
        print(format_table(results, verbose=args.verbose))
    for r in results:
        if args.keep and r.workspace is not None:
            print(f"kept the temporary folder of {r.name}: {r.workspace}", file=sys.stderr)
    if args.csv is not None:
        before = len(report.rows) - len(results)
        print(f"wrote {args.csv}: {len(report.rows)} submission(s)"
              + (f", {len(results)} graded now (the table above) and {before} before"
                 if args.resume and before else ""))
    if args.feedback is not None:
        print(f"wrote {len(results)} feedback file(s) to {args.feedback}")
    return 0


def _similarity(paths: list[Path], args: argparse.Namespace) -> None:
    """--similarity: the report, and the most similar pairs of submissions on the terminal."""
    import tempfile

    from .coursework.grade import instructor_root, parse_tasks, submission_names
    from .coursework.handout import write_handout
    from .coursework.similarity import by_submissions, similarity_report

    tasks = {t.id for t in parse_tasks(args.tasks)}
    with tempfile.TemporaryDirectory(prefix="scratchnet-similarity-") as tmp:
        handout = write_handout(Path(tmp) / "handout", source=instructor_root(args.source))
        pairs = similarity_report(paths, submission_names(paths), args.similarity, handout,
                                  tasks=tasks)
    groups = by_submissions(pairs)
    print(f"wrote {args.similarity}: {len(pairs)} task(s) share over half their code"
          + (", by pair of submissions:" if groups else ""))
    for first, second, n, share in groups[:10]:
        print(f"  {first} ~ {second}: {n} task(s), {share:.0%} shared on average")
