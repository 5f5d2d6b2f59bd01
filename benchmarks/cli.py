"""``focalspec bench``: throughput of every adapter against this machine's copy ceiling.

Prints progress (a rich bar on a terminal, plain lines otherwise), writes the
``focalspec-bench`` JSON (rewritten after each result, so a run cut short keeps its
numbers) and optionally a markdown summary, and ends with the largest-size table.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from focalspec.adapters.base import DEVICES, MODES
from focalspec.benchmarks import harness as bench
from focalspec.spec.variant import SpecError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0] if __doc__ else None
    parser.add_argument(
        "--adapter",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="adapter names (see `focalspec adapters`) or module:attr of an adapter class; default: all",
    )
    parser.add_argument("--framework", action="extend", nargs="+", metavar="NAME", help="only these frameworks")
    parser.add_argument("--device", action="extend", nargs="+", choices=DEVICES, help="default: cpu, plus cuda if seen")
    parser.add_argument(
        "--dtype",
        action="extend",
        nargs="+",
        choices=(*bench.BENCH_DTYPES, "float64"),
        help="default: float32 bfloat16 float16 (each where the adapter supports it)",
    )
    parser.add_argument("--mode", action="extend", nargs="+", choices=MODES, help="default: eager compiled")
    parser.add_argument("--pass", dest="passes", action="extend", nargs="+", choices=bench.PASSES)
    parser.add_argument(
        "--sizes",
        metavar="LIST",
        help="element counts, e.g. 2^12,2^16 or 4096,65536 (default: 2^12..2^22 step 2^2 on cpu, ..2^28 on cuda)",
    )
    parser.add_argument("--quick", action="store_true", help="about a minute: own adapters + one shipped, float32")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results JSON here")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write a markdown summary here")
    parser.add_argument("--min-time", type=float, metavar="S", help="timed seconds per measurement (default 0.2)")
    parser.add_argument("--min-reps", type=int, metavar="N", help="timed repetitions at least (default 5)")
    parser.add_argument("--max-reps", type=int, metavar="N", help="timed repetitions at most (default 2000)")
    parser.add_argument("--deadline", type=float, metavar="S", help="start no measurement after S seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads per framework (and for the copy ceiling); 1 gives steadier numbers on a shared machine",
    )


def config_from_args(args: argparse.Namespace) -> bench.BenchConfig:
    sizes = bench.parse_sizes(args.sizes) if args.sizes else None
    for name in ("min_time", "deadline"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise SpecError(f"--{name.replace('_', '-')} must be positive, got {value!r}")
    for name in ("min_reps", "max_reps", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SpecError(f"--{name.replace('_', '-')} must be at least 1, got {value!r}")
    changes: dict[str, Any] = {
        "adapters": args.adapter,
        "frameworks": args.framework,
        "devices": list(dict.fromkeys(args.device)) if args.device else None,
        "dtypes": tuple(dict.fromkeys(args.dtype)) if args.dtype else None,
        "modes": tuple(dict.fromkeys(args.mode)) if args.mode else None,
        "passes": tuple(dict.fromkeys(args.passes)) if args.passes else None,
        "sizes": sizes,
        "min_time": args.min_time,
        "min_reps": args.min_reps,
        "max_reps": args.max_reps,
        "deadline_s": args.deadline,
        "seed": args.seed,
        "threads": args.threads,
        "command": command_line(args),
    }
    if args.quick:
        return bench.BenchConfig.quick_defaults(**changes)
    return bench.BenchConfig(**{k: v for k, v in changes.items() if v is not None})


def command_line(args: argparse.Namespace) -> str:
    """The invocation, rebuilt from the parsed options (also right when called as a function)."""
    words = ["focalspec", "bench"]
    for dest, flag in (
        ("adapter", "--adapter"), ("framework", "--framework"), ("device", "--device"), ("dtype", "--dtype"),
        ("mode", "--mode"), ("passes", "--pass"), ("sizes", "--sizes"), ("json", "--json"),
        ("markdown", "--markdown"), ("min_time", "--min-time"), ("min_reps", "--min-reps"),
        ("max_reps", "--max-reps"), ("deadline", "--deadline"), ("threads", "--threads"),
    ):  # fmt: skip
        value = getattr(args, dest, None)
        if value is None:
            continue
        words += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    if getattr(args, "quick", False):
        words.append("--quick")
    if getattr(args, "seed", 0):
        words += ["--seed", str(args.seed)]
    return shlex.join(words)


# ----------------------------------------------------------------------------- progress


def _describe(r: dict[str, Any]) -> str:
    if r["median_s"] is None:
        return r.get("not_timed") or f"error: {r['error']}"
    text = (
        f"{r['median_s'] * 1e3:.3f} ms (IQR {r['iqr_s'] * 1e3:.3f}, {r['reps']} reps) "
        f"{r['GBps']:.2f} GB/s"
        + (f" = {100 * r['roofline_fraction']:.1f}% of copy" if r["roofline_fraction"] is not None else "")
        + f", compile {r['compile_s']:.2f} s"
    )
    return text + ("" if r["correct"] else f" WRONG: {r['error']}")


class PlainReporter:
    """One line per measurement on stderr (not a terminal: CI logs, the GPU machine)."""

    def __init__(self) -> None:
        self.total = self.done = 0
        self.label = ""

    def start(self, total: int) -> None:
        self.total = total

    def begin(self, label: str) -> None:
        self.label = label

    def finish(self, result: dict[str, Any]) -> None:
        self.done += 1
        print(f"[{self.done}/{self.total}] {self.label}: {_describe(result)}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        print(f"note: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class RichReporter:
    """A rich progress bar with the current measurement, results printed above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]bench"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=True,
        )
        self.task: Any = None
        self.label = ""

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("", total=total)

    def begin(self, label: str) -> None:
        self.label = label
        self.progress.update(self.task, description=label)

    def finish(self, result: dict[str, Any]) -> None:
        style = "" if result["correct"] else "[red]"
        self.progress.console.print(f"{style}{self.label}: {_describe(result)}", markup=bool(style), highlight=False)
        self.progress.advance(self.task)

    def note(self, text: str) -> None:
        self.console.print(f"note: {text}", markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


def make_reporter() -> bench.Reporter:
    if sys.stderr.isatty():
        try:
            return RichReporter()
        except ImportError:
            pass
    return PlainReporter()


# ----------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    load_before = _load()
    doc = bench.run_bench(config, reporter=make_reporter(), json_path=args.json)
    if args.markdown:
        notes = []
        if load_before is not None and (load_after := _load()) is not None:
            notes.append(
                f"load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end, on "
                f"{doc['run']['cpu_count']} CPUs (above the CPU count, other work competed for the CPU)"
            )
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(bench.markdown(doc, notes))
    print(summary_table(doc))
    if args.json:
        print(f"results: {args.json}")
    if args.markdown:
        print(f"summary: {args.markdown}")
    wrong = [r for r in doc["results"] if r["median_s"] is not None and not r["correct"]]
    return 1 if wrong else 0


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def summary_table(doc: dict[str, Any]) -> str:
    """Plain-text table of the largest size, and who is fastest (stdout, after the bar)."""
    lines = [f"ceiling {c['device']}: {c['GBps']:.1f} GB/s ({c['method']})" for c in doc["ceilings"]]
    head = f"{'adapter':<22} {'device':<5} {'dtype':<8} {'mode':<8} {'pass':<16} {'elements':>11} "
    head += f"{'median ms':>10} {'GB/s':>8} {'roofline':>8} {'compile s':>9}  correct"
    lines.append(head)
    for r in sorted(bench.largest_size_rows(doc["results"]), key=lambda r: (r["device"], r["dtype"], r["pass"])):
        if r["median_s"] is None:
            tail = r.get("not_timed") or f"error: {r['error']}"
            nums = f"{'':>10} {'':>8} {'':>8} {'':>9}"
        else:
            roof = f"{100 * r['roofline_fraction']:.1f}%" if r["roofline_fraction"] is not None else "–"
            nums = f"{r['median_s'] * 1e3:>10.3f} {r['GBps']:>8.2f} {roof:>8} {r['compile_s']:>9.2f}"
            tail = "yes" if r["correct"] else f"NO: {r['error']}"
        lines.append(
            f"{r['adapter']:<22} {r['device']:<5} {r['dtype']:<8} {r['mode']:<8} {r['pass']:<16} "
            f"{r['n_elements']:>11,} {nums}  {tail}"
        )
    lines += bench.fastest(doc["results"])
    ratios = bench.ratio_lines(doc["results"], largest_only=False)
    if ratios:
        lines += ["", "own implementations against the fastest peer of their framework (above 1x: own faster):"]
        lines += ratios
    return "\n".join(lines)
