"""`python -m scratchnet …`: see scratchnet/cli.py."""
from .cli import main

raise SystemExit(main())
