"""Generation and proof of the certified golden file, above the reference that computes it.

``python -m focalspec.certified.generate --write`` regenerates ``spec/golden/golden.json`` from
the catalogue and the mpmath reference; ``--check`` regenerates it in memory, proves every entry
again (``focalspec.certified.prove``: the reference over intervals) and fails (exit 1, one line)
unless the result is byte-identical to the packaged file, so the file can never drift from
the code that claims to have produced it.  Each case carries a proof record: ``proven`` when
interval enclosures settle every stored digit and dtype entry, else ``agreed`` with the reason.
The file is strict JSON with sorted keys, one case per object and each array of numbers on
one line, so that a change to one case is a small diff.  Reading it back is
``focalspec.spec.golden``'s job.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import mpmath

from focalspec.certified.certify import GUARD, _evaluator, certify, certify_ratio, ratio_evaluator, variant_of
from focalspec.certified.prove import Disproved, Proof, flatten, prove_fn
from focalspec.spec.case import Case
from focalspec.spec.catalogue import all_cases
from focalspec.spec.golden import GENERATOR, GOLDEN_PATH
from focalspec.spec.variant import Variant

DIGITS = 34
FORMAT_VERSION = 2  # 2: a proof record per case


# ----------------------------------------------------------------------------- generation


def catalogue_checksum(cases: Iterable[Case]) -> str:
    """sha256 of the canonical (sorted-key, compact) JSON of every case definition, in order."""
    blob = json.dumps([c.to_dict() for c in cases], sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def golden_entry_data(c: Case, digits: int = DIGITS, prove: bool = True) -> dict[str, Any]:
    """One case of the golden file: its definition, the certified results and their proof
    (``prove=False``: the proof record is left out, for callers that keep the stored one)."""
    cert = certify(c.variant, c.inputs, c.targets, digits)
    d = c.to_dict()
    d.update({k: getattr(cert, k) for k in ("losses", "value", "grad", "grad_scale", "rounded", "digits")})
    q = c.extra.get("quantity")
    if q:
        d["quantity"] = certify_ratio(
            variant_of(q["numerator"], c.variant), variant_of(q["denominator"], c.variant), c.inputs, c.targets, digits
        )
    if prove:
        d["proof"] = proof_record(prove_entry_data(d))
    return d


def build(
    cases: Sequence[Case] | None = None, digits: int = DIGITS, proofs: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The whole golden document (cases default to the full catalogue); ``proofs`` (case id ->
    proof record) are taken as given instead of proving each case afresh."""
    cases = list(all_cases() if cases is None else cases)

    def entry(c: Case) -> dict[str, Any]:
        if proofs is None or c.id not in proofs:
            return golden_entry_data(c, digits)
        return dict(golden_entry_data(c, digits, prove=False), proof=proofs[c.id])

    return {
        "provenance": {
            "generator": GENERATOR,
            "format_version": FORMAT_VERSION,
            "mpmath": mpmath.__version__,
            "digits": digits,
            "precisions_dps": [digits + GUARD, 2 * (digits + GUARD)],
            "precision_rule": (
                "each number evaluated by focalspec.reference.exact at both precisions (doubled while they disagree); "
                "shown digits are those both agree on (>= 30 required); dtype values rounded once from the higher"
            ),
            "catalogue_sha256": catalogue_checksum(cases),
            "n_cases": len(cases),
            "proof_rule": (
                "proof.status 'proven': focalspec.reference.exact re-run over mpmath intervals (inputs' decimals "
                "enclosed, endpoints rounded outward) and every stored string, gradient scale and dtype entry is "
                "what every point of its enclosure rounds to; 'agreed': the two precisions agree, proof.why says "
                "what the intervals could not settle"
            ),
        },
        "cases": [entry(c) for c in cases],
    }


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def dumps(obj: Any, level: int = 0) -> str:
    """Diffable JSON: sorted keys, one key per line, arrays of numbers on one line."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {dumps(obj[k], level + 1)}" for k in sorted(obj)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(_is_scalar(v) for v in obj):
            return json.dumps(obj, allow_nan=False)
        items = [f"{inner}{dumps(v, level + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def render(doc: dict[str, Any]) -> str:
    return dumps(doc) + "\n"


# ----------------------------------------------------------------------------- proof


def prove_entry_data(d: dict[str, Any]) -> Proof:
    """Prove every stored number of one golden case (values, gradients, their scales, the
    dtype entries and a ratio case's quantity) by interval evaluation of the reference."""
    variant = Variant.from_dict(d["variant"])
    fn, _ = _evaluator(variant, d["inputs"], d["targets"])
    stored = {k: flatten(d[k]) for k in ("losses", "value", "grad", "grad_scale")}
    rounded = {t: {k: flatten(r[k]) for k in ("losses", "value", "grad")} for t, r in d["rounded"].items()}
    dps = d["digits"] + GUARD
    proof = prove_fn(fn, stored, rounded, dps)
    q, spec = d.get("quantity"), d["extra"].get("quantity")
    if proof.proven and q is not None and spec:
        qfn = ratio_evaluator(
            variant_of(spec["numerator"], variant), variant_of(spec["denominator"], variant), d["inputs"], d["targets"]
        )
        qproof = prove_fn(
            qfn,
            {k: flatten(q[k]) for k in ("value", "numerator", "denominator")},
            {t: {"value": flatten(v)} for t, v in q["rounded"].items()},
            dps,
        )
        if not qproof.proven:
            return Proof(False, qproof.dps, f"quantity: {qproof.why}")
        proof.counts.update({f"quantity:{k}": n for k, n in qproof.counts.items()})
        proof.dps = max(proof.dps, qproof.dps)
    return proof


def proof_record(p: Proof) -> dict[str, Any]:
    """What the golden file keeps of a proof: its status, the precision, and why not."""
    out: dict[str, Any] = {"status": p.status, "dps": p.dps}
    if not p.proven:
        out["why"] = p.why
    return out



# ----------------------------------------------------------------------------- command line


def _stored_proofs(path: Path) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {d["id"]: d["proof"] for d in doc.get("cases", []) if "proof" in d}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m focalspec.certified.generate", description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help=f"regenerate {GOLDEN_PATH.name}, proving every entry")
    g.add_argument(
        "--check", action="store_true", help="prove every entry again; fail unless regeneration is byte-identical"
    )
    ap.add_argument("--path", type=Path, default=GOLDEN_PATH, help="golden file (default: the packaged one)")
    ap.add_argument(
        "--keep-proofs",
        action="store_true",
        help="with --check: regenerate the values but take the file's proof records as they are (fast; CI)",
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        doc = build(proofs=_stored_proofs(args.path) if args.keep_proofs and args.check else None)
    except Disproved as exc:
        print(f"golden check failed: an interval enclosure excludes a certified value: {exc}", file=sys.stderr)
        return 1
    text = render(doc)
    took = time.perf_counter() - t0
    statuses = [d.get("proof", {}).get("status", "agreed") for d in doc["cases"]]
    summary = f"{statuses.count('proven')} proven, {statuses.count('agreed')} agreed"
    for d in doc["cases"]:
        if d.get("proof", {}).get("status") != "proven":
            print(f"agreed, not proven: {d['id']}: {d.get('proof', {}).get('why', 'no proof record')}")
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(text, encoding="utf-8")
        print(f"wrote {args.path} ({len(text)} bytes, {len(doc['cases'])} cases: {summary}) in {took:.1f} s")
        return 0
    old = args.path.read_text(encoding="utf-8") if args.path.exists() else None
    if old != text:
        what = "missing" if old is None else "differs from a fresh regeneration"
        print(f"golden check failed: {args.path} {what}; run '{GENERATOR}'", file=sys.stderr)
        return 1
    how = "proof records kept" if args.keep_proofs else "every entry proven afresh"
    print(f"golden file is up to date ({len(doc['cases'])} cases: {summary}; {how}; {took:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
