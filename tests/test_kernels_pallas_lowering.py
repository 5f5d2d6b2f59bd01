"""What a GPU will compile for focalspec.kernels.pallas_kernel, proven on a CPU: every variant lowered
for CUDA (``jax.jit(f).trace(...).lower(lowering_platforms=("cuda",))`` with ShapeDtypeStruct
inputs needs no GPU), through the Triton lowering, with every load and store of the element
arrays masked by i < n -- at a size that is not a multiple of the block (4080, like the bench),
where an unmasked last block reads and writes up to 1023 elements past the end.  The
interpreter pads the last block, so only the lowering can show this."""

from __future__ import annotations

import itertools
import re

import pytest

pytest.importorskip("jax", reason="the Pallas kernel needs jax")

from focalspec.adapters.own_jax import _jax

jax = _jax()
import jax.numpy as jnp  # noqa: E402

from focalspec.kernels import pallas_kernel as kp  # noqa: E402

N = 4080  # the bench's ragged size: 3 full blocks and one of 1008


def _triton_ir(dtype: str, alpha: float | None, gamma: float, reduction: str, want_grad: bool) -> list[str]:
    """The Triton IR (generic MLIR text) of each pallas_call in the CUDA lowering."""

    def loss(x, t):  # type: ignore[no-untyped-def]
        return kp.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction, interpret=False)

    def f(x, t):  # type: ignore[no-untyped-def]
        if not want_grad:
            return loss(x, t)
        out, vjp = jax.vjp(lambda a: loss(a, t), x)
        return vjp(jnp.ones_like(out))[0]

    spec = jax.ShapeDtypeStruct((N,), jnp.dtype(dtype))
    with _abstract_gpu():
        return _irs(jax.jit(f).trace(spec, spec).lower(lowering_platforms=("cuda",)))


def _abstract_gpu():  # type: ignore[no-untyped-def]
    """JAX >= 0.11's Triton lowering asks the device for its compute capability: on a machine
    without a GPU it needs an abstract H100 (JAX 0.10 lowers without)."""
    import contextlib

    if tuple(int(p) for p in jax.__version__.split(".")[:2]) < (0, 11):
        return contextlib.nullcontext()
    from jax._src import mesh as mesh_lib

    dev = mesh_lib.AbstractDevice(device_kind="NVIDIA H100 80GB HBM3", num_cores=132, platform="gpu")
    return jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((1,), ("x",), abstract_device=dev))


def _irs(lowered) -> list[str]:  # type: ignore[no-untyped-def]
    from jax._src.lib.mlir import ir

    calls: list = []

    def walk(op) -> None:  # type: ignore[no-untyped-def]
        for region in op.regions:
            for block in region.blocks:
                for o in block.operations:
                    if o.operation.name == "stablehlo.custom_call":
                        calls.append(o)
                    walk(o.operation)

    walk(lowered.compiler_ir("stablehlo").operation)
    out = []
    for call in calls:
        target = str(call.attributes["call_target_name"])
        assert "triton" in target, f"pallas_call lowered to {target}, not the Triton lowering"
        blob = ir.StringAttr(call.attributes["mhlo.backend_config"]["ir"]).value_bytes
        with ir.Context() as ctx:
            _register_triton(ctx)
            ctx.allow_unregistered_dialects = True
            out.append(ir.Module.parse(blob).operation.get_asm(print_generic_op_form=True))
    return out


def _register_triton(ctx) -> None:  # type: ignore[no-untyped-def]
    """The Triton dialect, where jaxlib ships it (some modules' bytecode cannot be read without it)."""
    try:
        from jax._src.lib import triton as jtriton

        jtriton.dialect.register_dialect(ctx)
    except (ImportError, AttributeError):
        pass


_DEF = re.compile(r"^\s*(%\w+) = \"([\w.]+)\"\(([^)]*)\)(.*)$")


def _masked_by_n(ir_text: str) -> list[str]:
    """Problems: tensor loads/stores without a mask, or with one that is not a comparison with n."""
    defs = {}
    for line in ir_text.splitlines():
        m = _DEF.match(line)
        if m:
            defs[m.group(1)] = (m.group(2), [a.strip() for a in m.group(3).split(",") if a.strip()], m.group(4))

    def depends_on_n(v: str, seen: set[str]) -> bool:
        if v in seen or v not in defs:
            return False
        seen.add(v)
        op, args, rest = defs[v]
        if op == "arith.constant" and re.search(rf"(<|value = ){N} : i\d+", rest):
            return True
        return any(depends_on_n(a, seen) for a in args)

    problems = []
    n_access = 0
    for line in ir_text.splitlines():
        m = re.search(r"\"tt\.(load|store)\"\(([^)]*)\)", line)
        if not m or " : (" not in line:
            continue
        types = line.rsplit(" : (", 1)[1]
        if not types.startswith("tensor<") or types.startswith("tensor<1x"):
            continue  # scalar accesses: one partial sum per block, always inside its (blocks,) output
        n_access += 1
        kind, args = m.group(1), [a.strip() for a in m.group(2).split(",")]
        mask = args[1] if kind == "load" and len(args) > 1 else args[2] if kind == "store" and len(args) > 2 else None
        if mask is None:
            problems.append(f"unmasked tt.{kind}: {line.strip()[:160]}")
        elif not depends_on_n(mask, set()):
            problems.append(f"tt.{kind} masked by {mask}, which does not compare with n = {N}")
    if n_access == 0:
        problems.append("no tensor load or store found (the parser must see them)")
    return problems


DTYPES = ("float32", "float16", "bfloat16", "float64")
VARIANTS = [(d, 0.25, 2.0, r, g) for d, r, g in itertools.product(DTYPES, ("none", "sum", "mean", "normalized"),
                                                                  (False, True))]  # fmt: skip
VARIANTS += [("float32", None, g, r, True) for g in (0.0, 2.5) for r in ("none", "normalized")]


@pytest.mark.parametrize(("dtype", "alpha", "gamma", "reduction", "want_grad"), VARIANTS)
def test_lowers_for_cuda_through_triton_with_masks(
    dtype: str, alpha: float | None, gamma: float, reduction: str, want_grad: bool
) -> None:
    irs = _triton_ir(dtype, alpha, gamma, reduction, want_grad)
    assert len(irs) == 1, f"{len(irs)} pallas_calls (one kernel launch expected)"
    problems = _masked_by_n(irs[0])
    assert not problems, "\n".join(problems)


def test_the_mask_check_can_fail() -> None:
    """An unmasked kernel (ref[...] as today's kernel wrote it) is reported."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as pltriton

    def copy(x_ref, o_ref):  # type: ignore[no-untyped-def]
        o_ref[...] = x_ref[...]

    spec = pl.BlockSpec((1024,), lambda i: (i,))
    call = pl.pallas_call(copy, out_shape=jax.ShapeDtypeStruct((N,), jnp.float32), grid=(4,), in_specs=[spec],
                          out_specs=spec, compiler_params=pltriton.CompilerParams())  # fmt: skip
    with _abstract_gpu():
        (ir_text,) = _irs(
            jax.jit(call).trace(jax.ShapeDtypeStruct((N,), jnp.float32)).lower(lowering_platforms=("cuda",))
        )
    assert any("unmasked" in p for p in _masked_by_n(ir_text))


def test_float16_positive_count_past_65504() -> None:
    """70,000 positives: a float16 count is inf and 1 / count 0; the gradient must stay the
    float32 gradient / 70,000 rounded once."""
    n = 70_000
    x = jnp.full((n,), -2.0, jnp.float16)  # wrong positives: d loss / dx ~ -0.2, / 70,000 a float16 subnormal
    t = jnp.ones((n,), jnp.float16)
    g = jax.grad(lambda a: kp.sigmoid_focal_loss(a, t, reduction="normalized", interpret=True).astype(jnp.float32))(x)
    g32 = jax.grad(lambda a: kp.sigmoid_focal_loss(a, t.astype(jnp.float32), reduction="sum", interpret=True))(
        x.astype(jnp.float32)
    )
    want = (g32 / n).astype(jnp.float16)
    assert float(g[0]) != 0.0 and float(g[0]) == float(want[0]), (float(g[0]), float(want[0]))
