"""`python -m scratchnet.benchmark`, the same as `python -m scratchnet benchmark`."""
from . import main

main()
