"""The page's colours, in one place, with the contrast they must keep (WCAG 2 AA: 4.5:1 for text).

Grades keep the Okabe-Ito hues (distinguishable with the common colour-vision deficiencies);
where white text on a hue fell short (white on #009E73 is 3.4:1, on #D55E00 3.9:1) the text is
black instead.  Severities get their own scale, darkest for the most harmful.  The template
writes its badge and cell styles from these tables, and tests/test_report.py computes every
pair's contrast from them and from the page's own <style>.
"""

from __future__ import annotations

# class -> (background, text)
GRADES: dict[str, tuple[str, str]] = {
    "exact": ("#0072B2", "#ffffff"),
    "faithful": ("#56B4E9", "#000000"),
    "accurate": ("#009E73", "#000000"),
    "acceptable": ("#F0E442", "#000000"),
    "pass": ("#BFE3D6", "#000000"),
    "fail": ("#D55E00", "#000000"),
    "none": ("#ffffff", "#595959"),
}
SEVERITY: dict[str, tuple[str, str]] = {
    "critical": ("#8E0013", "#ffffff"),
    "major": ("#D55E00", "#000000"),
    "minor": ("#F0E442", "#000000"),
    "policy": ("#E4E4E4", "#333333"),
}
# "safe to train with?"
SAFE: dict[str, tuple[str, str]] = {
    "no": ("#8E0013", "#ffffff"),
    "caution": ("#D55E00", "#000000"),
    "yes": ("#0072B2", "#ffffff"),
    "not run": ("#ffffff", "#595959"),
}
# hatched backgrounds (skipped, not required, unavailable): the text must read on both stripes
HATCHES: dict[str, tuple[str, str, str]] = {
    "skipped": ("#e6e6e6", "#f3f3f3", "#333333"),
    "policy": ("#dcdcdc", "#f0f0f0", "#333333"),
    "unavail": ("#f1f1f1", "#fafafa", "#404040"),
}
TEXT = "#1b1b1b"
MUTED = "#595959"
LINK = "#0b5cad"
BACKGROUND = "#ffffff"


def _channel(c: int) -> float:
    v = c / 255.0
    return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4


def luminance(hex_colour: str) -> float:
    """Relative luminance (WCAG 2) of '#rgb' or '#rrggbb'."""
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(ch * 2 for ch in h)
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two colours, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def pairs() -> list[tuple[str, str, str]]:
    """Every (name, background, text) pair the page paints."""
    out = [(f"grade {k}", bg, fg) for k, (bg, fg) in GRADES.items()]
    out += [(f"severity {k}", bg, fg) for k, (bg, fg) in SEVERITY.items()]
    out += [(f"safe {k}", bg, fg) for k, (bg, fg) in SAFE.items()]
    for k, (a, b, fg) in HATCHES.items():
        out += [(f"hatch {k} stripe 1", a, fg), (f"hatch {k} stripe 2", b, fg)]
    out += [("text", BACKGROUND, TEXT), ("muted", BACKGROUND, MUTED), ("link", BACKGROUND, LINK)]
    return out
