"""environment.yml (conda) and pyproject.toml (pip) must list the same dependencies."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_deps = {_name(r) for r in project["dependencies"]}
    pip_deps |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    text = (ROOT / "environment.yml").read_text()
    lines = text[text.index("dependencies:"):].splitlines()
    items = [m.group(1) for line in lines if (m := re.match(r"^\s+- (\S.*)$", line))]
    conda_deps = {_name(i) for i in items if not i.startswith("-e ") and i != "pip:"}
    conda_deps -= {"python", "pip"}
    assert pip_deps == conda_deps


def test_torch_requirement_is_a_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = [r for r in project["dependencies"] if _name(r) == "torch"]
    assert torch_req == ["torch>=2.2"]
