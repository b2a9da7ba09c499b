"""Integer networks for entropy parameters that decode identically everywhere.

A hyperprior decoder turns the side information into the entropy model's parameters
(means and scale indices). If encoder and decoder compute those parameters with float
arithmetic, two machines (or thread counts, or a CPU and a GPU) can round one value
differently, pick another CDF table, and the arithmetic decoder then produces garbage
from that symbol on. Balle, Johnston and Minnen ("Integer networks for data compression
with latent-variable models", ICLR 2019) remove the risk by making that network integer.

Here each layer is, at inference::

    acc = conv(a_in, W) + B                      # W int8 in [-127, 127], a_in integers, B integer
    a_out = clamp(floor((acc * m + 2**(S-1)) / 2**S), lo, hi)

with per-channel integer multipliers ``m`` and a global shift ``S`` (a fixed-point rescale
that folds the weight scale and a learned activation scale), ``lo, hi = 0, 255`` for hidden
layers (a ReLU with 8-bit outputs) and a wide signed range for the last one.

How it is computed: every operand and every partial sum is an integer below 2**53 in
magnitude (bounded in :meth:`IntConv.max_abs_accumulator`), so float64 arithmetic on them
is *exact* and therefore independent of summation order, blocking, thread count or BLAS
(no result is ever rounded). The division by ``2**S`` and ``floor`` are exact in float64 too.
That is integer arithmetic by construction, at BLAS speed.

The convolution sums themselves usually fit float32: a layer whose every output channel has
``sum |W| * max|a_in| < 2**24`` (checked per layer from the exported integers,
:meth:`IntConv.conv_sum_bound`) has all its products and all partial sums, in any order,
exactly representable in float32, so its convolution runs in float32 (about 10x faster than
float64 on the CPU) and only the rescale runs in float64; a layer over the bound falls back
to float64. Either way the convolutions run on the CPU with only multiply-and-add
algorithms: NNPACK (whose Winograd/FFT transforms use fractions) is switched off, and
oneDNN is held to IEEE float32 (no TF32/BF16 down-conversion), never through cuDNN.

Training uses the same layer in float32 with straight-through rounding of weights,
multipliers and activations (quantisation-aware training), so the trained network is the
integer network up to float32 error in the accumulation; after training,
:meth:`IntConv.export` fixes the integers and :meth:`IntNet.run_exact` uses only them.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["IntConv", "IntNet", "SHIFT", "round_ste"]

SHIFT = 20  # fixed-point bits of the rescale multipliers
_WEIGHT_MAX = 127
_ACT_MAX = 255
_FINAL_RANGE = 1 << 15
_EXACT = float(1 << 53)
_EXACT_F32 = float(1 << 24)


@contextlib.contextmanager
def _multiply_add_only():
    """CPU convolutions by products and sums only: no NNPACK (Winograd/FFT), no TF32/BF16 in oneDNN."""
    with warnings.catch_warnings():
        # torch warns on any TF32 setting (it is about Intel GPUs), even when switching it off
        warnings.filterwarnings("ignore", message=".*TF32 acceleration on top of oneDNN.*")
        with torch.backends.nnpack.flags(enabled=False), \
                torch.backends.mkldnn.flags(enabled=torch.backends.mkldnn.is_available(), deterministic=True,
                                            allow_tf32=False, fp32_precision="ieee"):
            yield


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient (straight-through)."""
    return x + (torch.round(x) - x).detach()


class IntConv(nn.Module):
    """One integer conv (or transposed conv) layer with an 8-bit ReLU or a signed output.

    Shapes: input N x C_in x H x W of integer values; output N x C_out x H' x W' of integers.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, *, transposed: bool = False,
                 final: bool = False) -> None:
        super().__init__()
        self.c_in, self.c_out, self.kernel, self.stride = c_in, c_out, kernel, stride
        self.transposed, self.final = transposed, final
        self.padding = kernel // 2
        self.output_padding = stride - 1 if transposed else 0
        shape = (c_in, c_out, kernel, kernel) if transposed else (c_out, c_in, kernel, kernel)
        weight = torch.empty(shape)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(c_out))
        # activation scale: real output = acc * weight_scale * exp(log_alpha); a hidden layer's
        # integers then carry 8-bit activations of unit ~1/255 .. 1 of the float ones
        self.log_alpha = nn.Parameter(torch.full((c_out,), math.log(8.0 if not final else 1.0)))
        self.register_buffer("int_weight", torch.zeros(0))
        self.register_buffer("int_bias", torch.zeros(0))
        self.register_buffer("multiplier", torch.zeros(0))

    # -- quantisation ---------------------------------------------------------------
    def _weight_scale(self) -> torch.Tensor:
        dims = (0, 2, 3) if self.transposed else (1, 2, 3)
        return self.weight.detach().abs().amax(dim=dims).clamp_min(1e-8) / _WEIGHT_MAX  # [C_out]

    def _per_out(self, v: torch.Tensor) -> torch.Tensor:
        return v.view(1, -1, 1, 1) if self.transposed else v.view(-1, 1, 1, 1)

    def _quantised(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(integer weights, integer bias, integer multiplier) as float tensors with STE."""
        scale = self._weight_scale()
        w_int = round_ste(self.weight / self._per_out(scale)).clamp(-_WEIGHT_MAX, _WEIGHT_MAX)
        b_int = round_ste(self.bias / scale)
        mult = round_ste(scale * self.log_alpha.exp() * (1 << SHIFT)).clamp_min(1.0)
        return w_int, b_int, mult

    def _conv(self, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose2d(a, w, None, self.stride, self.padding, self.output_padding)
        return F.conv2d(a, w, None, self.stride, self.padding)

    def _activate(self, v: torch.Tensor) -> torch.Tensor:
        if self.final:
            return v.clamp(-_FINAL_RANGE, _FINAL_RANGE)
        return v.clamp(0, _ACT_MAX)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Training path (float32, straight-through rounding): integer-valued in, integer-valued out."""
        w_int, b_int, mult = self._quantised()
        acc = self._conv(a, w_int) + b_int.view(1, -1, 1, 1)
        return self._activate(round_ste(acc * (mult / (1 << SHIFT)).view(1, -1, 1, 1)))

    @torch.no_grad()
    def export(self) -> None:
        """Fix the integers used by :meth:`run_exact` (called once when training ends)."""
        w_int, b_int, mult = self._quantised()
        self.int_weight = w_int.detach().to(torch.float64)
        self.int_bias = b_int.detach().to(torch.float64)
        self.multiplier = mult.detach().to(torch.float64)

    def exported(self) -> bool:
        return self.int_weight.numel() > 0

    def max_abs_accumulator(self, max_abs_input: float) -> float:
        """An upper bound on |acc * m + 2**(S-1)| for inputs bounded by ``max_abs_input``."""
        fan_in = self.c_in * self.kernel * self.kernel
        acc = fan_in * _WEIGHT_MAX * max_abs_input + self.int_bias.abs().max().item()
        return acc * self.multiplier.max().item() + (1 << (SHIFT - 1))

    def conv_sum_bound(self, max_abs_input: float) -> float:
        """An upper bound on every partial sum of the convolution (bias excluded) for inputs
        bounded by ``max_abs_input``: the largest per-output-channel sum of |W|, times the bound."""
        dims = (0, 2, 3) if self.transposed else (1, 2, 3)
        return self.int_weight.abs().sum(dim=dims).max().item() * max_abs_input

    @torch.no_grad()
    def run_exact(self, a: torch.Tensor, *, max_abs_input: float | None = None) -> torch.Tensor:
        """Inference on integers (float64 tensor of integer values, CPU) -> integers, exactly.

        With ``max_abs_input`` given and :meth:`conv_sum_bound` below 2**24 the convolution
        runs in float32 (exact, see the module docstring), else in float64 (exact below
        2**53); ``tests/source_coding/learned/test_conv_codec.py`` checks both against int64 numpy."""
        if a.device.type != "cpu" or a.dtype != torch.float64:
            raise ValueError("run_exact takes a float64 CPU tensor of integers")
        dtype = torch.float64
        if max_abs_input is not None and self.conv_sum_bound(max_abs_input) < _EXACT_F32:
            dtype = torch.float32
        with _multiply_add_only():
            w, x = self.int_weight.to(dtype), a.to(dtype)
            if self.transposed:
                acc = F.conv_transpose2d(x, w, None, self.stride, self.padding, self.output_padding)
            else:
                acc = F.conv2d(x, w, None, self.stride, self.padding)
        # (acc + B) * m + 2**(S-1) = acc * m + (B * m + 2**(S-1)): every term an integer below
        # 2**53 (max_abs_accumulator), and the division by 2**S a change of exponent, so exact
        offset = (self.int_bias * self.multiplier + float(1 << (SHIFT - 1))).view(1, -1, 1, 1)
        v = acc.to(torch.float64).mul_(self.multiplier.view(1, -1, 1, 1)).add_(offset)
        return self._activate(v.mul_(1.0 / (1 << SHIFT)).floor_())


class IntNet(nn.Module):
    """A stack of :class:`IntConv` layers; the last one is ``final`` (signed output)."""

    def __init__(self, layers: list[IntConv], input_bound: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.input_bound = input_bound  # inputs are clamped to [-bound, bound] (also in training)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        a = a.clamp(-self.input_bound, self.input_bound)
        for layer in self.layers:
            a = layer(a)
        return a

    def export(self) -> None:
        for layer in self.layers:
            layer.export()
        bound = float(self.input_bound)
        for layer in self.layers:
            if layer.max_abs_accumulator(bound) >= _EXACT:
                raise OverflowError("integer network could leave the exact float64 range; retrain with smaller scales")
            bound = float(_FINAL_RANGE if layer.final else _ACT_MAX)

    def exported(self) -> bool:
        return all(layer.exported() for layer in self.layers)

    @torch.no_grad()
    def run_exact(self, a: torch.Tensor) -> torch.Tensor:
        """Integer inputs (any integer dtype or float) -> integer outputs as int64, on the CPU."""
        a = a.detach().to("cpu", torch.float64).clamp(-self.input_bound, self.input_bound)
        bound = float(self.input_bound)
        for layer in self.layers:
            a = layer.run_exact(a, max_abs_input=bound)
            bound = float(_FINAL_RANGE if layer.final else _ACT_MAX)
        return a.to(torch.int64)
