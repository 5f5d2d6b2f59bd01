"""Render a built report in headless Chromium: is the matrix there, is the page not blank,
did the page log anything to the console?

Three runs of the browser, each with a fresh profile and no network: ``--dump-dom`` (the
DOM after scripts ran, searched for the matrix table), ``--screenshot`` (a PNG decoded
here, without Pillow, and required to have more than a background colour), and both with
``--enable-logging=stderr`` whose ``CONSOLE`` lines are the page's console messages and
uncaught exceptions.  The report has no console calls at all, so any console line fails.

    python -m focalspec.reports.browser_check reports/out/index.html --screenshot shot.png
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]\s*(.*)$")


class BrowserUnavailable(RuntimeError):
    """No Chromium here and none could be installed (a reason, not a failure)."""


def find_chromium() -> str | None:
    env = os.environ.get("FOCALSPEC_CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium(install: bool = False) -> str:
    """The browser's path; with ``install``, ``apt-get install -y chromium`` first when
    missing (root on Debian/Ubuntu only).  Raises BrowserUnavailable with the reason."""
    path = find_chromium()
    if path or not install:
        if path:
            return path
        raise BrowserUnavailable("no chromium on PATH (apt-get install -y chromium)")
    if not shutil.which("apt-get"):
        raise BrowserUnavailable("no chromium on PATH and no apt-get to install it")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise BrowserUnavailable("no chromium on PATH and not root to apt-get install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "chromium"]):  # fmt: skip
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrowserUnavailable(f"apt-get failed: {exc}") from None
        path = find_chromium()
        if path:
            return path
    raise BrowserUnavailable("apt-get install -y chromium did not provide a chromium binary")


@dataclass
class BrowserCheck:
    """What the browser saw."""

    dom_has_matrix: bool = False
    matrix_rows: int = 0
    console: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    png_size: tuple[int, int] = (0, 0)
    distinct_colours: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _run(browser: str, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="focalspec-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"chromium did not finish within {timeout:.0f} s: {' '.join(cmd)}") from None


def console_lines(stderr: str) -> list[str]:
    """The page's console messages (and uncaught exceptions) from Chromium's log."""
    out = []
    for line in stderr.splitlines():
        m = CONSOLE.search(line)
        if m or "Uncaught" in line:
            out.append((m.group(1) if m else line).strip())
    return out


def check(
    html: Path,
    screenshot: Path | None = None,
    width: int = 1400,
    height: int = 1800,
    browser: str | None = None,
    timeout: float = 120.0,
) -> BrowserCheck:
    """Render ``html``; problems are listed in ``BrowserCheck.problems`` (empty when all is well)."""
    browser = browser or ensure_chromium()
    url = html.resolve().as_uri()
    result = BrowserCheck()
    dom = _run(browser, ["--dump-dom", url], timeout)
    if dom.returncode != 0:
        result.problems.append(f"chromium --dump-dom exited {dom.returncode}: {dom.stderr.strip()[-300:]}")
    m = re.search(r"<table[^>]*\bid=\"matrix\"[^>]*>(.*?)</table>", dom.stdout, re.S)
    result.dom_has_matrix = m is not None
    if m:
        result.matrix_rows = len(re.findall(r"<tr\b", m.group(1)))
    elif "<h2>Agreement matrix</h2>" in dom.stdout and "No data" in dom.stdout:
        result.problems.append("the page has no agreement matrix (no conformance results in the report)")
    else:
        result.problems.append("the rendered DOM has no <table id=\"matrix\">")
    result.console += console_lines(dom.stderr)
    shot_path = screenshot or Path(tempfile.mkdtemp(prefix="focalspec-shot-")) / "shot.png"
    shot_path.parent.mkdir(parents=True, exist_ok=True)
    shot = _run(browser, [f"--screenshot={shot_path.resolve()}", f"--window-size={width},{height}", url], timeout)
    result.console += [c for c in console_lines(shot.stderr) if c not in result.console]
    if not shot_path.is_file():
        result.problems.append(f"chromium wrote no screenshot (exit {shot.returncode}): {shot.stderr.strip()[-300:]}")
    else:
        result.screenshot = shot_path
        try:
            w, h, colours = png_stats(shot_path.read_bytes())
        except ValueError as exc:
            result.problems.append(f"screenshot is not a readable PNG: {exc}")
        else:
            result.png_size, result.distinct_colours = (w, h), colours
            if colours < 8:
                result.problems.append(f"screenshot looks blank ({colours} distinct colours)")
    if result.console:
        result.problems.append(f"console messages: {' | '.join(result.console[:5])}")
    return result


# ----------------------------------------------------------------------------- timing and views

# appended to a copy of the page: after the load event, the load time the browser measured
# (navigation start to the load event, ms) and the offset of one element go into attributes of
# <html>, which --dump-dom prints; the element's <details> ancestors are opened first, without
# scrolling (a scrolled headless screenshot comes out blank)
_PROBE = """<script>
window.addEventListener("load", function () {
  var d = document.documentElement, nav = performance.getEntriesByType("navigation")[0];
  d.setAttribute("data-load-ms", String(nav ? nav.loadEventStart : -1));
  var el = %s ? document.getElementById(%s) : null;
  if (el) {
    for (var n = el; n; n = n.parentElement) { if (n.tagName === "DETAILS") { n.open = true; } }
    window.scrollTo(0, 0);
    var box = el.getBoundingClientRect();
    d.setAttribute("data-top", String(Math.round(box.top)));
    d.setAttribute("data-bottom", String(Math.round(box.bottom)));
  }
  var sort = %s;
  if (sort) {
    var th = document.querySelector("#" + sort[0] + " th[data-col='" + sort[1] + "']");
    if (th) { th.click(); }
    var first = document.querySelector("#" + sort[0] + " tbody tr");
    d.setAttribute("data-first", first ? first.id : "");
  }
  var filter = document.getElementById("filter"), query = %s;
  if (filter && query) {
    filter.value = query;
    filter.dispatchEvent(new Event("input"));
    var shown = 0, rows = document.querySelectorAll("table.filterable tbody tr");
    for (var i = 0; i < rows.length; i++) { if (rows[i].style.display !== "none") { shown += 1; } }
    d.setAttribute("data-shown", String(shown));
  }
  var select = %s;
  if (select) {
    var found = document.querySelectorAll(select[0]), out = [];
    for (var j = 0; j < found.length; j++) {
      var r = found[j].getBoundingClientRect(), label = found[j].getAttribute(select[1]) || found[j].id || "";
      out.push(label + ":" + [r.left, r.right, r.top, r.bottom].map(Math.round).join(","));
    }
    d.setAttribute("data-boxes", out.join(";"));
  }
});
</script>"""


def _probe_copy(html: Path, fragment: str, folder: Path, query: str = "",
                sort: tuple[str, int] | None = None, select: tuple[str, str] | None = None) -> Path:
    """A copy of the page with the probe appended (the page itself is not touched)."""
    import json

    text = html.read_text(encoding="utf-8")
    probe = _PROBE % (json.dumps(fragment), json.dumps(fragment), json.dumps(list(sort) if sort else None),
                      json.dumps(query), json.dumps(list(select) if select else None))  # fmt: skip
    copy = folder / html.name
    cut = text.rfind("</body>")
    copy.write_text(text[:cut] + probe + text[cut:] if cut >= 0 else text + probe, encoding="utf-8")
    return copy


def _attr(dom: str, name: str) -> float | None:
    m = re.search(rf'<html[^>]*\b{name}="(-?[0-9.]+)"', dom)
    return float(m.group(1)) if m else None


def load_times(html: Path, runs: int = 3, browser: str | None = None, timeout: float = 120.0) -> list[float]:
    """The load event time (ms after navigation start) of ``runs`` fresh loads, each in a new
    headless Chromium with a fresh profile."""
    browser = browser or ensure_chromium()
    out = []
    with tempfile.TemporaryDirectory(prefix="focalspec-load-") as folder:
        copy = _probe_copy(html, "", Path(folder))
        for _ in range(runs):
            dom = _run(browser, ["--dump-dom", copy.resolve().as_uri()], timeout)
            ms = _attr(dom.stdout, "data-load-ms")
            if ms is None or ms < 0:
                raise RuntimeError(f"no load time in the dumped DOM (exit {dom.returncode})")
            out.append(ms)
    return out


@dataclass
class Probe:
    """Where an element lies after load, in CSS px from the page's top, and what the filter box left."""

    top: float | None
    bottom: float | None
    shown_rows: float | None
    console: list[str]
    first_row: str | None = None  # after a sort: the id of the sorted table's first row
    boxes: list[Box] = field(default_factory=list)  # with ``select``: the boxes of the matching elements


@dataclass(frozen=True)
class Box:
    """One element's box after load, in CSS px from the window's top left, and its label attribute."""

    label: str
    left: float
    right: float
    top: float
    bottom: float


def _boxes(dom: str) -> list[Box]:
    m = re.search(r'<html[^>]*\bdata-boxes="([^"]*)"', dom)
    out = []
    for item in (m.group(1).split(";") if m and m.group(1) else []):
        label, _, nums = item.rpartition(":")
        left, right, top, bottom = (float(v) for v in nums.split(","))
        out.append(Box(label, left, right, top, bottom))
    return out


def probe(html: Path, fragment: str = "", query: str = "", width: int = 1400, height: int = 900,
          browser: str | None = None, timeout: float = 120.0, sort: tuple[str, int] | None = None,
          select: tuple[str, str] | None = None) -> Probe:
    """Load the page once: the box of element ``fragment``; with ``sort`` (table id, column) a
    click on that column's header and the id of the first row after it; with ``query`` typed
    into the filter box, how many table rows stay visible; with ``select`` (a CSS selector, an
    attribute) the box of every matching element in document order, labelled by that attribute
    (else by its id, else ""); the console lines of that load."""
    browser = browser or ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="focalspec-probe-") as folder:
        copy = _probe_copy(html, fragment, Path(folder), query, sort, select)
        dom = _run(browser, [f"--window-size={width},{height}", "--dump-dom", copy.resolve().as_uri()], timeout)
    m = re.search(r'<html[^>]*\bdata-first="([^"]*)"', dom.stdout)
    return Probe(_attr(dom.stdout, "data-top"), _attr(dom.stdout, "data-bottom"), _attr(dom.stdout, "data-shown"),
                 console_lines(dom.stderr), m.group(1) if m else None, _boxes(dom.stdout))  # fmt: skip


def screenshot_at(html: Path, fragment: str, png: Path, width: int = 1400, height: int = 900,
                  browser: str | None = None, timeout: float = 120.0) -> tuple[int, int]:
    """A ``width`` x ``height`` screenshot whose top is the element ``fragment`` (its <details>
    opened), or the page's top for ""; returns the PNG's size.  The page is drawn in a window
    tall enough to hold the element's screen below it, and the PNG cropped to that screen."""
    browser = browser or ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="focalspec-view-") as folder:
        copy = _probe_copy(html, fragment, Path(folder))
        top = 0
        if fragment:
            found = probe(html, fragment, width=width, height=height, browser=browser, timeout=timeout).top
            if found is None:
                raise RuntimeError(f"no element with id {fragment!r} in {html.name}")
            top = max(0, int(found) - 8)
        full = Path(folder) / "full.png"
        _run(browser, [f"--screenshot={full}", f"--window-size={width},{top + height}", copy.resolve().as_uri()],
             timeout)
        if not full.is_file():
            raise RuntimeError("chromium wrote no screenshot")
        w, _, channels, rows = png_rows(full.read_bytes())
        kept = rows[top : top + height]
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(png_encode(w, len(kept), channels, kept))
        return w, len(kept)


# ----------------------------------------------------------------------------- PNG


def png_encode(width: int, height: int, channels: int, rows: Sequence[bytes]) -> bytes:
    """An 8-bit RGB (3) or RGBA (4) PNG of ``rows`` (unfiltered)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[channels], 0, 0, 0)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def png_rows(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, channels, decoded rows) of an 8-bit RGB/RGBA PNG."""
    width, height, channels, raw = _png_raw(data)
    stride = width * channels
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, prev, channels)
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def _png_raw(data: bytes) -> tuple[int, int, int, bytes]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, ctype, _, _, interlace = header
    channels = {2: 3, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG (bit depth {depth}, colour type {ctype}, interlace {interlace})")
    return width, height, channels, zlib.decompress(idat)


def png_stats(data: bytes, limit: int = 4096) -> tuple[int, int, int]:
    """(width, height, distinct colours, counted up to ``limit``) of an 8-bit RGB/RGBA PNG."""
    width, height, channels, raw = _png_raw(data)
    stride = width * channels
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        start = y * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(ftype, line, prev, channels)
        if y % 4 == 0 and len(colours) < limit:
            for x in range(0, stride, channels * 4):
                colours.add(bytes(line[x : x + 3]))
        prev = line
    return width, height, len(colours)


def _unfilter(ftype: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    if ftype == 0:
        return
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        if ftype == 1:
            line[i] = (line[i] + a) & 0xFF
        elif ftype == 2:
            line[i] = (line[i] + b) & 0xFF
        elif ftype == 3:
            line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
        elif ftype == 4:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pred) & 0xFF
        else:
            raise ValueError(f"bad PNG filter type {ftype}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m focalspec.reports.browser_check", description=__doc__.splitlines()[0])
    p.add_argument("html", type=Path)
    p.add_argument("--screenshot", type=Path, default=None)
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=1800)
    p.add_argument("--view", default=None, metavar="ID",
                   help="instead of the check: a --width x --height screenshot whose top is element ID ('' = top)")
    p.add_argument("--load-times", type=int, default=0, metavar="N", help="also measure the load event N times")
    p.add_argument("--install", action="store_true", help="apt-get install chromium when missing")
    args = p.parse_args(argv)
    if not args.html.is_file():
        print(f"browser_check: error: no such file: {args.html}", file=sys.stderr)
        return 2
    try:
        browser = ensure_chromium(install=args.install)
        if args.view is not None:
            out = args.screenshot or Path("view.png")
            w, h = screenshot_at(args.html, args.view, out, args.width, args.height, browser=browser)
            print(f"wrote {out} ({w}x{h}) at #{args.view}")
            return 0
        if args.load_times:
            times = load_times(args.html, args.load_times, browser=browser)
            print(f"{args.html.stat().st_size / 1e6:.2f} MB; load event (ms): "
                  + ", ".join(f"{t:.0f}" for t in times) + f"; median {sorted(times)[len(times) // 2]:.0f}")
        r = check(args.html, args.screenshot, args.width, args.height, browser=browser)
    except (BrowserUnavailable, RuntimeError) as exc:
        print(f"browser_check: error: {exc}", file=sys.stderr)
        return 2
    print(f"matrix table: {'present' if r.dom_has_matrix else 'MISSING'} ({r.matrix_rows} rows); "
          f"screenshot {r.screenshot} {r.png_size[0]}x{r.png_size[1]}, {r.distinct_colours} colours; "
          f"console messages: {len(r.console)}")
    for prob in r.problems:
        print(f"problem: {prob}")
    return 0 if r.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
