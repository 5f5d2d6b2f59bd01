"""What the GPU will run, proven on a CPU: focalspec.kernels.triton_kernel compiled ahead of time to PTX
for sm_80 and sm_90 (``triton.compile`` needs no GPU), every constexpr variant of the kernel.

* every global load and store of the element arrays (logits, targets, loss, gradient) is
  predicated, and its predicate depends on the bounds argument n; the per-block accesses
  (partial sums, parameters) have no per-lane offset at all;
* the float32 path's exp, division and log are read off the PTX (ex2.approx with or without
  range reduction, div.full or div.rn, libdevice logf) and the kernel is re-run under Triton's
  interpreter with each replaced by a numpy model of its documented worst error
  (tests/ptx_support.py): the predicted GPU error, in units of float32's u against the mpmath
  reference, must stay within the 'accurate' budget the adapter claims.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the Triton kernel needs torch")
triton = pytest.importorskip("triton", reason="triton is not installed here (it comes with torch's CUDA wheels)")

import triton.language as tl  # noqa: E402
from ptx_support import Emulation, Ptx  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

from focalspec.kernels import triton_kernel as kt  # noqa: E402
from focalspec.reference import exact as ref_mp  # noqa: E402
from focalspec.spec.tolerance import budget, error_in_u  # noqa: E402
from focalspec.spec.variant import Variant  # noqa: E402

ARCHS = (80, 90)
TY = {"float64": "fp64", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
GAMMAS = (0.0, 2.0, 2.5)  # GAMMA_INT 0 (no power), 2 (multiplications), -1 (general power)
REDUCTIONS = ("none", "sum", "normalized")  # mean shares sum's switches (its 1/n is a parameter)
ELEMENT_PARAMS = (0, 1, 2, 3)  # x, t, loss, grad
N_PARAM = 6


@functools.cache
def _ptx(dtype: str, alpha: bool, gamma: float, reduction: str, want_grad: bool, arch: int, n_ty: str = "i32") -> Ptx:
    f64 = dtype == "float64"
    ct = "fp64" if f64 else "fp32"
    sig = {"x_ptr": f"*{TY[dtype]}", "t_ptr": f"*{TY[dtype]}", "loss_ptr": f"*{TY[dtype]}",
           "grad_ptr": f"*{TY[dtype]}", "part_ptr": f"*{ct}", "prm_ptr": "*fp64", "n": n_ty}  # fmt: skip
    const = kt.constexprs(alpha, gamma, reduction, want_grad, f64, kt.BLOCK_CUDA, native=True)
    sig.update(dict.fromkeys(const, "constexpr"))
    # JITFunction, not triton.jit: under TRITON_INTERPRET=1 triton.jit gives an interpreted function
    compiled = triton.compile(ASTSource(JITFunction(kt.body()), sig, const), target=GPUTarget("cuda", arch, 32))
    return Ptx.parse(compiled.asm["ptx"])


def _variants(dtypes: tuple[str, ...]) -> list[tuple]:
    return list(itertools.product(dtypes, (False, True), GAMMAS, REDUCTIONS, (False, True)))


# every constexpr combination for float32 and float64 on both architectures (GAMMA_INT 0, 2 and
# -1; 1 and 16, the ends of the unrolled powers, on sm_90); the half types (other load and store
# widths) on sm_90 with alpha and gamma = 2; and n past 2**31 (an i64 argument)
VARIANTS = [(*v, arch, "i32") for arch in ARCHS for v in _variants(("float32", "float64"))]
VARIANTS += [("float32", True, g, r, w, 90, "i32") for g in (1.0, 16.0) for r in REDUCTIONS for w in (False, True)]
VARIANTS += [
    (d, True, 2.0, r, w, 90, "i32") for d in ("float16", "bfloat16") for r in REDUCTIONS for w in (False, True)
]
VARIANTS += [("float32", True, 2.0, r, True, 90, "i64") for r in REDUCTIONS]


@pytest.mark.parametrize(("dtype", "alpha", "gamma", "reduction", "want_grad", "arch", "n_ty"), VARIANTS)
def test_every_global_access_is_bounded(
    dtype: str, alpha: bool, gamma: float, reduction: str, want_grad: bool, arch: int, n_ty: str
) -> None:
    ptx = _ptx(dtype, alpha, gamma, reduction, want_grad, arch, n_ty)
    seen, problems = _bounds(ptx, ELEMENT_PARAMS, N_PARAM)
    assert not problems, "\n".join(problems)
    assert {0, 1} <= seen  # both inputs were found (a parser that sees nothing must not pass)
    assert (2 in seen) == (reduction == "none") and (3 in seen) == want_grad


def _bounds(ptx: Ptx, element_params: tuple[int, ...], n_index: int) -> tuple[set[int], list[str]]:
    """(parameters accessed, problems): element accesses not predicated by i < n, per-block
    accesses with a lane offset."""
    params = ptx.params
    n_param = params[n_index]
    seen: set[int] = set()
    problems = []
    for ins, addr, pred in ptx.global_accesses():
        used = {params.index(p) for p in addr if p in params}
        if len(used) != 1:
            problems.append(f"{ins.op} {ins.operands}: address from parameters {used}")
            continue
        (p,) = used
        seen.add(p)
        if p in element_params:
            if ins.pred is None:
                problems.append(f"unpredicated {ins.op} of parameter {p}: {ins.operands}")
            elif n_param not in pred:
                problems.append(f"{ins.op} of parameter {p} is predicated by {ins.pred}, not by i < n")
        elif any(r.startswith("%tid") for r in addr):  # partial sums, parameters: one address per block
            problems.append(f"{ins.op} of parameter {p} has a lane offset")
    return seen, problems


def _copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs))  # no mask: the last block runs past n


def test_the_bounds_check_can_fail() -> None:
    sig = {"x_ptr": "*fp32", "y_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"}
    compiled = triton.compile(ASTSource(JITFunction(_copy), sig, {"BLOCK": 256}), target=GPUTarget("cuda", 90, 32))
    seen, problems = _bounds(Ptx.parse(compiled.asm["ptx"]), (0, 1), 2)
    assert seen == {0, 1} and any("unpredicated" in p for p in problems), problems


# logits where the unreduced exp and the divisions matter: saturated, mid-range and soft targets
X = [-104.0, -87.0, -60.0, -30.0, -17.0, -3.0, -0.5, 0.0, 1e-3, 0.7, 4.0, 17.0, 30.0, 60.0, 87.0, 104.0]


def _emulated_grade(emu: Emulation, v: Variant) -> tuple[float, float]:
    """(value, gradient) errors in float32 u of the interpreted kernel with the GPU's math put in."""
    from triton.runtime import interpreter as it

    b = it.interpreter_builder
    xs = np.array(X * 3, dtype=np.float32).astype(np.float64)
    ts = np.array([1.0] * len(X) + [0.0] * len(X) + [0.3] * len(X))

    def unary(model, original):  # type: ignore[no-untyped-def]
        return lambda arg: b.unary_op(arg, lambda a: model(a) if a.dtype == np.float32 else original(a))

    def binary(model, original):  # type: ignore[no-untyped-def]
        return lambda lhs, rhs: b.binary_op(
            lhs, rhs, lambda p, q: model(p, q) if p.dtype == np.float32 else original(p, q)
        )

    patch = pytest.MonkeyPatch()
    try:
        patch.setattr(b, "create_exp", unary(emu.exp_f32, np.exp), raising=False)
        patch.setattr(b, "create_log", unary(emu.log_f32, np.log), raising=False)
        patch.setattr(b, "create_fdiv", binary(emu.div_f32, np.divide), raising=False)
        patch.setattr(b, "create_precise_divf", binary(emu.div_f32, np.divide), raising=False)
        x = torch.from_numpy(xs).to(torch.float32).requires_grad_()
        t = torch.from_numpy(ts).to(torch.float32)
        loss = kt.sigmoid_focal_loss(x, t, alpha=v.alpha, gamma=v.gamma, reduction=v.reduction, check=False)  # type: ignore[arg-type]
        (g,) = torch.autograd.grad(loss.sum(), x)
    finally:
        patch.undo()
    ref = ref_mp.evaluate(v, xs, ts)
    exp_v = ref.losses.astype(np.float64)
    ev = error_in_u(loss.detach().double().numpy(), exp_v, np.abs(exp_v), "float32")
    eg = error_in_u(g.double().numpy(), ref.grad.astype(np.float64), ref.grad_scale.astype(np.float64), "float32")
    return float(np.nanmax(ev)), float(np.nanmax(eg))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("gamma", [0.0, 2.0, 5.0, 2.5])
def test_float32_math_on_the_gpu_stays_accurate(arch: int, gamma: float) -> None:
    ptx = _ptx("float32", True, gamma, "none", True, arch)
    kinds = ptx.math_kinds()
    assert kinds["exp"], "no exp found in the float32 kernel's PTX (the parser must see it)"
    assert "lg2-approx" not in kinds["log"] and "div.approx" not in kinds["div"], kinds
    v = Variant(gamma=gamma, alpha=0.25)
    limit = budget("float32", gamma).accurate
    worst = (0.0, 0.0)
    for exp_kind, div_kind, s_e, s_d in itertools.product(kinds["exp"], kinds["div"] or {"div.rn"}, (1, -1), (1, -1)):
        emu = Emulation(exp_kind, div_kind, "logf", s_e, s_d)
        ev, eg = _emulated_grade(emu, v)
        worst = (max(worst[0], ev), max(worst[1], eg))
    assert worst[0] <= limit and worst[1] <= limit, f"predicted GPU error {worst} u > {limit} u ({kinds})"


def test_the_emulation_sees_the_unreduced_exp() -> None:
    """The model must be able to fail: ex2.approx(x log2 e) at x = 87 is ~19 u off in float32."""
    unreduced = Emulation("ex2-unreduced", "div.rn", "logf").exp_f32(np.array([-87.0], dtype=np.float32))
    exact = np.exp(np.float64(-87.0))
    assert abs(float(unreduced[0]) - exact) / exact > 10 * 2.0**-24
    reduced = Emulation("expf", "div.rn", "logf").exp_f32(np.array([-87.0], dtype=np.float32))
    assert abs(float(reduced[0]) - exact) / exact <= 2.5 * 2.0**-23
