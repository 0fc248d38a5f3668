"""What the grader hands back: a feedback file per submission (points per task, every failing
check's full message, flags), a CSV whose rows are written as submissions are graded (so that
Ctrl-C keeps them and --resume goes on), and a similarity report of the task code."""
import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scratchnet import cli
from scratchnet.coursework.feedback import ClassReport, columns, feedback_markdown, feedback_name
from scratchnet.coursework.grade import SubmissionResult, TaskScore
from scratchnet.coursework.handout import write_handout
from scratchnet.coursework.scan import Finding
from scratchnet.coursework.similarity import by_submissions, similarity_report
from scratchnet.coursework.tasks import task

ROOT = Path(__file__).resolve().parents[1]


def result(name: str, tasks, points) -> SubmissionResult:
    scores = {t.id: TaskScore(t, None if not t.autograded else points(t)) for t in tasks}
    return SubmissionResult(name, Path(name), scores)


def test_feedback_says_everything_a_student_needs():
    tasks = [task("T04.4"), task("T04.5"), task("T04.9")]
    r = result("alice smith/2", tasks, lambda t: t.points)
    r.scores["T04.4"].points = 1.0
    r.scores["T04.4"].reasons = [("test_conv2d_backward[impl=default]: ∂L/∂b differs\n"
                                  "  case: x (2, 3, 5, 4), bias=True\nHint: db sums over N, H, W")]
    r.flags = [Finding("scratchnet/conv.py", 12, "torch.nn.functional.conv2d", "forbidden API",
                       "T04.3")]
    text = feedback_markdown(r)
    assert "# Feedback: alice smith/2" in text and "**2 of 4 points**" in text
    assert "| T04.4 | Conv2d backward | 1 | 3 |" in text and "| T04.9 |" in text
    assert "by hand" in text
    assert "case: x (2, 3, 5, 4), bias=True" in text and "Hint: db sums over N, H, W" in text
    assert "`scratchnet/conv.py`, line 12: forbidden API `torch.nn.functional.conv2d` (task T04.3)" \
        in text
    assert feedback_name("alice smith/2") == "alice_smith_2.md"
    assert feedback_name("../..") == "submission.md"


def test_feedback_says_a_message_shared_by_several_tests_once():
    """A blank task fails all its tests with its one stub message: said once, naming them."""
    r = result("bob", [task("T01.1")], lambda t: 0.0)
    stub = "NotImplementedError: T01.1 Linear.forward — compute y = x·Wᵀ + b"
    r.scores["T01.1"].reasons = [f"test_linear_forward: {stub}",
                                 f"test_linear_forward_without_bias: {stub}",
                                 "test_other: the output y differs\nHint: add the bias"]
    text = feedback_markdown(r)
    assert text.count(stub) == 1
    assert f"- test_linear_forward, test_linear_forward_without_bias (2 tests): {stub}" in text
    assert "- test_other: the output y differs" in text and "Hint: add the bias" in text


def test_rows_are_written_as_results_come_and_a_resumed_report_keeps_them(tmp_path):
    tasks = [task("T02.1"), task("T02.8")]
    path, folder = tmp_path / "grades.csv", tmp_path / "feedback"
    with ClassReport(tasks, path, folder) as report:
        report.add(result("alice", tasks, lambda t: 1.0))
        assert [row["submission"] for row in csv.DictReader(path.open())] == ["alice"]
        report.add(result("bob", tasks, lambda t: 0.0))
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == columns(tasks) and [r["T02.1"] for r in rows] == ["1", "0"]
    assert rows[0]["T02.8"] == ""                              # graded by hand
    assert sorted(p.name for p in folder.iterdir()) == ["alice.md", "bob.md"]
    with path.open("a") as f:                                  # a row cut short
        f.write("carol,1")
    with ClassReport(tasks, path, resume=True) as report:
        assert report.done() == {"alice", "bob"}
        report.add(result("dave", tasks, lambda t: 1.0))
    assert [r["submission"] for r in csv.DictReader(path.open())] == ["alice", "bob", "dave"]
    with ClassReport(tasks, path) as report:                   # no --resume: a new table
        assert report.done() == set()
    with pytest.raises(ValueError, match="not a table of these tasks"):
        ClassReport([task("T02.1")], path, resume=True).__enter__()


@pytest.fixture(scope="module")
def class_of_three(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    subs = [write_handout(base / name, blank=set()) for name in ("alice", "bob")]
    subs.append(write_handout(base / "carol"))
    linear = subs[1] / "scratchnet" / "linear.py"
    linear.write_text(linear.read_text().replace("saved", "memo"))
    return subs


def test_the_cli_streams_rows_and_feedback_and_resumes(class_of_three, tmp_path, capsys):
    table, folder = tmp_path / "grades.csv", tmp_path / "feedback"
    args = ["grade", *map(str, class_of_three), str(class_of_three[0]), "--tasks", "T02.1",
            "--csv", str(table), "--feedback", str(folder)]
    assert cli.main(args) == 0
    assert f"{class_of_three[0]}: given twice, graded once" in capsys.readouterr().err
    rows = {r["submission"]: r for r in csv.DictReader(table.open())}
    assert {n: r["T02.1"] for n, r in rows.items()} == {"alice": "1", "bob": "1", "carol": "0"}
    carol = (folder / "carol.md").read_text()
    assert "T02.1" in carol and "NotImplementedError: T02.1" in carol
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "3 submission(s) already in" in err and "graded alice" not in err
    lines = table.read_text().splitlines()
    table.write_text("\n".join(line for line in lines if not line.startswith("carol")) + "\n")
    assert cli.main([*args, "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {table}: 3 submission(s), 1 graded now (the table above) and 2 before" in out
    assert "carol" in out and "alice" not in out.split("wrote")[0]
    assert cli.main(["grade", str(class_of_three[0]), "--resume"]) == 1
    assert "--resume needs --csv FILE" in capsys.readouterr().err


def test_a_failing_graded_cell_names_the_cell_above_it_that_failed(class_of_three):
    """An untouched exercise: its test cell fails with a NameError, whose cause is the solution
    cell above it; the reason says so. One whose blank method raises a bare NotImplementedError
    is said to be blank, without sending the student to another cell."""
    from scratchnet.coursework.grade import grade

    (r,) = grade([class_of_three[2]], tasks="T04.6,T01.5")
    reason = " ".join(r.scores["T04.6"].reasons)
    assert "(an earlier cell failed: your cell T04_6_solution: NotImplementedError" in reason, \
        reason
    blank = ("cell T01_5: NotImplementedError: code of yours that this cell runs is still blank "
             "(it raises NotImplementedError)")
    assert r.scores["T01.5"].reasons == [blank], r.scores["T01.5"].reasons


def test_ctrl_c_keeps_the_rows_already_written(class_of_three, tmp_path):
    looping = write_handout(tmp_path / "looping", blank={"T02.1"})
    relu = looping / "scratchnet" / "activations.py"
    relu.write_text(relu.read_text().replace(
        'raise NotImplementedError("T02.1', 'import time; time.sleep(600); raise NotImplementedError("T02.1', 1))
    table = tmp_path / "grades.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "scratchnet", "grade", *map(str, class_of_three[:2]),
                             str(looping), "--tasks", "T02.1", "--jobs", "1", "--timeout", "300",
                             "--csv", str(table)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if table.exists() and len(list(csv.DictReader(table.open()))) == 2:
            break
        time.sleep(0.5)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "2 of 3 submission(s) are in" in err and "--resume" in err
    assert [r["submission"] for r in csv.DictReader(table.open())] == ["alice", "bob"]


def test_similarity_finds_the_copies_and_not_the_hand_out(class_of_three, tmp_path, capsys):
    handout = write_handout(tmp_path / "handout")
    out = tmp_path / "report" / "similarity.html"
    pairs = similarity_report(class_of_three, ["alice", "bob", "carol"], out, handout)
    assert pairs and all({p.first, p.second} == {"alice", "bob"} for p in pairs)
    assert any(p.task == "T01.2" for p in pairs)           # renamed variables still match
    ((first, second, n, share),) = by_submissions(pairs)
    assert {first, second} == {"alice", "bob"} and n == len(pairs) and share > 0.9
    page = out.read_text()
    assert re.search(r"<h3>T01\.2: (alice|bob) \(\d+% shared\) ~ (bob|alice) ", page)
    assert page.count("<pre>") == 2 * len(pairs)
    assert "highlight-red" in page and "self.memo" in page       # bob's code, matches marked
    assert "scratchnet-similarity" not in page and str(tmp_path) not in page   # no paths
    assert cli.main(["grade", *map(str, class_of_three), "--tasks", "T02.1",
                     "--similarity", str(tmp_path / "s.html")]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if " ~ " in line]
    assert listed == ["  alice ~ bob: 1 task(s), 100% shared on average"], listed
    page = (tmp_path / "s.html").read_text()
    assert "(T02.1)" in page and "<h3>T02.1: " in page and "T01.2" not in page
