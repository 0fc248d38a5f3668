"""Train-step time and peak memory of the course network, scratchnet against torch.nn + autograd.

    python benchmarks/train_step.py                 # CPU, batches 4 16 64
    python benchmarks/train_step.py --device cuda   # GPU
    python benchmarks/train_step.py --quick         # smoke run

Same as `python -m scratchnet benchmark`; every option is described by `--help`.
"""
from scratchnet.benchmark import main

if __name__ == "__main__":
    main()
