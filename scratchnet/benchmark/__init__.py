"""`python -m scratchnet benchmark`: each model's train step, scratchnet against torch.nn.

Both frameworks run the same network (`models.build_model`, converted by `interop.to_torch`)
with the same weights in the same process. A train step is zero_grad, forward, MSE loss,
backward and an Adam step; the two frameworks' steps alternate (which one goes first alternates
too), after a warm-up, and the tables give medians.

- `config`: what to measure (`Config`, the `--quick` settings);
- `trainers`: the two train steps;
- `timing`: the clock, interleaved timing of train steps, pinned malloc;
- `layer_profile`: per-layer times from separate, instrumented steps;
- `memory`: peak memory, in a fresh subprocess per framework (`MEMORY_METHOD`);
- `run`: a whole run, model by model; `results`: what it found; `report`: the text;
- `command_line`: the options (`main`).
"""
from .command_line import main

__all__ = ["main"]
