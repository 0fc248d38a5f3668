"""Per-layer forward and backward times of both train steps, from separate, instrumented steps.

A model's layers are its leaf modules (those without children). scratchnet: each leaf's
`forward` and `backward` are timed. torch: each leaf's forward between its forward pre-hook and
hook; its backward as the summed run time of the autograd nodes its forward created (a node pre-
and post-hook on each: the nodes reachable from its output's `grad_fn` without passing its
inputs' `grad_fn`, parameters' AccumulateGrad included). Rows after the layers: the MSE loss;
the rest of the model's forward and backward (containers such as Concat, call overhead, the
autograd engine); zero_grad + the Adam step.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from ..module import Module
from .config import Config
from .timing import Clock, interleaved
from .trainers import ScratchnetTrainer, TorchTrainer

Rows = list[tuple[float, float]]  # (forward s, backward s) per row
EXTRA_ROWS = ["MSELoss", "rest (containers, calls, autograd engine)", "zero_grad + Adam.step"]


def leaves(model: Module | torch.nn.Module) -> list[tuple[str, Module | torch.nn.Module]]:
    """(qualified name, module) of each module without children, in definition order."""
    return [(name, m) for name, m in model.named_modules() if next(m.children(), None) is None]


def layer_label(name: str, layer: Module) -> str:
    """'4 Upsampling(48→48, 3×3)' for layers with channels, '1 ReLU' otherwise."""
    label = f"{name} {type(layer).__name__}"
    if hasattr(layer, "in_channels"):
        kh, kw = layer.kernel_size
        label += f"({layer.in_channels}→{layer.out_channels}, {kh}×{kw}"
        label += f", stride {layer.stride[0]})" if layer.stride != (1, 1) else ")"
    return label


def output_shapes(model: torch.nn.Module, x: Tensor) -> list[tuple[int, ...]]:
    """The output shape of each of `model`'s leaves on input x."""
    shapes: dict[torch.nn.Module, tuple[int, ...]] = {}

    def record(layer: torch.nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
        shapes[layer] = tuple(output.shape)

    layers = [m for _, m in leaves(model)]
    handles = [m.register_forward_hook(record) for m in layers]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return [shapes[m] for m in layers]


@contextmanager
def timed_methods(layers: list[Module], name: str, times: list[float], clock: Clock,
                  ) -> Iterator[None]:
    """Within: layer i's method `name` adds its run time to times[i]."""
    def timed(i: int, method: Callable[..., Tensor]) -> Callable[..., Tensor]:
        def run(*args: Tensor) -> Tensor:
            t0 = clock()
            out = method(*args)
            times[i] += clock() - t0
            return out
        return run

    for i, layer in enumerate(layers):
        setattr(layer, name, timed(i, getattr(layer, name)))
    try:
        yield
    finally:
        for layer in layers:
            delattr(layer, name)


def profile_scratchnet_step(trainer: ScratchnetTrainer, x: Tensor, target: Tensor,
                            clock: Clock) -> Rows:
    """One train step of `trainer`: (forward s, backward s) per leaf, then `EXTRA_ROWS`."""
    layers = [m for _, m in leaves(trainer.model)]
    fwd, bwd = [0.0] * len(layers), [0.0] * len(layers)
    with timed_methods(layers, "forward", fwd, clock), \
            timed_methods(layers, "backward", bwd, clock):
        t0 = clock()
        trainer.optimizer.zero_grad()
        t_zero = clock() - t0
        t0 = clock()
        y = trainer.model(x)
        t_model_fwd = clock() - t0
        t0 = clock()
        trainer.criterion(y, target)
        t_loss_fwd = clock() - t0
        t0 = clock()
        g = trainer.criterion.backward()
        t_loss_bwd = clock() - t0
        t0 = clock()
        trainer.model.backward(g)
        t_model_bwd = clock() - t0
    t0 = clock()
    trainer.optimizer.step()
    t_step = clock() - t0
    return list(zip(fwd, bwd)) + [(t_loss_fwd, t_loss_bwd),
                                  (t_model_fwd - sum(fwd), t_model_bwd - sum(bwd)),
                                  (0.0, t_zero + t_step)]


def graph_nodes(output: Tensor, inputs: tuple[Tensor, ...]) -> list[torch.autograd.graph.Node]:
    """The autograd nodes that computed `output` from `inputs` (and parameters)."""
    stop = {t.grad_fn for t in inputs if isinstance(t, Tensor)}
    found: set[torch.autograd.graph.Node] = set()
    todo = [output.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in stop or node in found:
            continue
        found.add(node)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return list(found)


def time_node(node: torch.autograd.graph.Node, times: list[float], i: int, clock: Clock) -> None:
    """The node's run time during the coming backward pass adds to times[i]."""
    start = 0.0

    def before(_grads: tuple[Tensor, ...]) -> None:
        nonlocal start
        start = clock()

    def after(_grads_in: tuple[Tensor, ...], _grads_out: tuple[Tensor, ...]) -> None:
        times[i] += clock() - start

    node.register_prehook(before)
    node.register_hook(after)


def profile_torch_step(trainer: TorchTrainer, x: Tensor, target: Tensor, clock: Clock) -> Rows:
    """Like `profile_scratchnet_step`, with module hooks and autograd node hooks (module
    docstring)."""
    layers = [m for _, m in leaves(trainer.model)]
    fwd, bwd = [0.0] * len(layers), [0.0] * len(layers)
    started = 0.0
    calls: list[tuple[int, Tensor, tuple[Tensor, ...]]] = []

    def pre_hook(_m: torch.nn.Module, _inputs: tuple[Tensor, ...]) -> None:
        nonlocal started
        started = clock()

    def hook(i: int) -> Callable[[torch.nn.Module, tuple[Tensor, ...], Tensor], None]:
        def record(_m: torch.nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            fwd[i] += clock() - started
            calls.append((i, output, inputs))
        return record

    handles = [h for i, m in enumerate(layers)
               for h in (m.register_forward_pre_hook(pre_hook), m.register_forward_hook(hook(i)))]
    try:
        with torch.enable_grad():
            t0 = clock()
            trainer.optimizer.zero_grad()
            t_zero = clock() - t0
            t0 = clock()
            y = trainer.model(x)
            t_model_fwd = clock() - t0
            t0 = clock()
            loss = F.mse_loss(y, target)
            t_loss_fwd = clock() - t0
            for i, output, inputs in calls:
                for node in graph_nodes(output, inputs):
                    time_node(node, bwd, i, clock)
            loss_bwd = [0.0]
            for node in graph_nodes(loss, (y,)):
                time_node(node, loss_bwd, 0, clock)
            t0 = clock()
            loss.backward()
            t_backward = clock() - t0
    finally:
        for handle in handles:
            handle.remove()
    t0 = clock()
    trainer.optimizer.step()
    t_step = clock() - t0
    return list(zip(fwd, bwd)) + [(t_loss_fwd, loss_bwd[0]),
                                  (t_model_fwd - sum(fwd), t_backward - sum(bwd) - loss_bwd[0]),
                                  (0.0, t_zero + t_step)]


def profile_layers(trainers: tuple[ScratchnetTrainer, TorchTrainer], x: Tensor, target: Tensor,
                   config: Config, clock: Clock) -> list[Rows]:
    """Per trainer, per row: median (forward s, backward s) of instrumented, interleaved steps,
    after `config.warmup` of them."""
    profilers = (profile_scratchnet_step, profile_torch_step)
    samples: list[list[Rows]] = [[] for _ in trainers]
    for r, k in interleaved(len(trainers), config.warmup + config.repeats):
        rows = profilers[k](trainers[k], x, target, clock)
        if r >= config.warmup:
            samples[k].append(rows)
    return [[(statistics.median(s[i][0] for s in per), statistics.median(s[i][1] for s in per))
             for i in range(len(per[0]))] for per in samples]


def layer_names(model: Module, x: Tensor, torch_model: torch.nn.Module) -> list[str]:
    """The label of each row of `profile_layers`: each leaf with its output shape on x, then
    `EXTRA_ROWS`."""
    shapes = output_shapes(torch_model, x)
    return [f"{layer_label(name, layer)}  → {shape}"
            for (name, layer), shape in zip(leaves(model), shapes)] + EXTRA_ROWS
