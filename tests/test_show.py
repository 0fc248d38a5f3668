import pytest

import scratchnet as sn
from scratchnet.show import qualified_name, show_source, source_markdown


def double(x: float) -> float:
    return 2 * x


def test_markdown_holds_the_qualified_name_and_the_live_source():
    assert source_markdown(double) == (
        f"`{__name__}.double`\n\n```python\ndef double(x: float) -> float:\n"
        "    return 2 * x\n```")
    assert source_markdown(sn.Conv2d.backward).startswith(
        "`scratchnet.conv.Conv2d.backward`\n\n```python\ndef backward(self")


def test_properties_and_classes():
    assert "def saved(self)" in source_markdown(sn.Module.saved)
    assert qualified_name(sn.Linear) == "scratchnet.linear.Linear"
    assert qualified_name(sn.optim.sgd) == "scratchnet.optim.sgd"
    assert "class Linear(Module):" in source_markdown(sn.Linear)


def test_the_fence_outgrows_backticks_in_the_code():
    def quoted() -> str:
        return "````"

    text = source_markdown(quoted)
    assert text.split("\n")[2] == "`````python" and text.endswith("\n`````")


def test_objects_without_source_are_refused():
    with pytest.raises(TypeError, match="show_source: no Python source for"):
        source_markdown(len)


def test_prints_outside_ipython(capsys):
    show_source(sn.Sequential.backward)
    out = capsys.readouterr().out
    assert "for module in reversed(list(self)):" in out


def test_fast_paths_are_left_out_as_in_the_student_edition():
    """A lesson shows the reference code a student writes: no FAST PATH region, no marker."""
    for obj in (sn.Sigmoid.function, sn.Conv2d.backward, sn.LeakyReLU, sn.Upsampling.forward):
        text = source_markdown(obj)
        assert "impl == \"fast\"" not in text and "FAST PATH" not in text and "SOLUTION" not in text
    sigmoid = source_markdown(sn.Sigmoid.function)
    assert "torch.sigmoid" not in sigmoid and "torch.exp(-x.abs())" in sigmoid
    assert "conv2d_parameter_grads" not in source_markdown(sn.Conv2d.backward)
