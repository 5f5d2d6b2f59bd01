"""Inline SVG charts written by hand: no plotting library, no script, no external file.

Two kinds: the error sweep (error in u, log scale, against the logit on a symmetric log
axis -- where saturation, underflow and cancellation show up as a rising cloud) with the
non-finite results as red triangles in a band above the plot, and the performance charts
(throughput or roofline fraction against size).  Points are deduplicated per pixel, so a
sweep of a hundred thousand logits costs no more than the picture it makes; and the markup is
kept small (a main job's page holds two hundred of these): text and grid styles are inherited
from the <svg> element, the grid is one path, and the dots are one path of relative moves.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

# Okabe-Ito, without the vermillion kept for non-finite results and failures
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#000000", "#8C6D1F", "#6A3D9A")
NONFINITE = "#D00000"
# series are told apart by shape (sweep dots) or dash (size lines) as well as colour, so that a
# reader who cannot tell the colours apart, or prints in grey, still can:
# name -> (start offset x, y; the glyph drawn from there; where the pen ends; stroke attributes)
MARKERS: dict[str, tuple[int, int, str, int, int, str]] = {
    "square": (0, 0, "h0", 0, 0, 'stroke-width="2.4" stroke-linecap="square"'),
    "round": (0, 0, "h0", 0, 0, 'stroke-width="3.4" stroke-linecap="round"'),
    "hbar": (-3, 0, "h6", 6, 0, 'stroke-width="1.8"'),
    "vbar": (0, -3, "v6", 0, 6, 'stroke-width="1.8"'),
}
MARKER_ORDER: tuple[str, ...] = tuple(MARKERS)
DASHES: tuple[str, ...] = ("", "7 3", "2 2", "9 3 2 3")
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


@dataclass
class Series:
    label: str
    x: Sequence[float | None]
    y: Sequence[float | None]  # None = non-finite result (NaN/Inf)
    colour: str = PALETTE[0]
    bad: Sequence[bool] = field(default_factory=list)  # per point: draw as a failure (hollow red)
    marker: str = "square"  # a MARKERS name: the dots' shape (sweeps)
    dash: str = ""  # stroke-dasharray of the line (size charts)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def marker(i: int) -> str:
    """The i-th series' dot shape; with 8 colours and 4 shapes, 32 series differ in one or both."""
    return MARKER_ORDER[(i // len(PALETTE) + i) % len(MARKER_ORDER)]


def dash(i: int) -> str:
    return DASHES[(i // len(PALETTE) + i) % len(DASHES)]


def symlog(x: float) -> float:
    """sign(x) log10(1 + |x|): linear near 0, logarithmic beyond |x| ~ 1, defined at 0."""
    return math.copysign(math.log10(1.0 + abs(x)), x)


def _fmt_pow10(k: int) -> str:
    return {-3: "0.001", -2: "0.01", -1: "0.1", 0: "1", 1: "10", 2: "100"}.get(k, f"1e{k}")


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


class _Frame:
    """Plot geometry: data -> pixel transforms for one chart area."""

    def __init__(self, width: int, height: int, left: int = 58, right: int = 104, top: int = 30, bottom: int = 40):
        self.width, self.height = width, height
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = top, height - bottom  # y0 top edge, y1 bottom edge of the area
        self.parts: list[str] = []

    def xmap(self, lo: float, hi: float, f: Callable[[float], float]) -> Callable[[float], float]:
        a, b = f(lo), f(hi)
        span = (b - a) or 1.0
        return lambda v: self.x0 + (f(v) - a) / span * (self.x1 - self.x0)

    def ymap(self, lo: float, hi: float, f: Callable[[float], float]) -> Callable[[float], float]:
        a, b = f(lo), f(hi)
        span = (b - a) or 1.0
        return lambda v: self.y1 - (f(v) - a) / span * (self.y1 - self.y0)

    def add(self, s: str) -> None:
        self.parts.append(s)

    def text(self, x: float, y: float, s: str, anchor: str = "middle", size: int = 10, fill: str = "#333") -> None:
        """A label; the defaults (middle, 10 px, #333) are inherited from the <svg> element."""
        attrs = "" if anchor == "middle" else f' text-anchor="{anchor}"'
        attrs += "" if size == 10 else f' font-size="{size}"'
        attrs += "" if fill == "#333" else f' fill="{fill}"'
        self.add(f'<text x="{_num(x)}" y="{_num(y)}"{attrs}>{escape(s)}</text>')

    def grid(self, horizontal: Sequence[float], vertical: Sequence[float]) -> None:
        """The grid lines as one path (a line element each costs about 60 bytes)."""
        d = "".join(f"M{self.x0} {_num(y)}H{self.x1}" for y in horizontal)
        d += "".join(f"M{_num(x)} {self.y0}V{self.y1}" for x in vertical)
        if d:
            self.add(f'<path d="{d}" stroke="#eee" fill="none"/>')

    def svg(self, title: str, extra_height: int = 0) -> str:
        h = self.height + extra_height
        return (
            f'<svg role="img" width="{self.width}" height="{h}" viewBox="0 0 {self.width} {h}" style="{FONT}" '
            f'font-size="10" fill="#333" text-anchor="middle"><title>{escape(title)}</title>'
            + "".join(self.parts)
            + "</svg>"
        )


def _legend(fr: _Frame, entries: list[tuple[Series, str]], y: float, lines: bool = False) -> int:
    """Legend rows below the chart: (series, note), each with its marker or dashed line;
    returns the extra height used."""
    for i, (s, note) in enumerate(entries):
        yy = y + 14 * i
        if lines:
            dash_attr = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            fr.add(f'<path d="M{fr.x0 - 4} {_num(yy - 3)}h18" stroke="{s.colour}" stroke-width="1.8"{dash_attr}/>')
        else:
            fr.add(_marker_path(_dots({(fr.x0 + 5, round(yy - 3))}, s.marker), s.colour, s.marker, 1.0))
        fr.text(fr.x0 + 18, yy + 1, s.label + (f"  {note}" if note else ""), anchor="start", size=11)
    return 14 * len(entries) + 6


def _marker_path(d: str, col: str, name: str, opacity: float = 0.8) -> str:
    attrs = MARKERS.get(name, MARKERS["square"])[5]
    op = "" if opacity == 1.0 else f' stroke-opacity="{opacity}"'
    return f'<path d="{d}" stroke="{col}"{op} {attrs} fill="none"/>'


def _dots(points: set[tuple[int, int]], shape: str = "square") -> str:
    """One glyph per point, each reached by a move relative to where the previous glyph ended
    ("m3-2h0" instead of "M123 45h0"): a square or round dot (a zero-length segment drawn by
    the line cap), or a short horizontal or vertical bar."""
    ox, oy, glyph, ex, ey, _ = MARKERS.get(shape, MARKERS["square"])
    out, pen = [], None
    for px, py in sorted(points):
        sx, sy = px + ox, py + oy
        out.append(f"M{sx} {sy}{glyph}" if pen is None else _rel("m", sx - pen[0], sy - pen[1]) + glyph)
        pen = (sx + ex, sy + ey)
    return "".join(out)


def _rel(cmd: str, dx: int, dy: int) -> str:
    return f"{cmd}{dx}{'' if dy < 0 else ' '}{dy}"


def sweep_chart(
    title: str,
    series: Sequence[Series],
    budgets: Sequence[tuple[float, str]] = (),
    width: int = 560,
    height: int = 300,
    floor: float = 1e-2,
) -> str:
    """Error (u, log y) against the logit (symmetric log x).  Errors below ``floor`` (exact
    results included) sit on the bottom edge; non-finite ones are red triangles in the top
    band labelled NaN/Inf; dashed lines mark the grade budgets."""
    fr = _Frame(width, height, top=48)
    xs = [x for s in series for x in s.x if x is not None and math.isfinite(x)]
    ys = [y for s in series for y in s.y if y is not None and math.isfinite(y)]
    if not xs:
        fr.text(width / 2, height / 2, "no finite logits in this sweep", size=11)
        return fr.svg(title)
    xmax = max(1.0, max(abs(x) for x in xs))
    kx = math.ceil(math.log10(xmax))
    lo_x, hi_x = (-(10.0**kx), 10.0**kx) if min(xs) < 0 else (0.0, 10.0**kx)
    top = max([*ys, *(b for b, _ in budgets), 10.0])
    ky = math.ceil(math.log10(top * 1.5))
    lo_y, hi_y = floor, 10.0**ky
    X = fr.xmap(lo_x, hi_x, symlog)
    Y = fr.ymap(lo_y, hi_y, math.log10)
    band = fr.y0 - 16  # non-finite band centre
    # frame and grid
    fr.add(f'<rect x="{fr.x0}" y="{fr.y0}" width="{fr.x1 - fr.x0}" height="{fr.y1 - fr.y0}" fill="#fff" '
           f'stroke="#999"/>')
    fr.add(f'<rect x="{fr.x0}" y="{fr.y0 - 26}" width="{fr.x1 - fr.x0}" height="20" fill="#fdecea"/>')
    fr.text(fr.x0 - 6, band + 4, "NaN/Inf", anchor="end", fill=NONFINITE)
    k0 = round(math.log10(lo_y))
    step = max(1, math.ceil((ky - k0) / 9))  # at most ~10 labelled decades
    ticks = sorted(t for t in [0.0] + [s * 10.0**k for k in range(0, kx + 1) for s in (1, -1)] if lo_x <= t <= hi_x)
    fr.grid([Y(10.0**k) for k in range(k0, ky + 1)], [X(t) for t in ticks])
    for k in range(k0, ky + 1):
        if (k - k0) % step == 0:
            label = f"≤{_fmt_pow10(k)}" if k == k0 else _fmt_pow10(k)
            fr.text(fr.x0 - 6, Y(10.0**k) + 4, label, anchor="end")
    for t in ticks:
        k = round(math.log10(abs(t))) if t else 0
        label = "0" if t == 0 else ("−" if t < 0 else "") + _fmt_pow10(k)
        fr.text(X(t), fr.y1 + 14, label)
    fr.text((fr.x0 + fr.x1) / 2, fr.y1 + 30, "logit x (symmetric log scale)", size=11)
    fr.add(f'<text transform="translate(14 {_num((fr.y0 + fr.y1) / 2)}) rotate(-90)" font-size="11">error (u)</text>')
    fr.text(fr.x0, 13, title, anchor="start", size=12, fill="#000")
    last_label = math.inf  # labels go bottom-up, each at least 11 px above the previous
    for b, label in sorted(budgets):
        if lo_y < b < hi_y:
            yy = Y(b)
            fr.add(f'<path d="M{fr.x0} {_num(yy)}H{fr.x1}" stroke="#777" stroke-dasharray="4 3" fill="none"/>')
            ly = min(yy + 4, last_label - 11)
            last_label = ly
            fr.text(fr.x1 + 4, ly, label, anchor="start", fill="#555")
    # data
    entries: list[tuple[Series, str]] = []
    for s in series:
        dots: set[tuple[int, int]] = set()
        bad: set[int] = set()
        for x, y in zip(s.x, s.y, strict=False):
            if x is None or not math.isfinite(x):
                continue
            px = round(X(min(max(x, lo_x), hi_x)))
            if y is None or not math.isfinite(y):
                bad.add(px)
            else:
                dots.add((px, round(Y(min(max(y, lo_y), hi_y)))))
        d = _dots(dots, s.marker)  # ~6 bytes a point
        if d:
            fr.add(_marker_path(d, s.colour, s.marker))
        if bad:
            xs = sorted(bad)  # after "z" the pen is back at the triangle's first corner
            tri = f"M{xs[0] - 4} {band - 4}h8l-4 7z" + "".join(f"m{b - a} 0h8l-4 7z" for a, b in itertools.pairwise(xs))
            fr.add(f'<path d="{tri}" fill="{NONFINITE}"/>')
        n_bad = sum(1 for y in s.y if y is None or not math.isfinite(y))
        note = _worst_note(s)
        if n_bad:
            note += f"  {n_bad} non-finite"
        entries.append((s, note.strip()))
    extra = _legend(fr, entries, fr.y1 + 52)
    return fr.svg(title, extra_height=extra + 14)


def _worst_note(s: Series) -> str:
    """Where a series is worst and by how much ("max 9.0e+15 u at x = −88.7"): the maximum
    alone reads the same on every chart of a saturating implementation."""
    pts = [(y, x) for x, y in zip(s.x, s.y, strict=False)
           if y is not None and math.isfinite(y) and x is not None and math.isfinite(x)]  # fmt: skip
    if not pts:
        return ""
    y, x = max(pts)
    return f"max {y:.3g} u at x = {x:.4g}".replace("-", "−")


def size_chart(
    title: str,
    series: Sequence[Series],
    ylabel: str,
    ylog: bool = True,
    ymin: float | None = None,
    ymax: float | None = None,
    width: int = 560,
    height: int = 300,
) -> str:
    """y against problem size (log x), one line per series; points flagged ``bad`` (a timed
    result that was not correct) are hollow red circles."""
    fr = _Frame(width, height)
    pts = [(x, y) for s in series for x, y in zip(s.x, s.y, strict=False) if _pos(x) and _ok(y, ylog)]
    if not pts:
        fr.text(width / 2, height / 2, "no data", size=11)
        return fr.svg(title)
    kx0 = math.floor(math.log10(min(x for x, _ in pts)))
    kx1 = math.ceil(math.log10(max(x for x, _ in pts)))
    if kx1 == kx0:
        kx1 += 1
    X = fr.xmap(10.0**kx0, 10.0**kx1, math.log10)
    ys = [y for _, y in pts]
    if ylog:
        ky0 = math.floor(math.log10(ymin if ymin else min(ys)))
        ky1 = math.ceil(math.log10(ymax if ymax else max(ys)))
        if ky1 == ky0:
            ky1 += 1
        lo_y, hi_y = 10.0**ky0, 10.0**ky1
        Y = fr.ymap(lo_y, hi_y, math.log10)
        yticks = [10.0**k for k in range(ky0, ky1 + 1)]
    else:
        lo_y = ymin if ymin is not None else 0.0
        hi_y = ymax if ymax is not None else max(ys) * 1.1 or 1.0
        Y = fr.ymap(lo_y, hi_y, float)
        yticks = [lo_y + (hi_y - lo_y) * i / 5 for i in range(6)]
    fr.add(f'<rect x="{fr.x0}" y="{fr.y0}" width="{fr.x1 - fr.x0}" height="{fr.y1 - fr.y0}" fill="#fff" '
           f'stroke="#999"/>')
    fr.grid([Y(t) for t in yticks], [X(10.0**k) for k in range(kx0, kx1 + 1)])
    for t in yticks:
        label = _fmt_pow10(round(math.log10(t))) if ylog else f"{t:.2g}"
        fr.text(fr.x0 - 6, Y(t) + 4, label, anchor="end")
    for k in range(kx0, kx1 + 1):
        fr.text(X(10.0**k), fr.y1 + 14, _fmt_pow10(k))
    fr.text((fr.x0 + fr.x1) / 2, fr.y1 + 30, "elements", size=11)
    fr.add(f'<text transform="translate(14 {_num((fr.y0 + fr.y1) / 2)}) rotate(-90)" font-size="11">'
           f"{escape(ylabel)}</text>")
    fr.text(fr.x0, 16, title, anchor="start", size=12, fill="#000")
    entries: list[tuple[Series, str]] = []
    for s in series:
        flags = list(s.bad) + [False] * (len(s.x) - len(s.bad))
        good = sorted(
            (x, y, b) for x, y, b in zip(s.x, s.y, flags, strict=False) if _pos(x) and _ok(y, ylog)
        )
        if not good:
            continue
        line = " ".join(f"{_num(X(x))},{_num(Y(min(max(y, lo_y), hi_y)))}" for x, y, _ in good)
        dash_attr = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        fr.add(f'<polyline points="{line}" fill="none" stroke="{s.colour}" stroke-width="1.6"{dash_attr}/>')
        for x, y, b in good:
            cx, cy = _num(X(x)), _num(Y(min(max(y, lo_y), hi_y)))
            if b:
                fr.add(f'<circle cx="{cx}" cy="{cy}" r="4.5" fill="none" stroke="{NONFINITE}" stroke-width="1.6"/>')
            else:
                fr.add(f'<circle cx="{cx}" cy="{cy}" r="2.6" fill="{s.colour}"/>')
        nbad = sum(b for _, _, b in good)
        entries.append((s, f"{nbad} incorrect (red rings)" if nbad else ""))
    extra = _legend(fr, entries, fr.y1 + 52, lines=True)
    return fr.svg(title, extra_height=extra + 14)


def _pos(v: float | None) -> bool:
    return v is not None and math.isfinite(v) and v > 0


def _ok(v: float | None, log: bool) -> bool:
    return v is not None and math.isfinite(v) and (v > 0 or not log)
