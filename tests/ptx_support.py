"""Reading PTX that Triton compiled ahead of time (no GPU needed): which kernel parameter every
global load and store addresses, whether its predicate depends on the bounds argument, and
which approximate math instructions the float32 path uses -- with the documented error of each,
so that the kernel can be re-run on CPU with those errors put back in (see ``Emulation``).

Documented maximum errors (PTX ISA, "Floating Point Instructions"; CUDA C++ Programming Guide,
"Mathematical Functions", single precision, full range):
  ex2.approx.f32          2 ulp  (on its own argument: exp via ex2(x * log2 e) adds the rounding
                                  of x * log2 e, |x| 2**-24 relative, unless the argument is reduced)
  div.full.f32            2 ulp
  div.rn.f32              correctly rounded
  expf (libdevice)        2 ulp  (range-reduced: ex2.approx only on |r| <= 1/2 after
                                  x = j ln 2 + r with a two-constant log2 e)
  logf (libdevice)        1 ulp
  exp (libdevice, f64)    1 ulp of float64: rounded to float32 within 0.5 ulp + 2**-29 relative
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

_INSTR = re.compile(r"^(?:@(!?%\w+)\s+)?([a-z][\w.:]*)\s*(.*?);\s*$")
_REG = re.compile(r"%[A-Za-z_][\w]*(?:\.[xyz])?")
LOG2E_BITS = ("0f3FB8AA3B", "0fBFB8AA3B")  # +-log2(e) rounded to float32
LOG2E_F64 = "0d3FF71547652B82FE"  # log2(e) rounded to float64


@dataclass
class Instr:
    pred: str | None
    op: str
    operands: list[str]

    @property
    def regs(self) -> list[str]:
        return [r for o in self.operands for r in _REG.findall(o)]


@dataclass
class Ptx:
    """One kernel's PTX, its instructions and each register's defining instructions."""

    text: str
    instrs: list[Instr] = field(default_factory=list)
    defs: dict[str, list[Instr]] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Ptx:
        ptx = cls(text)
        body = text[text.index(".entry") :]
        ptx.params = re.findall(r"\.param\s+[^\n]*?(\w+_param_\d+)", body[: body.index(")")])
        for raw in body.splitlines():
            line = raw.split("//")[0].strip()
            if not line or line.startswith((".", "$", "{", "}")):
                continue
            m = _INSTR.match(line)
            if m is None:
                continue
            pred, op, rest = m.groups()
            operands = [o.strip() for o in re.split(r",(?![^\[]*\])(?![^{]*})", rest) if o.strip()]
            ins = Instr(pred, op, operands)
            ptx.instrs.append(ins)
            if operands and not op.startswith(("st.", "bra", "ret", "bar", "red.")):
                for dst in _REG.findall(operands[0]):
                    ptx.defs.setdefault(dst, []).append(ins)
        return ptx

    def roots(self, reg: str) -> set[str]:
        """Kernel parameters and special registers (%tid.x, %ctaid.x) that ``reg`` depends on."""
        seen: set[str] = set()
        out: set[str] = set()
        stack = [reg]
        while stack:
            r = stack.pop()
            if r in seen:
                continue
            seen.add(r)
            if "." in r:  # %tid.x, %ctaid.x, %nctaid.x
                out.add(r)
                continue
            for ins in self.defs.get(r, []):
                if ins.op.startswith("ld.param"):
                    out.update(re.findall(r"\w+_param_\d+", ins.operands[1]))
                else:
                    stack.extend(ins.regs[1:] if ins.regs and ins.regs[0] == r else ins.regs)
        return out

    def global_accesses(self) -> list[tuple[Instr, set[str], set[str]]]:
        """Each ld.global / st.global with (its address's roots, its predicate's roots)."""
        out = []
        for ins in self.instrs:
            if not re.match(r"(ld|st)\.global", ins.op):
                continue
            addr = next(o for o in ins.operands if o.startswith("["))
            addr_roots: set[str] = set()
            for r in _REG.findall(addr):
                addr_roots |= self.roots(r) | ({r} if "." in r else set())
            pred_roots = self.roots(ins.pred.lstrip("!")) if ins.pred else set()
            out.append((ins, addr_roots, pred_roots))
        return out

    def constant(self, operand: str) -> str | None:
        """The immediate an operand holds (directly or through one mov), else None."""
        if operand.startswith("0f") or operand.startswith("0d"):
            return operand
        for ins in self.defs.get(operand, []):
            if ins.op.startswith("mov.") and len(ins.operands) == 2 and ins.operands[1].startswith(("0f", "0d")):
                return ins.operands[1]
        return None

    def math_kinds(self) -> dict[str, set[str]]:
        """exp / div / log implementations of the float32 math in this kernel (see module docstring)."""
        kinds: dict[str, set[str]] = {"exp": set(), "div": set(), "log": set()}
        for ins in self.instrs:
            if ins.op.startswith("ex2.approx") and ins.op.endswith("f32"):
                src = ins.operands[1]
                unreduced = any(
                    d.op.startswith("mul.") and any(self.constant(o) in LOG2E_BITS for o in d.operands[1:])
                    for d in self.defs.get(src, [])
                )
                kinds["exp"].add("ex2-unreduced" if unreduced else "expf")
            elif ins.op.startswith("div.") and ins.op.endswith("f32"):
                kinds["div"].add("div.rn" if ".rn" in ins.op else "div.approx" if ".approx" in ins.op else "div.full")
            elif ins.op.startswith("lg2.approx") and ins.op.endswith("f32"):
                kinds["log"].add("lg2-approx")
        if LOG2E_F64 in self.text:  # libdevice's float64 exp reduces its argument with log2 e in float64
            kinds["exp"].add("exp-f64")
        if "__nv_logf" in self.text or re.search(r"0f3F317218", self.text):
            kinds["log"].add("logf")
        return kinds


# relative error bounds, in units of 2**-23 (one float32 ulp at 1 <= |v| < 2, i.e. u = 2**-24 twice)
ULPS = {
    "exp-f64": 2.0**-29,  # one float64 ulp, before the rounding to float32
    "expf": 2.0,
    "ex2-unreduced": 2.0,
    "div.full": 2.0,
    "div.approx": 2.0,
    "div.rn": 0.0,
    "logf": 1.0,
}


@dataclass(frozen=True)
class Emulation:
    """numpy stand-ins for the GPU's float32 exp, division and log: the exact result perturbed by
    the documented bound, in the direction ``sign`` (+1 or -1) picks, then rounded to float32."""

    exp: str
    div: str
    log: str
    sign_exp: int = 1
    sign_div: int = 1

    @staticmethod
    def _bump(v: np.ndarray, ulps: float, sign: int) -> np.ndarray:
        return (v * (1.0 + sign * ulps * 2.0**-23)).astype(np.float32)

    def exp_f32(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        if self.exp == "ex2-unreduced":  # ex2.approx(x * log2 e): the product is rounded to float32 first
            y = (x * np.float32(np.log2(np.e))).astype(np.float32)
            exact = np.exp2(y.astype(np.float64))
        else:
            exact = np.exp(x.astype(np.float64))
        return self._bump(exact, ULPS[self.exp], self.sign_exp)

    def div_f32(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            exact = a.astype(np.float64) / b.astype(np.float64)
        return self._bump(exact, ULPS[self.div], self.sign_div)

    def log_f32(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            exact = np.log(x.astype(np.float64))
        return self._bump(exact, ULPS[self.log], self.sign_exp)
