"""``focalspec report``: one self-contained HTML agreement report from conformance results.

Reads the results files of every tox environment (and benchmark files when given), merges
them, and writes ``index.html`` (no external file, script or font: it opens from a mail
attachment or a CI artifact store as it is), ``merged.json`` (the same numbers for
machines) and ``junit.xml`` (the suite's own JUnit passed through, or synthesised).
Sections whose data is missing say so instead of disappearing, so a reader can tell
"no findings" from "findings not loaded".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from focalspec.conformance.suite.junit import write_junit
from focalspec.reports import digits, findings_view, harm, model, palette, plots
from focalspec.reports.merge import (
    MERGED_SCHEMA,
    Inputs,
    collect,
    finite_or_none,
    merge_bench,
    merge_results,
    to_float,
)
from focalspec.spec.variant import SpecError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_FINDINGS = PACKAGE_DIR / "findings_verified.json"
TEMPLATE = "index.html.j2"
# what the page lists per implementation (merged.json and junit.xml keep every test): the worst
# failures of each cause and the passes with the largest errors; a 30-adapter main job lists
# ~5,500 failures and ~14,500 passes, which made a 25 MB page nobody reads to the end
MAX_FAILURES_PER_CAUSE = 2  # per matrix cell and cause
MAX_PASSED_ROWS = 25
VERDICTS_OK = frozenset({"ok", "agrees", "agree", "match", "matches", "correct", "consistent", "confirmed", "exact"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", nargs="+", default=[], metavar="DIR_OR_FILE",
                        help="conformance results JSON files, or directories searched for *.json and JUnit *.xml")
    parser.add_argument("--bench", nargs="+", default=[], metavar="FILE", help="performance harness JSON files")
    parser.add_argument("--out", default="reports/out", help="output directory (default: reports/out)")
    parser.add_argument("--title", default="focalspec agreement report", help="page title")
    parser.add_argument("--findings", default=None, metavar="FILE",
                        help="third-party findings JSON (default: focalspec.reports' findings_verified.json)")
    parser.add_argument("--max-passed-rows", type=int, default=MAX_PASSED_ROWS, metavar="N",
                        help=f"passed tests listed per implementation, largest error first (default {MAX_PASSED_ROWS}; "
                             "merged.json keeps all)")
    parser.add_argument("--max-failures-per-cause", type=int, default=MAX_FAILURES_PER_CAUSE, metavar="N",
                        help="failures listed per matrix cell and cause, most harmful first (default "
                             f"{MAX_FAILURES_PER_CAUSE}; 0: all; merged.json and junit.xml keep all)")


def run(args: argparse.Namespace) -> int:
    if not args.results and not args.bench:
        raise SpecError("nothing to report: give --results and/or --bench")
    if args.max_passed_rows < 0:
        raise SpecError(f"--max-passed-rows must be >= 0, got {args.max_passed_rows}")
    if args.max_failures_per_cause < 0:
        raise SpecError(f"--max-failures-per-cause must be >= 0, got {args.max_failures_per_cause}")
    started = time.perf_counter()
    inputs = collect(args.results, args.bench)
    findings = Path(args.findings) if args.findings else DEFAULT_FINDINGS
    built = build(inputs, Path(args.out), args.title, findings, args.max_passed_rows, args.max_failures_per_cause)
    seconds = time.perf_counter() - started
    if inputs.passed_over:
        names = ", ".join(str(p) for p in inputs.passed_over[:5]) + (" ..." if len(inputs.passed_over) > 5 else "")
        print(f"passed over {len(inputs.passed_over)} file(s) without a focalspec schema: {names}")
    print(
        f"wrote {built.html} ({built.html.stat().st_size / 1e6:.2f} MB; {built.n_tests} tests, "
        f"{built.n_adapters} adapters, {built.n_bench} bench rows; junit {built.junit_how}) in {seconds:.2f} s"
    )
    return 0


@dataclass
class Built:
    html: Path
    merged: Path
    junit: Path
    junit_how: str
    n_tests: int
    n_adapters: int
    n_bench: int


def build(
    inputs: Inputs,
    out: Path,
    title: str,
    findings_path: Path | None,
    max_passed_rows: int = MAX_PASSED_ROWS,
    max_failures_per_cause: int = 0,
) -> Built:
    """Merge, compute and write the three outputs into ``out`` (``max_failures_per_cause`` 0: all)."""
    results = merge_results(inputs.results) if inputs.results else None
    bench = merge_bench(inputs.bench)
    findings, findings_note = load_findings(findings_path)
    context = page_context(results, bench, findings, findings_note, title, max_passed_rows, max_failures_per_cause)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"cannot create output directory {out}: {exc.strerror or exc}") from None
    html = out / "index.html"
    html.write_text(scrub_paths(render(context)), encoding="utf-8")
    merged = out / "merged.json"
    merged_doc = {
        "schema": MERGED_SCHEMA,
        "schema_version": 1,
        "title": title,
        "generated": context["generated"],
        "results": results,
        "bench": bench,
        "matrix": context["matrix"].to_dict() if context["matrix"] else None,
        "findings": findings,
    }
    merged.write_text(json.dumps(strict_json(merged_doc), indent=1, allow_nan=False), encoding="utf-8")
    junit = out / "junit.xml"
    how = write_junit(inputs.junit, results, junit)
    return Built(
        html, merged, junit, how,
        n_tests=len((results or {}).get("tests") or []),
        n_adapters=len((results or {}).get("adapters") or []),
        n_bench=len((bench or {}).get("results") or []),
    )  # fmt: skip


def strict_json(o: Any) -> Any:
    """A copy that strict JSON can hold: non-finite floats become "inf", "-inf", "nan"
    (the results files may carry Python's Infinity; other tools reject it)."""
    if isinstance(o, float) and not math.isfinite(o):
        return "nan" if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, dict):
        return {str(k): strict_json(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [strict_json(v) for v in o]
    return o


# an absolute local path: two or more components after a slash that follows no word, dot,
# colon or slash (so not "cpu/eager", "a/b", "https://host/x" or "</td>"), or a Windows drive path
_ABS_PATH = re.compile(r"(?<![\w.:/~-])(?:/[\w.+@-]+){2,}/?|\b[A-Za-z]:\\(?:[^\\\s<>\"']+\\)+[^\\\s<>\"']*")


def scrub_paths(text: str) -> str:
    """The page without the absolute paths of the machine that built it (results files, findings,
    commands, environment): each becomes '…/' and its last component.  merged.json keeps them."""

    def last(m: re.Match[str]) -> str:
        parts = [p for p in re.split(r"[/\\]", m.group(0)) if p]
        return "…/" + (parts[-1] if parts else "")

    return _ABS_PATH.sub(last, text)


def render(context: dict[str, Any]) -> str:
    try:
        import jinja2
    except ImportError:
        raise SpecError("the HTML report needs jinja2: pip install 'focalspec[report]'") from None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PACKAGE_DIR / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.ChainableUndefined,  # input records may lack optional keys
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["u"] = model.fmt_u
    env.filters["su"] = lambda v: model.fmt_u(math.inf if v is None else v)  # the suite's null = infinite
    env.filters["num"] = model.fmt_num
    env.filters["slug"] = lambda v: (
        model.slug("t", v[0], model.short_nodeid(v[1])) if isinstance(v, list | tuple) else model.slug("t", v)
    )
    env.filters["short"] = model.short_nodeid
    env.filters["basename"] = lambda v: Path(str(v)).name if v else "—"
    env.filters["shortcause"] = harm.short
    env.filters["tojson_compact"] = lambda v: json.dumps(v, separators=(", ", ": "), default=str)
    return env.get_template(TEMPLATE).render(**context)


# ----------------------------------------------------------------------------- sections


def load_findings(path: Path | None) -> tuple[list[dict[str, Any]] | None, str]:
    """The documented third-party findings, or None and why there are none."""
    if path is None or not path.is_file():
        return None, f"no data: {path} not found" if path else "no data"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path}: cannot read findings ({exc})") from None
    items = doc.get("findings") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not all(isinstance(f, dict) for f in items):
        raise SpecError(f"{path}: expected a list of finding objects")
    return items, path.name


def worked_examples() -> tuple[list[dict[str, Any]] | None, str]:
    """Each seed-article example with printed and certified values, errata marked: from
    ``focalspec.spec.golden.errata()``, else the catalogue's printed values alone."""
    try:
        from focalspec.spec import golden

        rows = [_erratum_row(e) for e in golden.errata()]
        return rows, "focalspec.spec.golden.errata()"
    except Exception as exc:  # golden data missing or broken: say so, keep the report
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
    try:
        from focalspec.spec.catalogue import cases_with_tag

        rows = [
            {"id": c.id, "what": c.note, "source": c.source, "printed": c.printed, "expression": None,
             "certified": None, "certified_at_printed": None, "verdict": None, "explanation": None, "erratum": None}
            for c in cases_with_tag("worked-example")
        ]
        return rows, f"certified values: no data ({reason}); printed values from the catalogue"
    except Exception as exc:
        return None, f"no data ({reason}; catalogue: {type(exc).__name__}: {exc})".splitlines()[0]


def _erratum_row(e: Any) -> dict[str, Any]:
    get = e.get if isinstance(e, dict) else (lambda k, d=None: getattr(e, k, d))
    case = get("case")
    cid = get("case_id") or get("id") or (getattr(case, "id", None) if case is not None else None)
    source = get("source") or (getattr(case, "source", None) if case is not None else None)
    if source is None and cid:
        try:
            from focalspec.spec.catalogue import get_case

            source = get_case(cid).source
        except Exception:  # an id the catalogue does not know: no source column
            source = None
    verdict = get("verdict")
    erratum = get("erratum")
    if erratum is None and verdict is not None:
        erratum = str(verdict).strip().lower() not in VERDICTS_OK
    return {
        "id": cid,
        "what": get("what"),
        "source": source,
        "printed": get("printed"),
        "expression": get("expression"),
        "certified": get("certified"),
        "certified_at_printed": get("certified_at_printed"),
        "verdict": verdict,
        "explanation": get("explanation"),
        "erratum": erratum,
    }


def case_lookup() -> tuple[dict[str, Any], str]:
    """case id -> Case from the catalogue (for notes and inputs in the drill-down)."""
    try:
        from focalspec.spec.catalogue import all_cases

        return {c.id: c for c in all_cases()}, ""
    except Exception as exc:
        return {}, f"catalogue unavailable ({type(exc).__name__}: {exc})".splitlines()[0]


def _budgets(dtype: str, gamma: float) -> list[tuple[float, str]]:
    try:
        from focalspec.spec.tolerance import budget

        b = budget(dtype, gamma)
    except Exception:  # an unknown dtype name in the results: no budget lines
        return []
    lines = [(b.exact, "exact 1 u"), (b.faithful, "faithful 2 u")]
    if b.accurate < b.acceptable:
        lines.append((b.accurate, f"accurate {_short_u(b.accurate)}"))
        lines.append((b.acceptable, f"acceptable {_short_u(b.acceptable)}"))
    else:  # float16/bfloat16: the two budgets coincide
        lines.append((b.acceptable, f"acceptable {_short_u(b.acceptable)}"))
    return lines


def _short_u(v: float) -> str:
    """A budget for a chart label: '16 u', '512 u', '2.1e6 u'."""
    if v < 1e5:
        return f"{v:g} u"
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa}e{int(exponent)} u"


def sweep_sections(results: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per adapter: one pair of charts (value, gradient) per device, mode and dtype."""
    if not results:
        return []
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for s in results.get("sweeps") or []:
        key = (str(s.get("adapter")), str(s.get("device")), str(s.get("mode")), str(s.get("dtype")))
        groups.setdefault(key, []).append(s)
    dorder = {d: i for i, d in enumerate(model.DTYPE_ORDER)}
    by_adapter: dict[str, list[dict[str, Any]]] = {}
    for (adapter, device, mode, dtype), sweeps in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "cpu", kv[0][1], dorder.get(kv[0][3], 9), kv[0][2])
    ):
        sweeps.sort(key=lambda s: (to_float(s.get("gamma")) or 0.0, str(s.get("target")), str(s.get("alpha"))))
        gammas = [g for g in (to_float(s.get("gamma")) for s in sweeps) if g is not None]
        budgets = _budgets(dtype, max(gammas) if gammas else 2.0)
        charts = {}
        for check, key in (("value", "value_err_u"), ("gradient", "grad_err_u")):
            series = [
                plots.Series(
                    label=f"γ={_g(s.get('gamma'))}  t={_g(s.get('target'))}  α={_g(s.get('alpha'))}",
                    x=[to_float(v) for v in s.get("x") or []],
                    y=[finite_or_none(v) for v in s.get(key) or []],
                    colour=plots.colour(i),
                    marker=plots.marker(i),
                )
                for i, s in enumerate(sweeps)
                if s.get(key) is not None
            ]
            title = f"{adapter} · {dtype} · {device}/{mode} — {check} error"
            charts[check] = plots.sweep_chart(title, series, budgets) if series else None
        by_adapter.setdefault(adapter, []).append(
            {"device": device, "mode": mode, "dtype": dtype, "value": charts["value"], "grad": charts["gradient"],
             "nonfinite": sum(v is None or not math.isfinite(to_float(v) or 0.0)
                              for s in sweeps for k in ("value_err_u", "grad_err_u") for v in (s.get(k) or []))}
        )
    return [{"adapter": a, "anchor": model.slug("sweep", a), "charts": c} for a, c in by_adapter.items()]


def _g(v: Any) -> str:
    f = to_float(v)
    return "none" if v is None else (f"{f:g}" if f is not None else str(v))


def bench_section(bench: dict[str, Any] | None) -> dict[str, Any] | None:
    """Throughput and roofline charts per device, dtype and pass, plus the full table."""
    if not bench:
        return None
    rows = list(bench.get("results") or [])
    dorder = {d: i for i, d in enumerate(model.DTYPE_ORDER)}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r.get("device")), str(r.get("dtype")), str(r.get("pass"))), []).append(r)
    charts = []
    for (device, dtype, pss), rs in sorted(
        groups.items(), key=lambda kv: (kv[0][0] != "cpu", kv[0][0], dorder.get(kv[0][1], 9), kv[0][2])
    ):
        impls: dict[str, list[dict[str, Any]]] = {}
        for r in rs:
            impls.setdefault(f"{r.get('adapter')} ({r.get('mode')})", []).append(r)
        tp, rf = [], []
        for i, (label, items) in enumerate(sorted(impls.items())):
            xs = [to_float(r.get("n_elements")) for r in items]
            bad = [r.get("correct") is False for r in items]
            tp.append(plots.Series(label, xs, [to_float(r.get("elements_per_s")) for r in items], plots.colour(i), bad,
                                   dash=plots.dash(i)))
            rf.append(plots.Series(label, xs, [to_float(r.get("roofline_fraction")) for r in items], plots.colour(i),
                                   bad, dash=plots.dash(i)))
        fracs = [y for s in rf for y in s.y if y is not None and math.isfinite(y)]
        names = sorted({str(r.get("device_name")) for r in rs if r.get("device_name")})
        where = f"{device}{' (' + ', '.join(names) + ')' if names else ''}"
        charts.append({
            "title": f"{where} · {dtype} · {pss}",
            "throughput": plots.size_chart(f"throughput — {dtype} {pss} on {device}", tp, "elements / s"),
            "roofline": plots.size_chart(f"fraction of memory roofline — {dtype} {pss} on {device}", rf,
                                         "roofline fraction", ylog=False, ymin=0.0, ymax=_nice_top(fracs)),
        })  # fmt: skip
    rows.sort(key=lambda r: (str(r.get("device")), dorder.get(str(r.get("dtype")), 9), str(r.get("pass")),
                             to_float(r.get("n_elements")) or 0.0, str(r.get("adapter")), str(r.get("mode"))))
    return {"charts": charts, "rows": rows, "ceilings": bench.get("ceilings") or [], "run": bench.get("run") or {},
            "sources": bench.get("merged_from") or []}


def _nice_top(values: Sequence[float]) -> float:
    """Top of a linear axis from 0: the next 1, 2 or 5 times a power of ten above the data
    (a roofline fraction of 0.4 % is unreadable on a 0..1 axis)."""
    top = max(values, default=1.0) * 1.1
    if top <= 0:
        return 1.0
    k = math.floor(math.log10(top))
    return next(m * 10.0**k for m in (1, 2, 5, 10) if m * 10.0**k >= top)


def provenance(results: dict[str, Any] | None, bench: dict[str, Any] | None) -> dict[str, Any]:
    sources = [{"kind": "results", **m} for m in (results or {}).get("merged_from") or []]
    sources += [{"kind": "bench", **m} for m in (bench or {}).get("merged_from") or []]
    devices: dict[str, set[str]] = {}
    for t in (results or {}).get("tests") or []:
        devices.setdefault(str(t.get("device")), set())
    for a in (results or {}).get("adapters") or []:
        name = (a.get("ran") or {}).get("device_name")
        for d in a.get("devices") or []:
            devices.setdefault(str(d), set()).update([str(name)] if name else [])
    for r in (bench or {}).get("results") or []:
        devices.setdefault(str(r.get("device")), set()).update([str(r["device_name"])] if r.get("device_name") else [])
    brun = (bench or {}).get("merged_from") or []
    cpus = sorted({f"{m['run'].get('cpu_model')} ({m['run'].get('cpu_count')} cores)"
                   for m in brun if (m.get("run") or {}).get("cpu_model")})
    return {
        "sources": sources,
        "devices": {d: sorted(n) for d, n in sorted(devices.items()) if d not in ("None", "-")},
        "cpus": cpus,
        "suite_versions": sorted({str((s.get("suite") or {}).get("version")) for s in sources
                                  if (s.get("suite") or {}).get("version")}),
        "revisions": sorted({str((s.get("suite") or {}).get("git_revision")) for s in sources
                             if (s.get("suite") or {}).get("git_revision")}),
    }


def page_context(
    results: dict[str, Any] | None,
    bench: dict[str, Any] | None,
    findings: list[dict[str, Any]] | None,
    findings_note: str,
    title: str,
    max_passed_rows: int,
    max_failures_per_cause: int = 0,
) -> dict[str, Any]:
    tests = (results or {}).get("tests") or []
    if results:
        harm.annotate(results)
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "error", "skipped", "xfailed",
                                                                   "xpassed")}
    cases, cases_note = case_lookup() if results else ({}, "")
    examples, examples_note = worked_examples()
    matrix = model.build_matrix(results) if results else None
    answer = harm.answer_rows(results, matrix.dtypes, {}) if results and matrix else []
    order = [r.name for r in answer]
    if matrix:  # the matrix in the first screen's order, most harmful first (a stable sort keeps rows together)
        rank = {n: i for i, n in enumerate(order)}
        matrix.rows.sort(key=lambda r: rank.get(r.adapter["name"], len(rank)))
    adapters = (results or {}).get("adapters") or [{"name": n} for n in order]
    findings_groups = findings_view.findings_by_adapter(findings, order, adapters) if findings is not None else None
    anchors = {g.name: g.anchor for g in findings_groups or []}
    for r in answer:
        r.findings_anchor = anchors.get(r.name)
    from focalspec.conformance.suite.tiers import DEFAULT_REQUIRED

    return {
        "title": title,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "results": results,
        "counts": counts,
        "n_tests": len(tests),
        "matrix": matrix,
        "answer": answer,
        "dtypes": matrix.dtypes if matrix else [],
        "severities": list(harm.SEVERITIES),
        "required_tiers": list(DEFAULT_REQUIRED),
        "cause_rows": harm.cause_rows(results) if results else {},
        "audit_line": _audit_line(),
        "summaries": {s.name: s for s in model.impl_summaries(results)} if results else {},
        "cause_info": _cause_info(),
        "palette": palette,
        "provenance": provenance(results, bench),
        "adapters": (results or {}).get("adapters") or [],
        "sweeps": sweep_sections(results),
        "bench": bench_section(bench),
        "examples": examples,
        "examples_note": examples_note,
        "findings_groups": findings_groups,
        "findings_note": findings_note,
        "groups": sorted(model.drilldown(results, max_passed_rows, max_failures_per_cause),
                         key=lambda g: order.index(g.adapter["name"]) if g.adapter["name"] in order else len(order))
        if results else [],
        "max_failures_per_cause": max_failures_per_cause,
        "cases": cases,
        "cases_note": cases_note,
        "stale": (results or {}).get("stale") or {"xfails": [], "skips": []},
        "max_err": model.max_err,
        "impl_anchor": lambda name: model.slug("impl", name),
        "category": model.category,
        "pair": digits.pair,
        "golden": harm.entry_golden,
        "case_command": digits.case_command,
        "inf": math.inf,
        "mkid": model.slug,
    }


def _cause_info() -> dict[str, Any]:
    from focalspec.conformance.diagnosis.causes import CAUSES

    return CAUSES


def main(argv: Sequence[str] | None = None) -> int:
    """Run as ``python -m focalspec.reports.build`` (the CLI is the usual way)."""
    parser = argparse.ArgumentParser(prog="focalspec report", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except SpecError as exc:
        import sys

        print(f"focalspec report: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())


def _audit_line() -> str:
    from focalspec.conformance.diagnosis.causes import audit_line

    return audit_line()
