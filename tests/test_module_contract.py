"""torch.nn.Module's contract beyond forward/backward: buffers, apply, freezing, the keys
load_state_dict reports, keyword inputs, and one backward per forward."""
import pytest
import torch
from torch import nn

import scratchnet as sn


class Scaled(sn.Module):
    """y = x · w + running (a buffer), with a non-persistent step counter."""

    def __init__(self) -> None:
        super().__init__()
        self.register_parameter("w", torch.ones(3))
        self.register_buffer("running", torch.zeros(3))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.save_for_backward(x=x)
        return x * self.w + self.running

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x = self.saved["x"]
        self.accumulate_grad("w", (grad_output * x).reshape(-1, 3).sum(0))
        return grad_output * self.w


def test_buffers_are_state_but_not_parameters():
    net = sn.Sequential(sn.Linear(3, 3), Scaled())
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.w"]
    assert [n for n, _ in net.named_buffers()] == ["1.running", "1.steps"]
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.w", "1.running"]
    torch_net = nn.Sequential(nn.Linear(3, 3), nn.Module())
    torch_net[1].register_parameter("w", nn.Parameter(torch.ones(3)))
    torch_net[1].register_buffer("running", torch.zeros(3))
    torch_net[1].register_buffer("steps", torch.zeros((), dtype=torch.int64), persistent=False)
    assert list(net.state_dict()) == list(torch_net.state_dict())
    net[1].running = torch.full((3,), 2.0)
    assert torch.equal(net.state_dict()["1.running"], torch.full((3,), 2.0))


def test_to_casts_floating_buffers_and_keeps_integer_ones():
    layer = Scaled().to(torch.float64)
    assert layer.running.dtype == torch.float64 and layer.steps.dtype == torch.int64
    assert layer.w.dtype == torch.float64


def test_load_state_dict_fills_buffers_and_reports_keys_as_torch():
    source, target = Scaled(), Scaled()
    source.running.fill_(5.0)
    result = target.load_state_dict(source.state_dict())
    assert torch.equal(target.running, torch.full((3,), 5.0))
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    partial = target.load_state_dict({"w": torch.ones(3), "extra": torch.ones(1)}, strict=False)
    assert partial.missing_keys == ["running"] and partial.unexpected_keys == ["extra"]
    missing, unexpected = partial
    assert (missing, unexpected) == (["running"], ["extra"])


def test_apply_visits_every_module_children_first():
    net = sn.Sequential(sn.Linear(2, 2), sn.Sequential(sn.ReLU(), sn.Linear(2, 1)))
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]
    net.apply(lambda m: m.weight.zero_() if isinstance(m, sn.Linear) else None)
    assert all(float(m.weight.abs().sum()) == 0 for m in net.modules() if isinstance(m, sn.Linear))


def test_frozen_parameters_get_no_gradient_and_no_update():
    torch.manual_seed(0)
    net = sn.Sequential(sn.Linear(4, 3), sn.ReLU(), sn.Linear(3, 2))
    net[0].requires_grad_(False)
    opt = sn.SGD(net.parameters(), lr=0.1)
    before = [p.clone() for p in net.parameters()]
    y = net(torch.randn(5, 4))
    net.backward(torch.ones_like(y))
    opt.step()
    assert net[0].weight.grad is None and net[0].bias.grad is None
    assert torch.equal(net[0].weight, before[0]) and torch.equal(net[0].bias, before[1])
    assert not torch.equal(net[2].weight, before[2])
    net.requires_grad_(True)
    y = net(torch.randn(5, 4))
    net.backward(torch.ones_like(y))
    assert net[0].weight.grad is not None


def test_a_module_can_be_called_with_input_as_a_keyword():
    layer = sn.Linear(3, 2)
    x = torch.randn(4, 3)
    assert torch.equal(layer(input=x), layer(x))
    assert torch.equal(sn.Sequential(layer, sn.ReLU())(input=x), sn.ReLU()(layer(x)))


@pytest.mark.parametrize("make", [lambda: sn.Linear(3, 2), lambda: sn.Conv2d(3, 2, 1),
                                  lambda: sn.Sequential(sn.Linear(3, 3), sn.Tanh()),
                                  lambda: sn.MSELoss()])
def test_a_second_backward_without_forward_is_refused_as_in_torch(make):
    """torch: 'Trying to backward through the graph a second time'; scratchnet used to double
    every gradient silently."""
    module = make()
    x = torch.randn(2, 3, 1, 1) if isinstance(module, sn.Conv2d) else torch.randn(2, 3)
    if isinstance(module, sn.MSELoss):
        module(x, torch.zeros_like(x))
        module.backward()
        with pytest.raises(RuntimeError, match="backward called a second time after one "
                                               "forward: run forward again"):
            module.backward()
        return
    y = module(x)
    module.backward(torch.ones_like(y))
    grads = [p.grad.clone() for p in module.parameters()]
    with pytest.raises(RuntimeError, match="backward called a second time"):
        module.backward(torch.ones_like(y))
    assert all(torch.equal(p.grad, g) for p, g in zip(module.parameters(), grads))
    module.backward(torch.ones_like(module(x)))                  # a new forward: fine again
    assert all(torch.equal(p.grad, 2 * g) for p, g in zip(module.parameters(), grads))


@pytest.mark.parametrize("name", ["a.b", ""])
def test_parameter_and_buffer_names_follow_torchs_rule(name):
    layer = sn.Module()
    with pytest.raises(KeyError, match="must be non-empty and must not contain"):
        layer.register_buffer(name, torch.zeros(1))
    with pytest.raises(KeyError, match="must be non-empty and must not contain"):
        layer.register_parameter(name, torch.zeros(1))
