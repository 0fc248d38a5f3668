"""Every `python -m scratchnet …` command line the README shows, typed as written.

Each fenced code block runs in order in a fresh folder (its commands build on each other); each
command quoted inline runs alone in a fresh folder. The folder holds what the README assumes a
user has (noisy.png, photo.jpg, ~/photos, ~/Pictures), and SCRATCHNET_DATA_DIR points at a tiny
data set so that training for the README's epochs takes seconds. Only the grader and the
benchmark are replaced by recorders: their own tests run them for real.
"""
import glob
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchnet import cli

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"(?:\.venv/bin/)?python -m scratchnet( [^`\n#]*)?")


def readme_scenarios() -> list[tuple[str, list[str]]]:
    """(where, command lines) per fenced bash block with commands, then one per inline command."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    scenarios = []
    for i, block in enumerate(re.findall(r"```bash\n(.*?)```", text, re.DOTALL)):
        lines = [m.group(0).strip() for m in map(COMMAND.search, block.splitlines()) if m]
        if lines:
            scenarios.append((f"bash block {i + 1}", lines))
    outside = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    for quoted in re.findall(r"`([^`\n]+)`", outside):
        m = COMMAND.search(quoted)
        if m and "…" not in quoted:
            scenarios.append((f"`{quoted}`", [m.group(0).strip()]))
    return scenarios


SCENARIOS = readme_scenarios()


def readme_errors() -> list[tuple[str, str]]:
    """(command, the error line the README says it prints) from its ```text transcripts."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    pairs = []
    for block in re.findall(r"```text\n(.*?)```", text, re.DOTALL):
        lines = block.splitlines()
        pairs += [(line[2:], lines[i + 1]) for i, line in enumerate(lines)
                  if line.startswith("$ python -m scratchnet")]
    return pairs


ERRORS = readme_errors()


def test_the_readme_shows_the_commands_it_should():
    lines = [line for _, lines in SCENARIOS for line in lines]
    for command in ("data", "train", "evaluate", "denoise", "handout", "grade", "benchmark"):
        assert any(line.split()[3:4] == [command] for line in lines), command
    assert any("--resume" in line for line in lines)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_data")
    assert cli.main(["data", "--data-dir", str(folder), "--n-train", "16", "--n-val", "8"]) == 0
    return folder


def _image(path: Path, h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def handout_alice(tmp_path_factory):
    """A student's copy of the hand-out, for the grader's commands."""
    from scratchnet.coursework.handout import write_handout

    return write_handout(tmp_path_factory.mktemp("class") / "alice")


@pytest.fixture
def user_folder(tmp_path, tiny_data, handout_alice, monkeypatch):
    """A working folder with what the README assumes a user has; HOME and the data set set."""
    home = tmp_path / "home"
    for folder in ("photos", "Pictures"):
        (home / folder).mkdir(parents=True)
        for i in range(3):
            _image(home / folder / f"{i}.jpg", 48, 64, i)
    work = tmp_path / "work"
    (work / "submissions").mkdir(parents=True)
    (work / "submissions" / "alice").symlink_to(handout_alice, target_is_directory=True)
    _image(work / "noisy.png", 24, 36, 7)
    _image(work / "photo.jpg", 24, 36, 8)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(tiny_data))
    return work


def argv_of(line: str) -> list[str]:
    """The arguments after `python -m scratchnet`, as bash expands ~ and * in them."""
    words = shlex.split(line)
    assert words[:3] in (["python", "-m", "scratchnet"],
                         [".venv/bin/python", "-m", "scratchnet"]), line
    argv = []
    for word in words[3:]:
        word = str(Path(word).expanduser()) if word.startswith("~") else word
        argv += (sorted(glob.glob(word)) or [word]) if "*" in word else [word]
    return argv


@pytest.mark.parametrize("where, lines", SCENARIOS, ids=[w for w, _ in SCENARIOS])
def test_readme_command_runs_as_written(where, lines, user_folder, monkeypatch, capsys):
    import scratchnet.benchmark
    import scratchnet.coursework.grade

    graded, benchmarked = [], []
    monkeypatch.setattr(scratchnet.coursework.grade, "grade",
                        lambda submissions, **kw: graded.append(submissions) or [])
    monkeypatch.setattr(scratchnet.benchmark, "main", lambda argv: benchmarked.append(argv) or 0)
    for line in lines:
        try:
            code = cli.main(argv_of(line))
        except SystemExit as exit_:             # --help
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 0, f"{where}: {line}\n{err}"
        assert "Traceback" not in err
    if any(" grade " in f"{line} " for line in lines):
        assert graded and all(Path(p).name == "alice" for p in graded[0])
    if any(line.endswith(" benchmark") for line in lines):
        assert benchmarked == [[]]


def test_the_readme_shows_error_transcripts():
    assert len(ERRORS) >= 2


@pytest.mark.parametrize("line, expected", ERRORS, ids=[line for line, _ in ERRORS])
def test_readme_error_transcript_is_what_the_command_prints(line, expected, user_folder, capsys):
    runs = user_folder / "runs"
    runs.mkdir()
    assert cli.main(["train", "--channels", "4", "--epochs", "1", "--no-progress", "--out",
                     str(runs / "whole.pth")]) == 0
    whole = (runs / "whole.pth").read_bytes()
    (runs / "half.pth").write_bytes(whole[:len(whole) // 2])
    capsys.readouterr()
    assert cli.main(argv_of(line)) == 1
    assert capsys.readouterr().err.strip() == expected
