"""The task registry: every piece of graded student work, in one list that the hand-out generator,
the notebooks and the grader all read.

Kinds of task:
- "code": a region of the package (`### BEGIN SOLUTION` … `### END SOLUTION` inside the functions
  named in `where`), graded by the pytest tests in `tests/tasks/` marked with the task's marker;
- "check": a notebook's gradient checks, autograded cells (locked) that pass once the package
  tasks they use are written;
- "exercise": a notebook solution cell and an autograded test cell (hidden tests where a visible
  one would give the answer away);
- "written": an answer in words, graded by hand.

Notebook cells carry nbgrader metadata whose `grade_id` is `grade_id(task)` (`T04.5` → `T04_5`),
followed by a letter when a task has several graded cells (`T04_5b`); solution cells of an exercise
use `T04_7_solution` (`…_solution_b`, …).
"""
from __future__ import annotations

from dataclasses import dataclass, field

NOTEBOOKS = {
    "01": "01_modules_and_the_chain_rule",
    "02": "02_activations_and_mse",
    "03": "03_initialisation",
    "04": "04_convolution_with_unfold",
    "05": "05_transposed_convolution",
    "06": "06_nearest_neighbour_upsampling",
    "07": "07_optimizers",
    "08": "08_training_the_denoiser",
    "09": "09_passing_bm3d",
    "10": "10_going_further",
    "11": "11_fast_paths",
    "12": "12_choosing_hyperparameters",
}
KINDS = ("code", "check", "exercise", "written")


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    points: float
    kind: str
    section: str
    todo: str | tuple[str, ...] = ""
    where: tuple[str, ...] = ()
    depends: tuple[str, ...] = field(default=())

    @property
    def number(self) -> str:
        """'T04.4' → '03', the notebook's number."""
        return self.id[1:3]

    @property
    def notebook(self) -> str:
        """The notebook's file stem, e.g. '04_convolution_with_unfold'."""
        return NOTEBOOKS[self.number]

    @property
    def grade_id(self) -> str:
        """nbgrader's grade_id and pytest's marker: 'T04.4' → 'T04_4'."""
        return self.id.replace(".", "_")

    @property
    def autograded(self) -> bool:
        return self.kind != "written"

    def todo_for(self, name: str) -> str:
        """What to write in function `name` ('Sequential.backward'): `todo`, or its entry for the
        `where` that names `name` when `todo` has one per place."""
        if isinstance(self.todo, str):
            return self.todo
        for where, todo in zip(self.where, self.todo):
            if where.split(":")[1] == name:
                return todo
        raise KeyError(f"{self.id} names no function {name!r}")

    def stub_message(self, name: str) -> str:
        """What a blank of this task in function `name` raises."""
        return (f"{self.id} {name} — {self.todo_for(name)}; derivation: "
                f"notebooks/{self.notebook}.ipynb, {self.section}")


def _code(id: str, title: str, points: float, section: str, where: tuple[str, ...],
          todo: str | tuple[str, ...], depends: tuple[str, ...] = ()) -> Task:
    return Task(id, title, points, "code", section, todo, where, depends)


T01_CODE = ("T01.1", "T01.2", "T01.3")
T02_CODE = ("T02.1", "T02.2", "T02.3", "T02.4")
T03_CODE = ("T03.1", "T03.2")
T04_CODE = ("T04.1", "T04.2", "T04.3", "T04.4")
T05_CODE = ("T05.1", "T05.2")
T06_CODE = ("T06.1", "T06.2")
T07_CODE = ("T07.1", "T07.2")
T10_CODE = ("T10.1", "T10.2")

TASKS: tuple[Task, ...] = (
    # 01 · Modules and the chain rule
    _code("T01.1", "Linear forward", 2, "§2", ("scratchnet/linear.py:Linear.forward",),
          "compute y = x·Wᵀ + b and save what backward needs"),
    _code("T01.2", "Linear backward", 3, "§2", ("scratchnet/linear.py:Linear.backward",),
          "accumulate dW = Gᵀ·X and db = Σ_rows G, return dx = G·W", ("T01.1",)),
    _code("T01.3", "Sequential: the chain rule", 2, "§4",
          ("scratchnet/containers.py:Sequential.forward",
           "scratchnet/containers.py:Sequential.backward"),
          ("run the modules in order, each on the output of the one before",
           ("call every module's backward in reverse order, each on the gradient the module "
            "after it returned"))),
    Task("T01.4", "Check: Linear and Sequential against torch", 1, "check", "§3–§4",
         depends=T01_CODE),
    Task("T01.5", "Exercise: a Scale module with a parameter", 2, "exercise", "Exercises"),
    Task("T01.6", "Exercise: Exp, derivative from the saved output", 2, "exercise", "Exercises"),
    Task("T01.7", "Exercise: the cost of a full finite-difference check", 1, "exercise",
         "Exercises"),
    Task("T01.8", "Written: why the derivative from the output is cheaper", 1, "written",
         "Exercises"),
    # 02 · Activations and MSE
    _code("T02.1", "ReLU", 1, "§2", ("scratchnet/activations.py:ReLU.function",
                                     "scratchnet/activations.py:ReLU.derivative"),
          ("return max(0, x) (in place when self.inplace)",
           "return ReLU's derivative, 1 where x > 0 and 0 elsewhere, read off the output y")),
    _code("T02.2", "Sigmoid without overflow", 2, "§3",
          ("scratchnet/activations.py:Sigmoid.function",
           "scratchnet/activations.py:Sigmoid.derivative"),
          ("return σ(x) computed with e^{−|x|} only, so that no exp overflows",
           "return σ′(x) from the saved output y")),
    _code("T02.3", "Tanh", 1, "§4", ("scratchnet/activations.py:Tanh.function",
                                     "scratchnet/activations.py:Tanh.derivative"),
          ("return tanh(x)", "return tanh′(x) from the saved output y")),
    _code("T02.4", "MSE loss and its gradient", 2, "§5",
          ("scratchnet/loss.py:MSELoss.forward", "scratchnet/loss.py:MSELoss.backward"),
          ("save what backward needs and return the squared error reduced by self.reduction",
           "return ∂loss/∂prediction, scaled like the loss (mean, sum or none)")),
    Task("T02.5", "Check: activations and MSE against torch", 1, "check", "§2–§6",
         depends=T01_CODE + T02_CODE),
    Task("T02.6", "Exercise: Softplus without overflow", 2, "exercise", "Exercises"),
    Task("T02.7", "Exercise: the learning rate for reduction='sum'", 1, "exercise", "Exercises"),
    Task("T02.8", "Written: derivatives from the output", 1, "written", "Exercises"),
    # 03 · Initialisation
    _code("T03.1", "Xavier (Glorot) uniform initialisation", 1, "§2",
          ("scratchnet/init.py:xavier_uniform_",),
          "take std = gain·√(2/(fan_in + fan_out)) (fans from _calculate_fan_in_and_fan_out), "
          "then the bound a = √3·std, and fill the tensor from U(−a, a) with uniform_, passing "
          "generator"),
    _code("T03.2", "He (Kaiming) normal initialisation", 1, "§2",
          ("scratchnet/init.py:kaiming_normal_",),
          "return a tensor with a zero-size dimension untouched (_empty), else take "
          "std = calculate_gain(nonlinearity, a)/√fan with fan = _calculate_correct_fan(tensor, "
          "mode), and fill the tensor from N(0, std²) with normal_, passing generator"),
    Task("T03.3", "Check: initialisation against torch.nn.init", 1, "check", "§2–§3",
         depends=T03_CODE),
    Task("T03.4", "Exercise: vanishing and exploding, measured", 2, "exercise", "§4",
         depends=("T01.1", "T01.2", "T02.1")),
    Task("T03.5", "Exercise: LeakyReLU's gain, derived and measured", 1, "exercise", "Exercises",
         depends=("T01.1", "T01.2")),
    # 04 · Convolution with unfold
    _code("T04.1", "unfold from the index formula", 3, "§2", ("scratchnet/im2col.py:unfold",),
          "write cols[n, (c, u, v), (i, j)] = x_pad[n, c, s·i + d·u, s·j + d·v], "
          "without torch.nn.functional.unfold"),
    _code("T04.2", "fold, the adjoint of unfold", 2, "§3", ("scratchnet/im2col.py:fold",),
          "add every column back onto the pixels it was copied from, then crop the padding"),
    _code("T04.3", "Conv2d forward", 2, "§2", ("scratchnet/conv.py:conv2d_forward",),
          ("compute cols with im2col and the output as one matrix product, y = cols·Wᵀ + b: "
           "grouped_matmul(cols, w, groups, bias) takes each group's weight matrix transposed, "
           "w = weight_matrices(weight, groups).transpose(1, 2)"), ("T04.1",)),
    _code("T04.4", "Conv2d backward", 3, "§3", ("scratchnet/conv.py:conv2d_backward",),
          "write dW = Gᵀ·cols, db as a sum over batch and positions, dx = col2im(G·W)",
          ("T04.2",)),
    Task("T04.5", "Check: Conv2d against torch", 1, "check", "§4", depends=T04_CODE),
    Task("T04.6", "Exercise: output sizes by hand", 1, "exercise", "Exercises"),
    Task("T04.7", "Exercise: convolution forward and backward with loops", 3, "exercise", "§1"),
    Task("T04.8", "Exercise: the cost of a depthwise convolution", 1, "exercise", "Exercises"),
    Task("T04.9", "Written: why the bias gradient is a sum", 1, "written", "Exercises"),
    # 05 · Transposed convolution
    _code("T05.1", "ConvTranspose2d forward", 2, "§1",
          ("scratchnet/conv_transpose.py:ConvTranspose2d.forward",),
          "scatter every input pixel through the kernel: col2im of the rows X·W, then crop the "
          "padding and add the bias", ("T04.2",)),
    _code("T05.2", "ConvTranspose2d backward", 3, "§1",
          ("scratchnet/conv_transpose.py:ConvTranspose2d.backward",),
          "convolve: im2col of the gradient, then dW, db (a sum) and dx", ("T04.1", "T05.1")),
    Task("T05.3", "Check: ConvTranspose2d against torch", 1, "check", "§2, §5",
         depends=T04_CODE + T05_CODE),
    Task("T05.4", "Exercise: the adjoint of Linear", 1, "exercise", "Exercises"),
    Task("T05.5", "Exercise: stamps per output row", 2, "exercise", "Exercises"),
    Task("T05.6", "Written: the output size of a transposed convolution", 1, "written",
         "Exercises"),
    # 06 · Nearest-neighbour upsampling
    _code("T06.1", "Nearest upsampling forward", 1, "§1",
          ("scratchnet/upsampling.py:nearest_upsample",),
          "repeat every pixel into an s_h×s_w block"),
    _code("T06.2", "Nearest upsampling backward: block sums", 2, "§1",
          ("scratchnet/upsampling.py:nearest_upsample_backward",),
          "sum the gradient over each s_h×s_w block (s_h and s_w may differ)"),
    Task("T06.3", "Check: upsampling against torch", 1, "check", "§1–§4",
         depends=T04_CODE + T05_CODE + T06_CODE),
    Task("T06.4", "Exercise: phase offsets by hand", 2, "exercise", "Exercises"),
    Task("T06.5", "Exercise: the bilinear kernel", 1, "exercise", "Exercises"),
    Task("T06.6", "Exercise: the decoder's multiply-add budget", 1, "exercise", "Exercises"),
    # 07 · Optimizers
    _code("T07.1", "SGD: momentum, Nesterov, weight decay", 3, "§2",
          ("scratchnet/optim/sgd.py:SGD.update",),
          "update p in place: weight decay, the momentum buffer (dampening, Nesterov), the step"),
    _code("T07.2", "Adam with bias correction", 3, "§3",
          ("scratchnet/optim/adam.py:Adam.update", "scratchnet/optim/adam.py:Adam.update_amsgrad"),
          ("update the moments m and v, correct their bias, and step p in place",
           ("step as update does, but divide by the square root of v_max, the running maximum "
            "of v (advance(p, state, amsgrad=True) creates it), kept up to date in place with "
            "torch.maximum"))),
    Task("T07.3", "Check: optimizers against torch.optim", 1, "check", "§4",
         depends=T01_CODE + T02_CODE + T04_CODE + T07_CODE),
    Task("T07.4", "Exercise: RMSprop", 2, "exercise", "Exercises"),
    Task("T07.5", "Exercise: the size of Adam's first step", 1, "exercise", "Exercises"),
    Task("T07.6", "Written: Adam's scale invariance", 1, "written", "Exercises"),
    # 08 · Training the denoiser
    Task("T08.1", "Check: your layers train the denoiser", 1, "check", "§3",
         depends=T01_CODE + T02_CODE + T04_CODE + T06_CODE + T07_CODE),
    Task("T08.2", "Exercise: PSNR by hand", 1, "exercise", "Exercises"),
    Task("T08.3", "Exercise: the floor of the Noise2Noise loss", 1, "exercise", "Exercises"),
    Task("T08.4", "Written: where the methods disagree", 1, "written", "Exercises"),
    Task("T08.5", "Exercise: overfit one small batch", 1, "exercise", "§2",
         depends=T01_CODE + T02_CODE + T04_CODE + T06_CODE + T07_CODE),
    # 09 · Passing BM3D
    _code("T09.1", "The clipped mean m(s)", 2, "§2",
          ("scratchnet/unclip.py:_positive_part_mean", "scratchnet/unclip.py:clipped_mean"),
          (("return P(μ) = E[max(Y, 0)] for Y ~ N(μ, σ²): μ·Φ(μ/σ) + σ·φ(μ/σ), with Φ = "
            "torch.special.ndtr and φ the standard normal density"),
           "return m(x) = P(x) − P(x − 1) in float64, from the two ramps of the clip")),
    Task("T09.2", "Check: unclip with your m(s)", 1, "check", "§2", depends=("T09.1",)),
    Task("T09.3", "Exercise: how many values the clip touches", 1, "exercise", "Exercises"),
    Task("T09.4", "Exercise: how correlated the eight estimates are", 2, "exercise", "Exercises"),
    Task("T09.5", "Written: what unclip assumes", 1, "written", "Exercises"),
    # 10 · Going further
    _code("T10.1", "Residual backward", 1, "§1", ("scratchnet/containers.py:Residual.backward",),
          "return the gradient of x + f(x): the skip path plus the branch's backward"),
    _code("T10.2", "Concat backward", 2, "§2", ("scratchnet/containers.py:Concat.backward",),
          "split the gradient into the branches' slices and add up what their backward returns"),
    Task("T10.3", "Check: skip connections and the U-Net against torch", 1, "check", "§1–§3",
         depends=T01_CODE + T02_CODE + T04_CODE + T06_CODE + T10_CODE),
    Task("T10.4", "Exercise: a deeper U-Net", 1, "exercise", "Exercises"),
    Task("T10.5", "Exercise: concatenating along the batch", 2, "exercise", "Exercises"),
    # 11 · Fast paths (optional)
    Task("T11.1", "Exercise: one tile of Winograd F(2×2, 3×3)", 2, "exercise", "§1"),
    Task("T11.2", "Exercise: the input gradient by the flipped kernel", 2, "exercise", "§2",
         depends=("T04.3", "T04.4")),
    # 12 · Choosing hyperparameters
    Task("T12.1", "Exercise: a difference and its standard error", 2, "exercise", "§6"),
    Task("T12.2", "Exercise: how many seeds a difference needs", 1, "exercise", "§6"),
    Task("T12.3", "Written: what a small sweep can tell", 1, "written", "Exercises"),
)

BY_ID = {t.id: t for t in TASKS}


def task(task_id: str) -> Task:
    """The task with this id ('T04.4'), or a KeyError that lists the ids."""
    try:
        return BY_ID[task_id]
    except KeyError:
        raise KeyError(f"no task {task_id!r}; tasks: {', '.join(BY_ID)}") from None


def tasks_in(number: str) -> list[Task]:
    """The tasks of notebook `number` ('03'), in order."""
    return [t for t in TASKS if t.number == number]


def dependents(task_id: str) -> set[str]:
    """Every task that needs `task_id`, directly or through others (not `task_id` itself)."""
    out: set[str] = set()
    frontier = {task_id}
    while frontier:
        frontier = {t.id for t in TASKS if set(t.depends) & frontier} - out
        out |= frontier
    return out
