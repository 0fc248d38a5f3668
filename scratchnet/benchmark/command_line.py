"""`python -m scratchnet benchmark`'s options; their defaults are `Config`'s."""
from __future__ import annotations

import argparse

import torch

from ..models import MODELS
from .config import QUICK, Config
from .report import format_report
from .run import run_benchmark


def build_parser() -> argparse.ArgumentParser:
    d = Config()
    p = argparse.ArgumentParser(
        prog="scratchnet benchmark",
        description="Train-step time and peak memory of each model: scratchnet against "
                    "torch.nn + autograd, same weights, interleaved.")
    p.add_argument("--model", choices=[*MODELS, "all"], default=d.model,
                   help="model to benchmark, or all of them (default: %(default)s)")
    p.add_argument("--device", default=d.device, help="cpu or cuda (default: %(default)s)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=d.batch_sizes,
                   help="batch sizes of the train-step table (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=d.image_size,
                   help="side of the training images (default: %(default)s)")
    p.add_argument("--channels", type=int, default=d.channels,
                   help="width: course channels, unet channels of the first level "
                        "(default: each model's own)")
    p.add_argument("--repeats", type=int, default=d.repeats,
                   help="timed steps per framework (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=d.warmup,
                   help="untimed steps per framework first (default: %(default)s)")
    p.add_argument("--profile-batch", type=int, default=d.profile_batch,
                   help="batch of the per-layer table (default: %(default)s)")
    p.add_argument("--predict-size", type=int, default=d.predict_size,
                   help="side of the predict image (default: %(default)s)")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="torch threads (default: torch's)")
    p.add_argument("--no-memory", dest="memory", action="store_false", default=d.memory,
                   help="skip the peak-memory subprocesses")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: batch {QUICK['batch_sizes'][0]}, {QUICK['repeats']} "
                        f"repetitions after {QUICK['warmup']} warm-up steps, predict on "
                        f"{QUICK['predict_size']}×{QUICK['predict_size']}")
    return p


def parse_args(argv: list[str] | None) -> Config:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    if args["device"].startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    quick = args.pop("quick")
    config = Config(**args)
    return config.quick() if quick else config


def main(argv: list[str] | None = None) -> None:
    torch.set_grad_enabled(False)
    print(format_report(run_benchmark(parse_args(argv))))
