"""``focalspec golden``: the certified value of a catalogue case, or of any input, to the last digit.

    focalspec golden CASE_ID [--digits N] [--dtype float32] [--grad] [--json]
    focalspec golden --x 0.95 --kind prob --y 1 --alpha 0.25 --gamma 2 [--digits 40] [--dtype float32]
    focalspec golden --x -18.6,0.51 --x 2.94,-12.8 --y 0,1 --y 0,0 --alpha none --gamma 4 --reduction keras-sum
        (Keras' docstring example, float32 inputs: add --input-dtype float32; --printed 1.222 checks its digits)
    focalspec golden --softmax --x 2,0,-1 --x 0,1,0 --y 0 --y 2 --alpha 0.2,0.4,0.4
    focalspec golden --list [--tag TAG]
    focalspec golden --errata
    focalspec golden --peer-errata            # the numbers libraries print in their own docs

What is exact: the inputs (--x), targets (--y) and weights (--sample-weight, --class-weight)
are exact decimals: --x 0.95 is 95/100, not the float nearest to it.  The parameters --alpha,
--gamma, --label-smoothing and --clip-eps are float64, as SPEC.md defines them: --alpha 0.1
is float(0.1) = 0.1000000000000000055511151231257827...  --input-dtype float32 rounds the
inputs, soft targets and weights to float32 first (what a library computing in float32 is
handed); --round-params rounds the parameters to that dtype too.  Negative numbers and lists
are read as typed (--x -18.6,0.51); --x=-18.6,0.51 works as well.  Several --x (or rows
separated by ';') make a batch: rows of a sigmoid input, or one softmax sample each.

Each number printed has the digits two mpmath precisions agree on, and 'status' says whether
interval arithmetic proves them (proven: every digit shown and every dtype value) or not
(agreed, with the reason).  A documentation lookup: it never imports a framework.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

from focalspec.certified.api import Request, answer, request
from focalspec.spec.case import TAGS
from focalspec.spec.catalogue import all_cases, cases_with_tag, get_case
from focalspec.spec.reductions import LIBRARY_REDUCTIONS
from focalspec.spec.rounding import FORMATS
from focalspec.spec.variant import CLIP_SCOPES, REDUCTIONS, SOFT_TARGETS, SpecError

MAX_DIGITS = 1000
# options of the --x form; None = not given, so that they can be refused next to a CASE_ID
X_OPTIONS = (
    *("y", "alpha", "gamma", "kind", "variant", "softmax", "soft", "reduction"),
    *("clip_eps", "clip_scope", "label_smoothing", "renormalize", "sample_weight", "class_weight"),
    *("input_dtype", "round_params"),
)
# options whose value may be a negative number or list, which argparse would take for an option
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.splitlines()[0]
    p.epilog = "examples:\n" + __doc__.split("\n\n", 1)[1]
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("case_id", nargs="?", metavar="CASE_ID", help="a catalogue case (see --list)")
    p.add_argument("--list", action="store_true", help="list the catalogue cases")
    p.add_argument("--tag", metavar="TAG", help=f"with --list: only cases with this tag ({', '.join(TAGS)})")
    p.add_argument("--errata", action="store_true", help="check every number the seed articles printed")
    p.add_argument("--peer-errata", dest="peer_errata", action="store_true",
                   help="check the numbers libraries print in their own docs (golden/peer_examples.json)")  # fmt: skip
    g = p.add_argument_group("ad-hoc input (instead of CASE_ID)")
    g.add_argument("--x", metavar="X", action="append",
                   help="logits or probabilities, exact decimals, comma-separated; repeat --x (or separate "
                        "rows by ';') for a batch: sigmoid rows, or one softmax sample per --x")  # fmt: skip
    g.add_argument("--y", metavar="Y", action="append",
                   help="targets, exact decimals, shaped like --x: 0 or 1 (soft values with --soft); with "
                        "--softmax one class index (or C probabilities) per sample")  # fmt: skip
    g.add_argument("--alpha", metavar="A",
                   help="alpha in [0, 1] (float64), 'none', or one per class with --softmax: 0.2,0.8,0.8 "
                        "(default 0.25)")  # fmt: skip
    g.add_argument("--gamma", metavar="G", help="gamma >= 0 (float64; default 2)")
    g.add_argument("--kind", choices=("logits", "prob", "probs"), help="what --x is (default logits)")
    g.add_argument("--variant", choices=SOFT_TARGETS,
                   help="soft-target convention (default canonical; two_term also on probabilities)")  # fmt: skip
    g.add_argument("--softmax", action="store_true", default=None, help="each --x is one sample's class logits")
    g.add_argument("--soft", action="store_true", default=None, help="allow soft targets in [0, 1]")
    g.add_argument("--renormalize", action="store_true", default=None,
                   help="softmax on probabilities: divide each row by its sum first (Keras)")  # fmt: skip
    g.add_argument("--clip-eps", dest="clip_eps", metavar="E", help="declared clip convention eps (float64)")
    g.add_argument(
        "--clip-scope",
        dest="clip_scope",
        choices=CLIP_SCOPES,
        help="where that clip acts: all (default) or ce, inside the cross-entropy only (Keras binary)",
    )
    g.add_argument("--label-smoothing", dest="label_smoothing", metavar="L",
                   help="label smoothing in [0, 1] (float64)")  # fmt: skip
    g.add_argument("--reduction", choices=(*REDUCTIONS, *LIBRARY_REDUCTIONS), metavar="R",
                   help="none (default), sum, mean, normalized -- over all elements -- or a library's own: "
                        + "; ".join(f"{k}: {v[1]}" for k, v in LIBRARY_REDUCTIONS.items()))  # fmt: skip
    g.add_argument("--sample-weight", dest="sample_weight", metavar="W",
                   help="with a keras-* reduction: one weight per sample (exact decimals)")  # fmt: skip
    g.add_argument("--class-weight", dest="class_weight", metavar="W",
                   help="with a keras-* reduction: one weight per class, applied by each sample's label "
                        "(Keras' fit(class_weight=...))")  # fmt: skip
    g.add_argument("--input-dtype", dest="input_dtype", choices=tuple(FORMATS),
                   help="round the inputs, soft targets and weights to this dtype before evaluating")  # fmt: skip
    g.add_argument("--round-params", dest="round_params", action="store_true", default=None,
                   help="with --input-dtype: round alpha, gamma, clip eps and label smoothing to it too")  # fmt: skip
    o = p.add_argument_group("output")
    o.add_argument("--digits", type=int, default=None, metavar="N", help="significant digits (default 34)")
    o.add_argument("--dtype", choices=tuple(FORMATS), help="also print the correctly rounded value in this dtype")
    o.add_argument("--grad", action="store_true", help="also print the gradient")
    o.add_argument("--json", action="store_true", help="machine-readable output")
    o.add_argument("--printed", metavar="P",
                   help="check numbers a library or page printed (comma-separated, in the order of the values, "
                        "else the losses): each must be the certified value -- or with --dtype the correctly "
                        "rounded dtype value -- rounded at its own last digit; exit 1 when one is not")  # fmt: skip


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


def _split(option: str, text: str, allow_nonfinite: bool = False) -> list[str]:
    parts = text.split(",")
    if any(not s.strip() for s in parts):
        raise SpecError(f"malformed list for {option}: {text!r}")
    return [_number(option, s, allow_nonfinite) for s in parts]


def _rows(option: str, given: list[str], allow_nonfinite: bool = False) -> list[list[str]]:
    """Every --x (or --y) and every ';'-separated row in it, each a list of exact decimals."""
    return [_split(option, r, allow_nonfinite) for w in given for r in w.split(";")]


def _hard(option: str, s: str) -> int:
    d = Decimal(s)
    if d not in (0, 1):
        raise SpecError(f"{option} must be 0 or 1 (give --soft for a soft target), got {s!r}")
    return int(d)


def _param(option: str, text: str | None) -> str | None:
    if text is None or text.strip().lower() == "none":
        return text
    for part in text.split(","):
        _number(option, part)
    return text


def _softmax_targets(args: argparse.Namespace, xs: list[list[str]]) -> Any:
    """One class index or one distribution per sample."""
    ys = _rows("--y", args.y)
    n, c = len(xs), len(xs[0])
    if len(ys) == 1 and n > 1 and len(ys[0]) == n and not args.soft:  # --y 0,2: one index per sample
        ys = [[v] for v in ys[0]]
    if len(ys) != n:
        raise SpecError(f"--y gives {len(ys)} target(s) for {n} softmax sample(s)")
    out: list[Any] = []
    for row in ys:
        if len(row) == 1 and not args.soft:
            try:
                k = int(row[0])
            except ValueError:
                raise SpecError(f"--y must be a class index with --softmax, got {row[0]!r}") from None
            if not 0 <= k < c:
                raise SpecError(f"class index --y {k} is out of range for {c} classes")
            out.append(k)
        elif len(row) != c:
            raise SpecError(f"--y has {len(row)} entries but --x has {c} classes")
        else:
            out.append(row)
    kinds = {isinstance(t, int) for t in out}
    if len(kinds) > 1:
        raise SpecError("--y mixes class indices and distributions")
    return out


def adhoc(args: argparse.Namespace) -> Request:
    """The resolved request of the --x form (validated, one-line SpecError otherwise)."""
    if args.y is None:
        raise SpecError("--x needs a target: --y")
    xs = _rows("--x", args.x, allow_nonfinite=True)
    if args.softmax:
        if len({len(r) for r in xs}) != 1:
            raise SpecError("every softmax sample (--x) needs the same number of classes")
        x: Any = xs
        y: Any = _softmax_targets(args, xs)
    else:
        ys = _rows("--y", args.y)
        if not args.soft:
            ys = [[str(_hard("--y", s)) for s in r] for r in ys]
        if len(xs) == 1 and len(ys) == 1:
            if len(ys[0]) != len(xs[0]):
                raise SpecError(f"--y has {len(ys[0])} values but --x has {len(xs[0])}")
            x, y = xs[0], ys[0]
            if len(x) == 1 and (args.reduction or "none") == "none":
                x, y = x[0], y[0]
        else:
            if len({len(r) for r in xs}) != 1:
                raise SpecError("every row of --x needs the same number of values")
            if [len(r) for r in ys] != [len(r) for r in xs]:
                raise SpecError(f"--y has rows of {[len(r) for r in ys]} values but --x has {[len(r) for r in xs]}")
            x, y = xs, ys
    given = {k: v for k, v in {
        "kind": args.kind, "alpha": _param("--alpha", args.alpha), "gamma": _param("--gamma", args.gamma),
        "variant": args.variant, "clip_eps": _param("--clip-eps", args.clip_eps), "clip_scope": args.clip_scope,
        "label_smoothing": _param("--label-smoothing", args.label_smoothing), "reduction": args.reduction,
        "sample_weight": _param("--sample-weight", args.sample_weight),
        "class_weight": _param("--class-weight", args.class_weight), "input_dtype": args.input_dtype,
    }.items() if v is not None}  # fmt: skip
    return request(x, y, softmax=bool(args.softmax), renormalize=bool(args.renormalize),
                   round_params=bool(args.round_params), **given)  # fmt: skip


# ----------------------------------------------------------------------------- computing


def compute_request(req: Request, digits: int) -> dict:
    """Certified (and proven) result of an ad-hoc request as plain data."""
    g = answer(req, digits)
    return {
        "losses": g.losses,
        "value": g.value if (req.variant.reduction != "none" or req.reduction) else None,
        "grad": g.grad,
        "rounded": {t: {k: _repr_nested(v) for k, v in r.items()} for t, r in g.rounded_all.items()},
        "digits": g.digits,
        "status": g.status,
        "why": g.why,
        "command": g.command(),
    }


def _repr_nested(v: Any) -> Any:
    return None if v is None else [_repr_nested(u) for u in v] if isinstance(v, list) else repr(v)


def compute_case(case_id: str, digits: int) -> dict:
    """A catalogue case at other digits than the stored ones: certified and proven afresh."""
    from focalspec.certified.generate import golden_entry_data

    case = get_case(case_id)
    d = golden_entry_data(case, digits)
    return _result_of(d, case.extra.get("quantity"))


def _result_of(d: dict, quantity_spec: dict | None) -> dict:
    out = {k: d[k] for k in ("losses", "value", "grad", "rounded", "digits")}
    proof = d.get("proof") or {"status": "agreed", "why": "no proof record"}
    out.update(status=proof["status"], why=proof.get("why", ""))
    if d.get("quantity") is not None:
        out["quantity"] = dict(d["quantity"], definition=(quantity_spec or {}).get("definition", ""))
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
    d = {"losses": e.losses, "value": e.value, "grad": e.grad, "rounded": e.rounded, "digits": e.digits,
         "proof": e.proof, "quantity": e.quantity}  # fmt: skip
    return _result_of(d, e.case.extra.get("quantity"))


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
        rows.extend(_lines("value", res["value"]))
        if args.dtype:
            rnd = _lines(f"value {args.dtype}", res["rounded"][args.dtype]["value"])
            rows.extend((k, _dtype_text(v, args.dtype)) for k, v in rnd)
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
    status = res.get("status", "agreed")
    if status == "proven":
        rows.append(("status", "proven: interval arithmetic settles every digit shown and every dtype value"))
    else:
        rows.append(("status", f"agreed (two precisions), not proven: {res.get('why') or 'no proof'}"))
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
    out["status"] = res.get("status", "agreed")
    if out["status"] != "proven":
        out["why"] = res.get("why", "")
    if res.get("command"):
        out["command"] = res["command"]
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


def _verdicts(rows: Sequence[Any], as_json: bool, lines: Callable[[Any], str], verdicts: Sequence[str]) -> int:
    """Print judged rows (errata of either kind): JSON, or each row's lines and a count per verdict."""
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
        return 0
    for r in rows:
        print(lines(r))
    print(", ".join(f"{sum(r.verdict == k for r in rows)} {k}" for k in verdicts))
    return 0


def _errata(args: argparse.Namespace) -> int:
    from focalspec.spec.golden import VERDICTS, errata

    def lines(e: Any) -> str:
        head = f"{e.case_id}  printed {e.printed}  certified {e.certified_at_printed}  [{e.verdict}]"
        return f"{head}\n    {e.explanation}"

    return _verdicts(errata(), args.json, lines, VERDICTS)


def _peer_errata(args: argparse.Namespace) -> int:
    from focalspec.certified.peer_errata import VERDICTS, peer_errata

    def lines(v: Any) -> str:
        return (f"{v.example}  printed {v.printed}  [{v.verdict}]  ({v.library}: {v.call})\n"
                f"    {v.explanation}; certified {v.certified} ({v.status})\n    $ {v.command}")  # fmt: skip

    return _verdicts(peer_errata(), args.json, lines, VERDICTS)


def run(args: argparse.Namespace) -> int:
    if args.tag and not args.list:
        raise SpecError("--tag goes with --list")
    given_x_opts = [o for o in X_OPTIONS if getattr(args, o) is not None]
    if args.list or args.errata or args.peer_errata:
        if args.list + args.errata + args.peer_errata > 1:
            raise SpecError("give one of --list, --errata, --peer-errata")
        if args.case_id or args.x is not None or given_x_opts:
            raise SpecError("--list, --errata and --peer-errata take no CASE_ID or --x options")
        return _list(args) if args.list else _errata(args) if args.errata else _peer_errata(args)
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
            res = compute_case(case.id, digits)
        meta = {"id": case.id, "variant": case.variant.to_dict(), "note": case.note}
        header = f"{case.id}  ({case.variant.label()})  {case.note}"
    elif args.x is not None:
        req = adhoc(args)
        res = compute_request(req, digits)
        meta = {"variant": req.variant.to_dict(), "inputs": req.inputs, "targets": req.targets}
        if req.reduction is not None:
            meta["library_reduction"] = req.reduction.to_dict()
        label = req.variant.label() + (f"_{req.reduction.name}" if req.reduction else "")
        header = f"{label}  x={';'.join(args.x)}  y={';'.join(args.y)}"
        if args.input_dtype:
            header += f"\ninputs as {args.input_dtype}: {json.dumps(req.inputs)}"
    else:
        raise SpecError("give a CASE_ID, --x (with --y), --list or --errata")
    verdicts = check_printed_numbers(args.printed, res, args.dtype) if args.printed is not None else None
    if args.json:
        if verdicts is not None:
            meta = dict(meta, printed=verdicts)
        print(_to_json(res, args, meta))
    else:
        sys.stdout.write(render_text(res, args, header))
        for v in verdicts or []:
            print(f"printed {v['printed']:<12} [{v['verdict']}] {v['how']}")
    return 1 if verdicts and any(v["verdict"] != "correct" for v in verdicts) else 0


def check_printed_numbers(text: str, res: dict, dtype: str | None) -> list[dict[str, str]]:
    """Each printed number against the certified value (or its dtype rounding) it stands for:
    the errata's verdicts (correct / rounding/truncation / wrong) with the explanation."""
    from focalspec.certified.prove import flatten
    from focalspec.spec.golden import _judge, parse_printed

    field = "value" if res["value"] is not None else "losses"
    targets = flatten(res["rounded"][dtype][field]) if dtype else flatten(res[field])
    printed = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
    if len(printed) != len(targets):
        raise SpecError(f"--printed has {len(printed)} number(s) for {len(targets)} certified {field}")
    out = []
    for p, c in zip(printed, targets, strict=True):
        exact = Decimal(float(c)) if dtype else Decimal(c)  # a dtype value's exact decimal
        verdict, _, how = _judge(*parse_printed(p), exact)
        what = f"{dtype} value {float(c)!r}" if dtype else f"certified {c}"
        out.append({"printed": p, "verdict": verdict, "how": f"{how}; {what}"})
    return out
