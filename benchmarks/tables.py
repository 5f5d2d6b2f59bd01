"""The markdown summary of a bench document (``focalspec bench --markdown``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from focalspec.benchmarks.peers import _peer_text, fastest, key, largest_size_rows, peer_ratios


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def markdown(doc: dict[str, Any], notes: Sequence[str] = ()) -> str:
    """A short human summary: when, where, what versions, the ceilings, the largest-size
    table, who is fastest, then GB/s at every size.  ``notes`` add lines to the header
    (the CLI gives the machine's load average, which CPU numbers depend on)."""
    run, suite = doc["run"], doc["suite"]
    results = doc["results"]
    versions = sorted({f"{r['framework']} {r['framework_version']}" for r in results if r["framework_version"]})
    out = [
        f"# focalspec bench — {run['started'][:10]}",
        "",
        f"- date: {run['started']} → {run['finished'] or 'unfinished'}",
        f"- suite: focalspec {suite['version']} at {suite['git_revision'] or 'unknown revision'}",
        f"- host: {run['host']}, {run['cpu_model']} ({run['cpu_count']} CPUs), {run['platform']}, "
        f"Python {run['python']}",
        f"- frameworks: {', '.join(versions) or '–'}",
        f"- command: `{run['command']}`",
    ]
    for c in doc["ceilings"]:
        out.append(f"- ceiling {c['device']} ({c['device_name']}): **{c['GBps']:.1f} GB/s**, {c['method']}")
    out += [f"- {text}" for text in notes]
    out += [
        "",
        "GB/s counts the fewest bytes the pass must move (forward: read logits + targets; "
        "forward+backward: also write the gradient); roofline = GB/s / copy ceiling.",
        "",
        "## Largest size",
        "",
        "| adapter | device | dtype | mode | pass | elements | median ms | IQR ms | Melem/s | GB/s | roofline "
        "| compile s | correct |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(largest_size_rows(results), key=lambda r: (*key(r), r["adapter"])):
        ok = "yes" if r["correct"] else ("**no**" if r["median_s"] else "not timed" if r.get("not_timed") else "error")
        out.append(
            f"| {r['adapter']} | {r['device']} | {r['dtype']} | {r['mode']} | {r['pass']} | {r['n_elements']:,} "
            f"| {_fmt(r['median_s'] and r['median_s'] * 1e3, '.3f')} | {_fmt(r['iqr_s'] and r['iqr_s'] * 1e3, '.3f')} "
            f"| {_fmt(r['elements_per_s'] and r['elements_per_s'] / 1e6, '.1f')} | {_fmt(r['GBps'], '.2f')} "
            f"| {_fmt(r['roofline_fraction'] and 100 * r['roofline_fraction'], '.1f')}{'%' if r['GBps'] else ''} "
            f"| {_fmt(r['compile_s'], '.2f')} | {ok} |"
        )
    lines = fastest(results)
    if lines:
        out += ["", "## Fastest (correct results only)", "", *[f"- {t}" for t in lines]]
    ratios = peer_ratios(results)
    if ratios:
        out += [
            "",
            "## Own implementations against the fastest peer of their framework",
            "",
            "Ratio = peer's median / own median in this run (above 1: the own implementation is faster), "
            "with the ratio of the fastest repetitions in brackets; a peer marked (wrong) failed the "
            "correctness check.",
            "",
            "| adapter | dtype | mode | pass | elements | own ms | fastest correct peer, same mode "
            "| fastest peer, same mode | fastest correct peer, any mode | fastest peer, any mode |",
            "|---|---|---|---|---:|---:|---|---|---|---|",
        ]
        for e in ratios:
            out.append(
                f"| {e['adapter']} | {e['dtype']} | {e['mode']} | {e['pass']} | {e['n_elements']:,} "
                f"| {e['median_s'] * 1e3:.3f}{'' if e['correct'] else ' ✗'} "
                f"| {_peer_text(e['same_mode_correct'])} | {_peer_text(e['same_mode_any'])} "
                f"| {_peer_text(e['any_mode_correct'], True)} | {_peer_text(e['any_mode_any'], True)} |"
            )
    sizes = sorted({r["n_elements"] for r in results})
    out += [
        "",
        "## GB/s at every size",
        "",
        "| adapter | device | dtype | mode | pass | " + " | ".join(f"{s:,}" for s in sizes) + " |",
        "|---|---|---|---|---|" + "---:|" * len(sizes),
    ]
    cells: dict[tuple[str, ...], dict[int, str]] = {}
    for r in results:
        k: tuple[str, ...] = (r["adapter"], r["device"], r["dtype"], r["mode"], r["pass"])
        if r["GBps"] is None:
            v = "not timed" if r.get("not_timed") else "err"
        else:
            v = f"{r['GBps']:.2f}" + ("" if r["correct"] else " ✗")
        cells.setdefault(k, {})[r["n_elements"]] = v
    for k in sorted(cells, key=lambda k: (k[1], k[2], k[4], k[3], k[0])):
        out.append("| " + " | ".join(k) + " | " + " | ".join(cells[k].get(s, "") for s in sizes) + " |")
    errors = sorted({f"{r['adapter']}: {r['error']}" for r in results if r["error"]})
    if errors:
        out += ["", "## Errors and wrong outputs", "", *[f"- {e}" for e in errors]]
    untimed = sorted({f"{r['adapter']}: {r['not_timed']}" for r in results if r.get("not_timed")})
    if untimed:
        out += ["", "## Not timed (no native timing path here; not an error)", "", *[f"- {e}" for e in untimed]]
    return "\n".join(out) + "\n"
