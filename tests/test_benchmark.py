"""`python -m scratchnet benchmark`'s front end (options, defaults, --model, --quick), its report
and its per-layer profile, without the long measurements (the --quick run itself is in
tests/test_fast_paths.py)."""
from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from scratchnet.benchmark import command_line
from scratchnet.benchmark.config import QUICK, Config
from scratchnet.benchmark.layer_profile import EXTRA_ROWS, leaves, profile_layers
from scratchnet.benchmark.report import format_report
from scratchnet.benchmark.results import ModelReport, Report, StepResult
from scratchnet.benchmark.timing import Clock
from scratchnet.benchmark.trainers import build_pair, images
from scratchnet.models import MODELS


def test_every_option_defaults_to_config():
    defaults = vars(command_line.build_parser().parse_args([]))
    assert defaults.pop("quick") is False
    assert defaults == asdict(Config())
    assert command_line.parse_args([]) == Config()


def test_help_shows_the_models_and_configs_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        command_line.main(["--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    d = Config()
    assert f"--model {{{','.join([*MODELS, 'all'])}}}" in out
    for option, value in (("model", d.model), ("device", d.device), ("repeats", d.repeats),
                          ("image-size", d.image_size), ("predict-size", d.predict_size)):
        assert f"--{option}" in out and f"(default: {value})" in out
    assert f"predict on {QUICK['predict_size']}×{QUICK['predict_size']}" in out


@pytest.mark.parametrize("choice", [*MODELS, "all"])
def test_model_selects_the_models(choice):
    config = command_line.parse_args(["--model", choice])
    assert config.model_names == (list(MODELS) if choice == "all" else [choice])


def test_unknown_model_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        command_line.parse_args(["--model", "resnet"])
    assert exit_.value.code == 2 and "invalid choice: 'resnet'" in capsys.readouterr().err


def test_quick_shrinks_whatever_else_is_chosen():
    config = command_line.parse_args(["--quick", "--model", "unet", "--no-memory",
                                      "--channels", "8", "--repeats", "1000"])
    assert config == Config(model="unet", memory=False, channels=8, **QUICK)
    assert config.model_kwargs() == {"channels": 8} and Config().model_kwargs() == {}


def test_main_runs_the_parsed_config_and_prints_its_report(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(command_line, "run_benchmark", lambda config: seen.append(config)
                        or report_of(config))
    command_line.main(["--quick", "--model", "course"])
    assert seen == [Config(model="course").quick()]
    assert "Model: course (channels=48)" in capsys.readouterr().out


def report_of(config: Config) -> Report:
    """A made-up report with one section per model of `config`."""
    models = [ModelReport(name, "channels=48", 1e-7,
                          [StepResult(batch, 2.0, 4.0, 1.0, 3.0) for batch in config.batch_sizes],
                          [("0 Conv2d", 1e-3, 2e-3, 3e-3, 4e-3), ("MSELoss", 0.0, 0.0, 0.0, 0.0)],
                          {"scratchnet": 1.0, "torch": 4.0})
              for name in config.model_names]
    return Report(config, torch.__version__, 2, "a CPU", True, models)


def test_report_has_every_table_for_each_model_labelled_with_its_name():
    config = Config(batch_sizes=[4, 16])
    out = format_report(report_of(config))
    assert out.splitlines()[0].startswith(f"scratchnet vs torch.nn + autograd: "
                                          f"{', '.join(MODELS)}; 32×32")
    for name in MODELS:
        for title in (f"Model: {name} (", f"Train step, {name} (",
                      f"Per layer, {name}, batch {config.profile_batch} (",
                      f"Inference peak memory, {name}: predict on (1, 3, 512, 512)"):
            assert out.count(title) == 1
    assert out.count("| 16    |          2.00 |     4.00 |           0.50 |") == len(MODELS)
    assert out.count("| sum      |          1.000 |     2.000 |          3.000 |     4.000 |") \
        == len(MODELS)
    assert out.count("peak memory method:") == 1
    no_memory = format_report(report_of(Config(memory=False)))
    assert "Inference peak memory" not in no_memory and "peak memory method" not in no_memory


@pytest.mark.parametrize("name", MODELS)
def test_layer_profile_has_a_row_per_leaf_and_times_every_convolution(name):
    config = Config(warmup=0, repeats=1, channels=4)
    trainers = build_pair(name, config)
    x, target = images(2, 8, "cpu")
    with torch.no_grad():
        rows = profile_layers(trainers, x, target, config, Clock(torch.device("cpu")))
    layers = [m for _, m in leaves(trainers[0].model)]
    for framework_rows in rows:
        assert len(framework_rows) == len(layers) + len(EXTRA_ROWS)
        assert all(fwd >= 0 and bwd >= 0 for fwd, bwd in framework_rows)
        for layer, (fwd, bwd) in zip(layers, framework_rows):
            if hasattr(layer, "weight"):
                assert fwd > 0 and bwd > 0, type(layer).__name__
    assert rows[0][-1][0] == rows[1][-1][0] == 0.0
