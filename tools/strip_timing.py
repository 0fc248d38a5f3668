"""Remove execution-timing metadata from notebooks so re-executing them gives a clean diff."""
from __future__ import annotations

import json
import sys


def strip(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("execution", None)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        strip(p)
