"""``focalspec findings``: one finding per (implementation, cause) derived from results JSON.

Each failing check of the results has a cause (SPEC §10.7: written by the suite, or classified
here from the entry for older files) and a severity (§10.8: from its cause, tier and the
measured impact of §10.9); findings are ordered by severity, then by count, the worst first.
A finding gathers the checks of one implementation with one cause and shows the smallest input
among them (|x| nearest 0: where the defect starts), its observed and expected values, the first
dtype it breaks (float64, float32, bfloat16, float16 order) and the reproducer of that check -- or,
where the run bisected that cause (the results' ``minimal``, conformance/suite/shrink.py), the bisected
element with its ``--point`` reproducer. Bad input -- a file of another schema or version, a folder
without results, a file that is not JSON -- is one line naming the file, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from focalspec.conformance.diagnosis.causes import audit_line
from focalspec.spec.variant import SpecError

SCHEMA = "focalspec-findings"
SCHEMA_VERSION = 1
DTYPE_ORDER = ("float64", "float32", "bfloat16", "float16")
FAILING = ("failed", "error", "xfailed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", nargs="+", default=None, metavar="DIR_OR_FILE",
                        help="results JSON files, or folders searched for *.json")
    parser.add_argument("--annotate", default=None, metavar="FINDINGS_JSON",
                        help="instead of --results: give the findings of an existing findings file their severity "
                             "and impact again (after new impact numbers) and reorder them")  # fmt: skip
    parser.add_argument("--out", default=None, metavar="FILE", help="write the findings JSON here (default: stdout)")
    parser.add_argument("--impact", default=None, metavar="FILE",
                        help="impact results (focalspec impact --out; default: the committed reports/impact.json)")


def read_results(paths: list[str]) -> list[tuple[Path, dict[str, Any]]]:
    """Every results document named or found; SpecError naming the file for anything else."""
    from focalspec.conformance.suite.results import SCHEMA as RSCHEMA
    from focalspec.conformance.suite.results import SCHEMA_VERSION as RVERSION

    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.json") if q.is_file())
            if not found:
                raise SpecError(f"{p}: no results JSON (*.json) in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise SpecError(f"{p}: no such file or folder")
    out = []
    for f in files:
        doc = _read_json(f)
        if not isinstance(doc, dict) or doc.get("schema") != RSCHEMA:
            got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise SpecError(f"{f}: not a focalspec results file (schema {got!r}, expected {RSCHEMA!r})")
        if doc.get("schema_version") != RVERSION:
            raise SpecError(f"{f}: results schema version {doc.get('schema_version')!r}, this focalspec reads "
                            f"version {RVERSION}")  # fmt: skip
        if not isinstance(doc.get("tests"), list):
            raise SpecError(f"{f}: results file without a list of tests")
        out.append((f, doc))
    return out


def _size(ex: Any) -> float:
    from focalspec.conformance.diagnosis.causes import example_size

    return example_size(ex)


def derive(docs: list[tuple[Path, dict[str, Any]]], impacts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One finding per (adapter, cause), with its severity (SPEC §10.8) from each failing check's
    cause, tier and dtype and the measured impact (``impacts``: conformance.impact.load()),
    ordered by severity, then by number of checks: the worst defect first."""
    from focalspec.conformance.diagnosis.causes import CAUSES, classify_entry
    from focalspec.conformance.suite import shrink

    adapters: dict[str, dict[str, Any]] = {}
    records = [m for _, doc in docs for m in doc.get("minimal") or []]
    bisected, by_dtype = shrink.best(records), shrink.best_by_dtype(records)
    groups: dict[tuple[str, str], list[tuple[dict[str, Any], Any, str]]] = {}
    for path, doc in docs:
        for a in doc.get("adapters") or []:
            if isinstance(a, dict) and a.get("name"):
                adapters.setdefault(str(a["name"]), a)
        for t in doc["tests"]:
            if not isinstance(t, dict) or t.get("outcome") not in FAILING:
                continue
            v = classify_entry(t)
            groups.setdefault((str(t.get("adapter")), v.cause), []).append((t, v, str(path)))
    findings = []
    for (adapter, cause), items in groups.items():
        t, v, path = min(items, key=lambda i: (_size(i[1].example), DTYPE_ORDER.index(i[0].get("dtype"))
                                               if i[0].get("dtype") in DTYPE_ORDER else 9))  # fmt: skip
        dtypes = sorted({str(i[0].get("dtype")) for i in items},
                        key=lambda d: DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 9)  # fmt: skip
        a = adapters.get(adapter, {})
        ex = v.example or {}
        c = CAUSES[cause]
        findings.append({
            "id": f"{adapter}:{cause}",
            "adapter": adapter,
            "implementation": a.get("implementation"),
            "framework": a.get("framework"),
            "framework_version": a.get("framework_version"),
            "cause": cause,
            "title": c.title,
            "fix": c.fix,
            "spec_section": c.spec,
            "checks": len(items),
            "dtypes": dtypes,
            "first_dtype": dtypes[0],
            "tiers": sorted({str(i[0].get("failure_tier") or i[0].get("tier")) for i in items}),
            "check_groups": _check_groups(items),
            "smallest": {
                "case_id": t.get("case_id"), "check": t.get("check"), "dtype": t.get("dtype"),
                "variant": t.get("variant"), "input": ex.get("input"), "target": ex.get("target"),
                "expected": ex.get("expected"), "observed": ex.get("got"), "err_u": ex.get("err_u"),
                "detail": v.detail, "reproducer": t.get("reproducer"), "results": path, "bisected": False,
            },
        })  # fmt: skip
        m = bisected.get((adapter, cause))
        if m is not None and m.get("got") is not None:  # the bisected element replaces the run's
            findings[-1]["smallest"] = {
                "case_id": "point", "check": m.get("check"), "dtype": m.get("dtype"), "variant": m.get("variant"),
                "input": m.get("input"), "target": m.get("target"), "expected": m.get("expected"),
                "observed": m.get("got"), "err_u": m.get("err_u"), "detail": m.get("detail"),
                "reproducer": m.get("reproducer"), "results": path, "bisected": True, "passes_at": m.get("passes_at"),
                "probes": m.get("probes"), "started_from": m.get("started_from"), "mode": m.get("mode"),
                "run_case": t.get("case_id"), "run_reproducer": t.get("reproducer"),
            }  # fmt: skip
    for f in findings:  # where the cause starts in each dtype it was bisected in
        f["bisected_by_dtype"] = {
            m["dtype"]: {"input": m.get("input"), "target": m.get("target"), "passes_at": m.get("passes_at"),
                         "check": m.get("check"), "expected": m.get("expected"), "observed": m.get("got"),
                         "reproducer": m.get("reproducer")}
            for m in shrink.boundaries(by_dtype, f["adapter"], f["cause"])
        }  # fmt: skip
    return annotate(findings, impacts)


def _check_groups(items: list[tuple[dict[str, Any], Any, str]]) -> list[dict[str, Any]]:
    """The failing checks by (dtype, required tier or not, NaN/inf at a finite input or not): what a
    check's severity depends on besides its cause (SPEC §10.8, as the gate and the report grade it),
    kept so that new impact numbers re-grade them (``--annotate``)."""
    from focalspec.conformance.diagnosis import severity

    groups: dict[tuple[str, bool, bool], int] = {}
    for t, v, _ in items:
        req = t.get("tier_required")
        tier = str(t.get("failure_tier") or t.get("tier"))
        nonfinite = severity.nonfinite_example(t.get("cause_example") or getattr(v, "example", None))
        key = (str(t.get("dtype")), bool(req) if req is not None else severity.required_tiers([tier]), nonfinite)
        groups[key] = groups.get(key, 0) + 1
    return [{"dtype": d, "required": r, "nonfinite": nf, "checks": n} for (d, r, nf), n in sorted(groups.items())]


def annotate(findings: list[dict[str, Any]], impacts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each finding's ``checks_by_severity`` (each group of its checks graded from its cause, dtype
    and tier: ``check_groups``; a findings file written before them is graded from the finding's
    failure tiers and dtypes as one group), its ``severity`` (the worst of them), its ``impact``
    numbers per dtype (SPEC §10.9; ``impact_line`` in words), and the order: by severity, then by
    number of checks."""
    from focalspec.conformance.diagnosis import impact, severity

    impacts = impact.load() if impacts is None else impacts
    for f in findings:
        entry = impacts.get(f["adapter"])
        groups = f.get("check_groups") or [  # a findings file from before check_groups: its tiers and dtypes
            {"dtype": f.get("dtypes") or [], "required": severity.required_tiers(f.get("tiers") or []),
             "checks": f["checks"]}]  # fmt: skip
        by: dict[str, int] = {}
        for g in groups:
            dtypes = g["dtype"] if isinstance(g["dtype"], list) else [g["dtype"]]
            exceeds = impact.exceeds_floor(entry, dtypes)
            level = severity.severity(f["cause"], required=g["required"], impact_exceeds_floor=exceeds,
                                      nonfinite=bool(g.get("nonfinite")))  # NaN/inf at a finite input: critical
            by[level] = by.get(level, 0) + g["checks"]
        f["checks_by_severity"] = dict(sorted(by.items(), key=lambda kv: severity.rank(kv[0])))
        f["severity"] = severity.worst(list(by))
        f["impact"] = {d: entry["dtypes"][d]["summary"] for d in f.get("dtypes") or []
                       if entry and d in (entry.get("dtypes") or {})}  # fmt: skip
        f["impact_line"] = impact.impact_line(entry, f["cause"], f.get("dtypes") or [])
    findings.sort(key=lambda f: (*severity.summary_key(f["severity"], f["checks"], f["adapter"]), f["cause"]))
    return findings


def severity_table(findings: list[dict[str, Any]]) -> list[str]:
    """The per-implementation severity table: failing checks per level, worst implementation first."""
    from focalspec.conformance.diagnosis import severity

    rows = severity.table((f["adapter"], level, n) for f in findings for level, n in f["checks_by_severity"].items())
    order = sorted(rows, key=lambda a: (*(-rows[a][lv] for lv in severity.SEVERITIES), a))
    width = max([len(a) for a in order] + [14])
    out = [f"{'implementation':<{width}}  " + "  ".join(f"{lv:>8}" for lv in severity.SEVERITIES)]
    out += [f"{a:<{width}}  " + "  ".join(f"{rows[a][lv]:>8}" for lv in severity.SEVERITIES) for a in order]
    return out


def _read_json(path: Path) -> Any:
    """The JSON in ``path``; SpecError naming the file where it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _read_findings(path: Path) -> dict[str, Any]:
    """A findings document (this command's output); SpecError naming the file for anything else."""
    doc = _read_json(path)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("findings"), list):
        raise SpecError(f"{path}: not a focalspec findings file (schema {SCHEMA!r})")
    return doc


def _source(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Where a results file came from: enough to tell a reviewer which run the findings describe."""
    suite, run = doc.get("suite") or {}, doc.get("run") or {}
    frameworks = sorted({f"{a.get('framework')} {a.get('framework_version')}" for a in doc.get("adapters") or []
                         if isinstance(a, dict) and a.get("framework_version")})  # fmt: skip
    return {"file": path.name, "git_revision": suite.get("git_revision"), "depth": suite.get("depth"),
            "finished": run.get("finished"), "frameworks": frameworks}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from focalspec.conformance.diagnosis import impact

    if bool(args.results) == bool(args.annotate):
        raise SpecError("give --results (results JSON to derive findings from) or --annotate FINDINGS_JSON")
    impacts = impact.load(args.impact) if args.impact else impact.load()
    if args.impact and not impacts:
        raise SpecError(f"{args.impact}: not a focalspec impact file (focalspec impact --out)")
    if args.annotate:
        doc = _read_findings(Path(args.annotate))
        findings = annotate(doc["findings"], impacts)
        sources = len(doc.get("results") or [])
    else:
        docs = read_results(list(args.results))
        findings = derive(docs, impacts)
        doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "results": [str(p) for p, _ in docs],
               "sources": [_source(p, d) for p, d in docs], "findings": findings}  # fmt: skip
        sources = len(docs)
    text = json.dumps(doc, indent=1, allow_nan=False, default=str) + "\n"
    n = sum(f["checks"] for f in findings)
    summary = f"{len(findings)} findings from {n} failing checks in {sources} results file(s)"
    if args.out:
        try:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
        print(f"{summary}: wrote {args.out}")
        print("failing checks per severity (SPEC §10.8):")
        print("\n".join(severity_table(findings)))
        print(audit_line())
    else:
        sys.stdout.write(text)
        print(summary, file=sys.stderr)
        print(audit_line(), file=sys.stderr)
    return 0
