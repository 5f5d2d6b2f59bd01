"""``focalspec golden``: the certified value of a catalogue case, or of any input, to the last digit.

    focalspec golden CASE_ID [--digits N] [--dtype float32] [--grad] [--json]
    focalspec golden --x 0.95 --kind prob --y 1 --alpha 0.25 --gamma 2 [--digits 40] [--dtype float32]
    focalspec golden --list [--tag TAG]
    focalspec golden --errata

Numbers on the command line are exact decimals (--x 0.95 is 95/100, not the float nearest
to it); the output digits are those two mpmath precisions agree on.  A documentation
lookup: it never imports a framework.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

from focalspec.reference.rounding import FORMATS
from focalspec.spec.case import TAGS
from focalspec.spec.catalogue import all_cases, cases_with_tag, get_case
from focalspec.spec.certify import certify, certify_ratio, variant_of
from focalspec.spec.variant import CLIP_SCOPES, REDUCTIONS, SOFT_TARGETS, SpecError, Variant

MAX_DIGITS = 1000
# options of the --x form; None = not given, so that they can be refused next to a CASE_ID
X_OPTIONS = (
    *("y", "alpha", "gamma", "kind", "variant", "softmax", "soft", "reduction"),
    *("clip_eps", "clip_scope", "label_smoothing"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.splitlines()[0]
    p.add_argument("case_id", nargs="?", metavar="CASE_ID", help="a catalogue case (see --list)")
    p.add_argument("--list", action="store_true", help="list the catalogue cases")
    p.add_argument("--tag", metavar="TAG", help=f"with --list: only cases with this tag ({', '.join(TAGS)})")
    p.add_argument("--errata", action="store_true", help="check every number the seed articles printed")
    g = p.add_argument_group("ad-hoc input (instead of CASE_ID)")
    g.add_argument("--x", metavar="X", help="logit or probability (exact decimal; comma-separated for several)")
    g.add_argument("--y", metavar="Y", help="target: 0 or 1 (soft value with --soft; class index with --softmax)")
    g.add_argument("--alpha", metavar="A", help="alpha in [0, 1], or 'none' (default 0.25)")
    g.add_argument("--gamma", metavar="G", help="gamma >= 0 (default 2)")
    g.add_argument("--kind", choices=("logits", "prob", "probs"), help="what --x is (default logits)")
    g.add_argument("--variant", choices=SOFT_TARGETS, help="soft-target convention (default canonical)")
    g.add_argument("--softmax", action="store_true", default=None, help="--x is one row of class logits")
    g.add_argument("--soft", action="store_true", default=None, help="allow soft targets in [0, 1]")
    g.add_argument("--clip-eps", dest="clip_eps", metavar="E", help="declared clip convention eps")
    g.add_argument(
        "--clip-scope",
        dest="clip_scope",
        choices=CLIP_SCOPES,
        help="where that clip acts: all (default) or ce, inside the cross-entropy only (Keras binary)",
    )
    g.add_argument("--label-smoothing", dest="label_smoothing", metavar="L", help="label smoothing in [0, 1]")
    g.add_argument("--reduction", choices=REDUCTIONS, help="for several --x values (default none)")
    o = p.add_argument_group("output")
    o.add_argument("--digits", type=int, default=None, metavar="N", help="significant digits (default 34)")
    o.add_argument("--dtype", choices=tuple(FORMATS), help="also print the correctly rounded value in this dtype")
    o.add_argument("--grad", action="store_true", help="also print the gradient")
    o.add_argument("--json", action="store_true", help="machine-readable output")


# ----------------------------------------------------------------------------- parsing


def _number(option: str, text: str, allow_nonfinite: bool = False) -> str:
    """Validate an exact decimal; returns its text unchanged (mpmath reads it exactly)."""
    t = text.strip()
    try:
        d = Decimal(t)
    except InvalidOperation:
        raise SpecError(f"malformed number for {option}: {text!r}") from None
    if not d.is_finite() and not (allow_nonfinite and not d.is_snan()):
        raise SpecError(f"{option} must be finite, got {text!r}")
    return t


def _real(option: str, text: str | None, default: float) -> float:
    return default if text is None else float(Decimal(_number(option, text)))


def _alpha(text: str | None) -> float | None:
    if text is None:
        return 0.25
    if text.strip().lower() == "none":
        return None
    return float(Decimal(_number("--alpha", text)))


def _split(option: str, text: str, allow_nonfinite: bool = False) -> list[str]:
    parts = text.split(",")
    if any(not s.strip() for s in parts):
        raise SpecError(f"malformed list for {option}: {text!r}")
    return [_number(option, s, allow_nonfinite) for s in parts]


def _hard(option: str, s: str) -> int:
    d = Decimal(s)
    if d not in (0, 1):
        raise SpecError(f"{option} must be 0 or 1 (give --soft for a soft target), got {s!r}")
    return int(d)


def adhoc(args: argparse.Namespace) -> tuple[Variant, Any, Any]:
    """The variant, inputs and targets of the --x form."""
    if args.y is None:
        raise SpecError("--x needs a target: --y")
    kind = "probs" if args.kind in ("prob", "probs") else "logits"
    xs = _split("--x", args.x, allow_nonfinite=True)
    variant = Variant(
        activation="softmax" if args.softmax else "sigmoid",
        input_kind=kind,
        gamma=_real("--gamma", args.gamma, 2.0),
        alpha=_alpha(args.alpha),
        soft_target=args.variant or "canonical",
        clip_eps=None if args.clip_eps is None else _real("--clip-eps", args.clip_eps, 0.0),
        clip_scope=args.clip_scope or "all",
        label_smoothing=_real("--label-smoothing", args.label_smoothing, 0.0),
        reduction=args.reduction or "none",
    )
    if args.softmax:
        if "," in args.y or args.soft:  # a target distribution
            ys: Any = [_split("--y", args.y)]
            if len(ys[0]) != len(xs):
                raise SpecError(f"--y has {len(ys[0])} entries but --x has {len(xs)} classes")
        else:
            try:
                ys = [int(args.y)]
            except ValueError:
                raise SpecError(f"--y must be a class index with --softmax, got {args.y!r}") from None
            if not 0 <= ys[0] < len(xs):
                raise SpecError(f"class index --y {ys[0]} is out of range for {len(xs)} classes")
        return variant, [xs], ys
    ys = _split("--y", args.y)
    if not args.soft:
        ys = [_hard("--y", s) for s in ys]
    if len(ys) != len(xs):
        raise SpecError(f"--y has {len(ys)} values but --x has {len(xs)}")
    if len(xs) == 1 and variant.reduction == "none":
        return variant, xs[0], ys[0]
    return variant, xs, ys


# ----------------------------------------------------------------------------- computing


def compute(variant: Variant, inputs: Any, targets: Any, digits: int, quantity: dict | None = None) -> dict:
    """Certified result as plain data (strings), the quantity of ratio/factor cases included."""
    cert = certify(variant, inputs, targets, digits)
    out: dict[str, Any] = {
        "losses": cert.losses,
        "value": cert.value,
        "grad": cert.grad,
        "rounded": cert.rounded,
        "digits": cert.digits,
    }
    if quantity:
        out["quantity"] = certify_ratio(
            variant_of(quantity["numerator"], variant), variant_of(quantity["denominator"], variant),
            inputs, targets, digits,
        )  # fmt: skip
        out["quantity"]["definition"] = quantity.get("definition", "")
    return out


def _from_golden(case_id: str) -> dict | None:
    """The stored result of a case, when the golden file holds it at the default digits."""
    from focalspec.spec.golden import get_entry

    try:
        e = get_entry(case_id)
    except SpecError:
        return None
    if e.case != get_case(case_id):  # golden file older than the catalogue: compute afresh
        return None
    out = {"losses": e.losses, "value": e.value, "grad": e.grad, "rounded": e.rounded, "digits": e.digits}
    if e.quantity is not None:
        out["quantity"] = dict(e.quantity, definition=e.case.extra["quantity"].get("definition", ""))
    return out


# ----------------------------------------------------------------------------- printing


def _lines(name: str, data: Any) -> list[tuple[str, Any]]:
    """(label, scalar) pairs of a scalar or nested list: 'loss', 'loss[1]', 'grad[0][2]'."""
    if not isinstance(data, list):
        return [(name, data)]
    out: list[tuple[str, Any]] = []
    for i, v in enumerate(data):
        out.extend(_lines(f"{name}[{i}]", v))
    return out


def _dtype_text(v: str | None, dtype: str) -> str:
    if v is None:
        return "-"
    f = float(v)
    native = FORMATS[dtype].numpy_type(f)
    return f"{native}  ({f.hex()})"


def render_text(res: dict, args: argparse.Namespace, header: str) -> str:
    rows: list[tuple[str, str]] = []
    q = res.get("quantity")
    if q:
        rows.append(("quantity", f"{q['value']}    {q.get('definition', '')}".rstrip()))
        if args.dtype:
            rows.append((f"quantity {args.dtype}", _dtype_text(q["rounded"][args.dtype], args.dtype)))
    if res["value"] is not None:
        rows.append(("value", res["value"]))
        if args.dtype:
            rows.append((f"value {args.dtype}", _dtype_text(res["rounded"][args.dtype]["value"], args.dtype)))
    loss_rows = _lines("loss", res["losses"])
    if res["value"] is None or len(loss_rows) <= 20:
        rows.extend(loss_rows)
        if args.dtype:
            rnd = _lines(f"loss {args.dtype}", res["rounded"][args.dtype]["losses"])
            rows.extend((k, _dtype_text(v, args.dtype)) for k, v in rnd)
    if args.grad:
        rows.extend(_lines("grad", res["grad"]))
        if args.dtype:
            rnd = _lines(f"grad {args.dtype}", res["rounded"][args.dtype]["grad"])
            rows.extend((k, _dtype_text(v, args.dtype)) for k, v in rnd)
    width = max((len(k) for k, _ in rows), default=4)
    body = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    return f"{header}\n{body}\n"


def _to_json(res: dict, args: argparse.Namespace, meta: dict) -> str:
    out = dict(meta, losses=res["losses"], value=res["value"], digits=res["digits"])
    if args.grad:
        out["grad"] = res["grad"]
    if args.dtype:
        r = res["rounded"][args.dtype]
        out["rounded"] = {args.dtype: {k: v for k, v in r.items() if args.grad or k != "grad"}}
    if res.get("quantity"):
        out["quantity"] = res["quantity"]
    return json.dumps(out, indent=1, sort_keys=True, allow_nan=False)


def _list(args: argparse.Namespace) -> int:
    cases = cases_with_tag(args.tag) if args.tag else all_cases()
    if args.json:
        print(json.dumps([{"id": c.id, "tags": list(c.tags), "note": c.note} for c in cases], indent=1))
        return 0
    width = max((len(c.id) for c in cases), default=0)
    for c in cases:
        note = c.note if len(c.note) <= 90 else c.note[:87] + "..."
        print(f"{c.id:<{width}}  [{', '.join(c.tags)}]  {note}")
    print(f"{len(cases)} case(s)")
    return 0


def _errata(args: argparse.Namespace) -> int:
    from focalspec.spec.golden import errata

    rows = errata()
    if args.json:
        print(json.dumps([asdict(e) for e in rows], indent=1))
        return 0
    for e in rows:
        print(f"{e.case_id}  printed {e.printed}  certified {e.certified_at_printed}  [{e.verdict}]")
        print(f"    {e.explanation}")
    counts = {v: sum(e.verdict == v for e in rows) for v in ("correct", "rounding/truncation", "wrong")}
    print(", ".join(f"{n} {v}" for v, n in counts.items()))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.tag and not args.list:
        raise SpecError("--tag goes with --list")
    given_x_opts = [o for o in X_OPTIONS if getattr(args, o) is not None]
    if args.list or args.errata:
        if args.list and args.errata:
            raise SpecError("give --list or --errata, not both")
        if args.case_id or args.x is not None or given_x_opts:
            raise SpecError("--list and --errata take no CASE_ID or --x options")
        return _list(args) if args.list else _errata(args)
    digits = 34 if args.digits is None else args.digits
    if not 1 <= digits <= MAX_DIGITS:
        raise SpecError(f"--digits must be between 1 and {MAX_DIGITS}, got {digits}")
    if args.case_id is not None:
        if args.x is not None:
            raise SpecError("give either a CASE_ID or --x, not both")
        if given_x_opts:
            opts = ", ".join("--" + o.replace("_", "-") for o in given_x_opts)
            raise SpecError(f"{opts} only apply to --x; a case id fixes its own variant and inputs")
        case = get_case(args.case_id)
        res = _from_golden(case.id) if args.digits in (None, 34) else None
        if res is None:
            res = compute(case.variant, case.inputs, case.targets, digits, case.extra.get("quantity"))
        meta = {"id": case.id, "variant": case.variant.to_dict(), "note": case.note}
        header = f"{case.id}  ({case.variant.label()})  {case.note}"
    elif args.x is not None:
        variant, inputs, targets = adhoc(args)
        res = compute(variant, inputs, targets, digits)
        meta = {"variant": variant.to_dict(), "inputs": inputs, "targets": targets}
        header = f"{variant.label()}  x={args.x}  y={args.y}"
    else:
        raise SpecError("give a CASE_ID, --x (with --y), --list or --errata")
    if args.json:
        print(_to_json(res, args, meta))
    else:
        sys.stdout.write(render_text(res, args, header))
    return 0
