"""`derive_generator`: independent, reproducible random streams from one user seed."""
from __future__ import annotations

import numpy as np
import torch


def derive_generator(seed: int, *stream: int) -> torch.Generator:
    """A CPU generator seeded from (seed, *stream): different streams never share draws, and
    one stream does not depend on how much another consumed (e.g. validation vs n_train)."""
    state = np.random.SeedSequence([int(seed), *map(int, stream)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
