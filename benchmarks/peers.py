"""Own implementations against their peers: who is fastest, and each own result's ratio to the
fastest shipped implementation of its framework in the same run (correct only, and any)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def key(r: dict[str, Any]) -> tuple[str, str, str, str]:
    return (r["device"], r["dtype"], r["pass"], r["mode"])


def largest_size_rows(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each (adapter, device, dtype, mode, pass), the row at the largest size measured."""
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in results:
        k = (r["adapter"], r["device"], r["dtype"], r["mode"], r["pass"])
        if k not in best or r["n_elements"] > best[k]["n_elements"]:
            best[k] = r
    return list(best.values())


def fastest(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per (device, dtype, pass) at the largest size both ran: the fastest correct
    result and how many times the runner-up's time and the slowest's it takes."""
    lines = []
    rows = [r for r in largest_size_rows(results) if r["correct"] and r["median_s"]]
    groups: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["device"], r["dtype"], r["pass"], r["n_elements"]), []).append(r)
    for (device, dtype, pass_, n), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["median_s"])
        top = rs[0]
        text = f"{device} {dtype} {pass_} at {n:,} elements: fastest {top['adapter']} ({top['mode']}), " + (
            f"{top['GBps']:.2f} GB/s"
        )
        if len(rs) > 1:
            nxt, last = rs[1], rs[-1]
            text += f"; {nxt['median_s'] / top['median_s']:.2f}x faster than {nxt['adapter']} ({nxt['mode']})"
            if last is not nxt:
                text += f", {last['median_s'] / top['median_s']:.2f}x faster than {last['adapter']} ({last['mode']})"
        lines.append(text)
    return lines


def _peer_entry(r: dict[str, Any] | None, own: dict[str, Any]) -> dict[str, Any] | None:
    """A peer and its ratios to ``own``: of the medians, and of the fastest repetitions (on a
    CPU shared with other work the minimum is the steadier of the two)."""
    if r is None:
        return None
    mins = r.get("min_s"), own.get("min_s")
    return {
        "adapter": r["adapter"], "mode": r["mode"], "median_s": r["median_s"], "correct": r["correct"],
        "ratio": r["median_s"] / own["median_s"], "min_ratio": mins[0] / mins[1] if all(mins) else None,
    }  # fmt: skip


def peer_ratios(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each timed result of an own implementation against the fastest *peer* of its framework
    in the same run: a shipped implementation (not focalspec's) on the same device, dtype, pass
    and size.  ``ratio`` = peer median / own median, so above 1 the own one is faster.  Four
    peers per row: the fastest correct one and the fastest of any correctness, each in the
    same mode (eager against eager, compiled against compiled) and in any mode; ``min_ratio``
    compares the fastest repetitions instead of the medians."""
    timed = [r for r in results if r["median_s"]]
    peers: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in timed:
        if not str(r["implementation"]).startswith("focalspec"):
            k = (r["framework"], r["device"], r["dtype"], r["pass"], r["n_elements"])
            peers.setdefault(k, []).append(r)
    out = []
    for r in timed:
        if not str(r["implementation"]).startswith("focalspec"):
            continue
        group = peers.get((r["framework"], r["device"], r["dtype"], r["pass"], r["n_elements"]), [])
        same = [p for p in group if p["mode"] == r["mode"]]

        def quickest(rows: list[dict[str, Any]], correct_only: bool) -> dict[str, Any] | None:
            rows = [p for p in rows if p["correct"] or not correct_only]
            return min(rows, key=lambda p: p["median_s"]) if rows else None

        out.append(
            {
                **{k: r[k] for k in ("adapter", "framework", "device", "dtype", "mode", "pass", "n_elements")},
                "median_s": r["median_s"],
                "correct": r["correct"],
                "same_mode_correct": _peer_entry(quickest(same, True), r),
                "same_mode_any": _peer_entry(quickest(same, False), r),
                "any_mode_correct": _peer_entry(quickest(group, True), r),
                "any_mode_any": _peer_entry(quickest(group, False), r),
            }
        )
    out.sort(
        key=lambda e: (e["device"], e["dtype"], e["framework"], e["adapter"], e["mode"], e["pass"], e["n_elements"])
    )
    return out


def _peer_text(p: dict[str, Any] | None, with_mode: bool = False) -> str:
    if p is None:
        return "–"
    name = f"{p['adapter']} {p['mode']}" if with_mode else p["adapter"]
    at_min = "" if p["min_ratio"] is None else f" (min {p['min_ratio']:.2f}x)"
    return f"{p['ratio']:.2f}x{at_min} {name}" + ("" if p["correct"] else " (wrong)")


def ratio_lines(results: Sequence[dict[str, Any]], largest_only: bool = True) -> list[str]:
    """One line per own result: its ratio to the fastest correct peer and the fastest peer of
    any correctness of its framework (same mode; then any mode), above 1 = own faster."""
    rows = largest_size_rows(results) if largest_only else list(results)
    lines = []
    for e in peer_ratios(rows):
        if e["same_mode_any"] is None and e["any_mode_any"] is None:
            lines.append(f"{e['adapter']} {e['mode']} {e['pass']} {e['dtype']} {e['n_elements']:,}: no peer timed")
            continue
        lines.append(
            f"{e['adapter']} {e['mode']} {e['pass']} {e['dtype']} {e['n_elements']:,}: "
            f"{e['median_s'] * 1e3:.3f} ms{'' if e['correct'] else ' (WRONG)'}; "
            f"{e['mode']} peers: fastest correct {_peer_text(e['same_mode_correct'])}, "
            f"fastest {_peer_text(e['same_mode_any'])}; "
            f"any mode: fastest correct {_peer_text(e['any_mode_correct'], True)}, "
            f"fastest {_peer_text(e['any_mode_any'], True)}"
        )
    return lines
