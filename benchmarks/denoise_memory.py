"""Peak memory and time of `python -m scratchnet denoise` on large photos, tiled and untiled.

    python benchmarks/denoise_memory.py                     # U-Net, 1, 4 and 12 MP, CPU
    python benchmarks/denoise_memory.py --model course --sizes 1 4
    python benchmarks/denoise_memory.py --tile 256 --untiled-up-to 4

Each measurement runs the CLI (`scratchnet.cli.main(["denoise", …])`: read the PNG, denoise,
write the PNG) in a fresh Python process and reads its peak resident memory, VmHWM from
/proc/self/status, so one run's memory never counts in another's. The images are 4:3 synthetic
photographs (smooth colour gradients and shapes plus Gaussian noise σ = 25), written once per size
into a temporary folder. "untiled" is `--tile 0` (the whole image in one forward pass), run only up
to --untiled-up-to megapixels and only when the machine has the memory it needs (about 400 bytes
a pixel for the U-Net). Linux only (/proc).
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNTILED_BYTES_PER_PIXEL = {"course": 200, "unet": 420}   # measured, with a safety margin


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def make_photo(path: Path, megapixels: float, seed: int = 0) -> tuple[int, int]:
    """A noisy 4:3 synthetic photograph of about `megapixels` million pixels → (width, height)."""
    import numpy as np
    from PIL import Image

    w = round(math.sqrt(megapixels * 1e6 * 4 / 3))
    h = round(w * 3 / 4)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([128 + 90 * np.sin(x / w * 6 + c) * np.cos(y / h * 4 - c) for c in range(3)],
                     axis=-1)
    for _ in range(20):                                       # discs of flat colour
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.02, 0.15) * h
        image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 25, image.shape).astype(np.float32)
    Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)).save(path, compress_level=1)
    return w, h


def child(args: argparse.Namespace) -> None:
    """One measurement, in this (fresh) process: prints one JSON line."""
    import torch

    from scratchnet import cli

    torch.set_num_threads(args.threads) if args.threads else None
    before = peak_rss_mib()
    start = time.perf_counter()
    code = cli.main(["denoise", str(args.input), str(args.output), "--model", args.model,
                     "--device", args.device, "--tile", str(args.tile), "--no-progress"])
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"code": code, "seconds": seconds, "peak_mib": peak_rss_mib(),
                      "import_mib": before, "cpu_seconds": usage.ru_utime + usage.ru_stime}))


def measure(photo: Path, out: Path, model: str, tile: int, device: str, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", "--input", str(photo), "--output", str(out),
               "--model", model, "--tile", str(tile), "--device", device,
               "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return {"error": (result.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 12], metavar="MP",
                        help="image sizes in megapixels (default 1 4 12)")
    parser.add_argument("--model", choices=["course", "unet"], default="unet")
    parser.add_argument("--tile", type=int, default=512, help="tile size (default 512)")
    parser.add_argument("--untiled-up-to", type=float, default=12, metavar="MP",
                        help="run untiled (--tile 0) up to this size (default 12)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    print(f"{args.model}, tile {args.tile}, device {args.device}: peak RSS (VmHWM) and wall time "
          "of python -m scratchnet denoise, read + denoise + write, fresh process per run")
    print("(cpu s: the process's CPU time, all threads, imports included; wall s depends on what "
          "else the machine runs)")
    print(f"{'image':>16}  {'mode':<10} {'peak MiB':>9} {'wall s':>8} {'cpu s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.sizes:
            photo = Path(tmp) / f"photo_{mp:g}mp.png"
            w, h = make_photo(photo, mp)
            modes = [("tiled", args.tile)]
            need = UNTILED_BYTES_PER_PIXEL[args.model] * w * h / 2**20
            skipped = f"above --untiled-up-to {args.untiled_up_to:g}" \
                if mp > args.untiled_up_to else \
                f"needs about {need:.0f} MiB, {available_mib():.0f} MiB available" \
                if need >= 0.8 * available_mib() else None
            if skipped is None:
                modes.append(("untiled", 0))
            for mode, tile in modes:
                r = measure(photo, Path(tmp) / "out.png", args.model, tile, args.device,
                            args.threads)
                label = f"{w}×{h}"
                if "error" in r:
                    print(f"{label:>16}  {mode:<10} failed: {r['error']}")
                else:
                    print(f"{label:>16}  {mode:<10} {r['peak_mib']:9.0f} {r['seconds']:8.1f} "
                          f"{r['cpu_seconds']:8.1f}", flush=True)
            if skipped:
                print(f"{f'{w}×{h}':>16}  {'untiled':<10} skipped: {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
