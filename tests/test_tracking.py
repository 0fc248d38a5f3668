"""fit(log_dir=...) and train --log-dir: TensorBoard event files, read back with TensorBoard's own
reader, carry what History records; without TensorBoard, one clear error naming the extra."""
import subprocess
import sys

import pytest
import torch
from strategies import noisy_pairs

import scratchnet as sn
from scratchnet import cli
from scratchnet.data import save_pairs
from scratchnet.models import course_denoiser
from scratchnet.tracking import GAP, TrackingUnavailable, read_scalars

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)
from tensorboard.plugins.hparams import plugin_data_pb2

INSTALL = 'pip install -e ".[tracking]"'
pytestmark = pytest.mark.filterwarnings("ignore:fit. the best validation PSNR:RuntimeWarning")


@pytest.fixture(scope="module")
def data():
    train = noisy_pairs(32, 0)
    noisy, clean = noisy_pairs(8, 1)
    return train, (noisy, clean)


def read(folder) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0,
                                                          "tensors": 0})
    events.Reload()
    return events


def scalars(events: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    found = events.Scalars(tag)
    return [e.step for e in found], [e.value for e in found]


def train(data, epochs: int, **kw) -> tuple[sn.Module, sn.History]:
    torch.manual_seed(0)
    model = course_denoiser(4)
    history = sn.fit(model, *data, epochs=epochs, batch_size=8, device="cpu", progress=False,
                     lr=3e-3, **kw)
    return model, history


def test_event_files_carry_the_history(data, tmp_path):
    _, history = train(data, epochs=2, log_dir=tmp_path / "run")
    events = read(tmp_path / "run")
    steps, losses = scalars(events, "loss/train_step")
    assert steps == list(range(1, 9))                       # 32 pairs in batches of 8, 2 epochs
    for epoch in range(2):
        mean = sum(losses[4 * epoch:4 * epoch + 4]) / 4
        assert mean == pytest.approx(history.train_loss[epoch], rel=1e-5)
    assert scalars(events, "loss/train") == ([1, 2], pytest.approx(history.train_loss, rel=1e-6))
    assert scalars(events, "psnr/val") == ([1, 2], pytest.approx(history.val_psnr, rel=1e-6))
    best = [max(history.val_psnr[:i + 1]) for i in range(2)]
    assert scalars(events, "psnr/best") == ([1, 2], pytest.approx(best, rel=1e-6))
    assert [s for s, _ in read_scalars(tmp_path / "run", "psnr/val")] == [1, 2]
    assert [v for _, v in read_scalars(tmp_path / "run", "psnr/val")] == \
        pytest.approx(history.val_psnr, rel=1e-6)
    with pytest.raises(KeyError, match="has no scalar 'psnr/test'; it has loss/train, "):
        read_scalars(tmp_path / "run", "psnr/test")
    with pytest.raises(FileNotFoundError, match="no run folder"):
        read_scalars(tmp_path / "elsewhere", "psnr/val")
    assert scalars(events, "lr") == ([1, 2], pytest.approx([3e-3, 3e-3]))
    images = events.Images("images/noisy_denoised_clean")
    assert [i.step for i in images] == [1, 2]              # the first and the last epoch
    assert (images[0].width, images[0].height) == (3 * 16 + 2 * GAP, 4 * 16 + 3 * GAP)

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info.hparams
    assert start["model"].string_value == "course"
    assert start["optimizer"].string_value == "Adam"
    assert {k: start[k].number_value for k in ("lr", "batch_size", "channels", "epochs",
                                               "train_pairs", "seed")} == \
        {"lr": 3e-3, "batch_size": 8, "channels": 4, "epochs": 2, "train_pairs": 32, "seed": 0}
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["psnr/val", "psnr/best"]


def test_a_resumed_run_replaces_the_events_of_its_unfinished_epoch(data, tmp_path):
    """Interrupted in epoch 2 after one batch, then resumed: every step is logged once (the
    resumed run repeats the interrupted one's fifth step exactly)."""
    ckpt, folder = tmp_path / "run.pth", tmp_path / "run"
    torch.manual_seed(0)
    model = course_denoiser(4)
    optimizer = sn.Adam(model.parameters(), lr=3e-3)
    step, taken = optimizer.step, []

    def step_then_stop() -> None:
        if len(taken) == 5:
            raise KeyboardInterrupt
        taken.append(step())

    optimizer.step = step_then_stop
    with pytest.raises(KeyboardInterrupt):
        sn.fit(model, *data, epochs=2, batch_size=8, optimizer=optimizer, device="cpu",
               progress=False, checkpoint=ckpt, log_dir=folder)
    stale = scalars(read(folder), "loss/train_step")
    assert stale[0] == [1, 2, 3, 4, 5]

    _, history = train(data, epochs=2, checkpoint=ckpt, resume=True, log_dir=folder)
    steps, losses = scalars(read(folder), "loss/train_step")
    assert steps == list(range(1, 9))
    assert losses[:5] == stale[1]
    assert scalars(read(folder), "psnr/val") == ([1, 2], pytest.approx(history.val_psnr))


def test_without_tensorboard_fit_says_what_to_install(data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    torch.manual_seed(0)
    model = course_denoiser(4)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ImportError, match=r'pip install -e "\.\[tracking\]"') as error:
        sn.fit(model, *data, epochs=1, device="cpu", progress=False, log_dir=tmp_path / "run")
    assert isinstance(error.value, TrackingUnavailable)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))   # not trained
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def data_dir(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    save_pairs(folder / "train_data.pkl", *data[0])
    save_pairs(folder / "val_data.pkl", *data[1])
    return folder


def one_error(capsys, *argv: str) -> str:
    code = cli.main(list(argv))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"scratchnet {argv[0]}: error: ")
    return lines[0]


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_without_tensorboard_the_cli_says_what_to_install_in_one_line(command, data_dir,
                                                                       tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    argv = {"train": ["--log-dir", str(tmp_path / "run"), "--out", str(tmp_path / "c.pth")],
            "sweep": ["--out", str(tmp_path / "sweep")]}[command]
    line = one_error(capsys, command, "--data-dir", str(data_dir), "--epochs", "1", *argv)
    assert INSTALL in line
    assert list(tmp_path.iterdir()) == []


def test_train_log_dir_writes_events_and_refuses_a_file(data_dir, tmp_path, capsys):
    assert cli.main(["train", "--channels", "4", "--epochs", "1", "--data-dir", str(data_dir),
                     "--out", str(tmp_path / "c.pth"), "--log-dir", str(tmp_path / "runs" / "c"),
                     "--no-progress", "--device", "cpu"]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().out
    assert scalars(read(tmp_path / "runs" / "c"), "psnr/val")[0] == [1]
    (tmp_path / "file").write_text("")
    line = one_error(capsys, "train", "--data-dir", str(data_dir), "--out",
                     str(tmp_path / "d.pth"), "--log-dir", str(tmp_path / "file"))
    assert "file is a file: give a folder" in line


def test_the_core_does_not_import_tensorboard():
    code = ("import sys, torch, scratchnet as sn\n"
            "from scratchnet import cli, train\n"
            "a = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)\n"
            "sn.fit(sn.build_model('course', channels=2), (a, a), epochs=1, progress=False,\n"
            "       device='cpu')\n"
            "print(sorted(m for m in sys.modules if 'tensorboard' in m or 'tracking' in m))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
