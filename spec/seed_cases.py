"""The seed articles' worked examples as catalogue cases, each with the number the article printed.

Kept apart from the rest of the catalogue because they are a transcription (quotes, printed
numbers, the formula printed beside them) rather than a design: ``focalspec golden --errata``
checks every printed number against its certified value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from focalspec.spec.case import SECTIONS, Case
from focalspec.spec.variant import Variant

SEED000 = "seed 000 (Anwla, 'Focal loss in object detection')"
SEED001 = "seed 001 (Chadrick blog, 'Focal Loss (a.k.a RetinaNet) paper review')"
SEED002 = "seed 002 (Marovi AI, 'Focal Loss')"

CE = Variant(input_kind="probs", gamma=0.0, alpha=None)  # plain cross-entropy
BCE = Variant(input_kind="probs", gamma=0.0, alpha=0.25)  # alpha-balanced cross-entropy
FL = Variant(input_kind="probs", gamma=2.0, alpha=0.25)  # RetinaNet focal loss
FL_NOALPHA = Variant(input_kind="probs", gamma=2.0, alpha=None)  # focal loss without balancing


def _ratio(numerator: Variant | str, denominator: Variant | str, definition: str) -> dict[str, Any]:
    """``extra`` entry for a derived quantity: loss(numerator) / loss(denominator), same inputs."""

    def enc(v: Variant | str) -> Any:
        return v if isinstance(v, str) else v.to_dict()

    return {"quantity": {"numerator": enc(numerator), "denominator": enc(denominator), "definition": definition}}


# ----------------------------------------------------------------------------- seed articles


def _printed000(
    case_id: str, v: Variant, p: str, y: int, note: str, quote: str, printed: str, expr: str, what: str,
    extra: dict[str, Any] | None = None, tags: tuple[str, ...] = ("worked-example", "probs"),
) -> Case:
    """A seed-000 example: its printed number, the formula printed beside it and the sentence quoted."""
    source = f"{SEED000}: '{quote}'"
    return Case(case_id, v, p, y, tags, note, SECTIONS["probs"], printed, source,
                {**(extra or {}), "printed_expression": expr, "what": what})  # fmt: skip


def _seed000() -> Iterator[Case]:
    # (scenario, class, p, y): the article's BG rows use y = 0 with p the probability of class 1.
    scen = {
        "easy": {"fg": ("0.95", 1), "bg": ("0.05", 0)},
        "miscls": {"fg": ("0.05", 1), "bg": ("0.95", 0)},
        "veryeasy": {"fg": ("0.99", 1), "bg": ("0.01", 0)},
    }
    # CE examples of the 'Problem with Cross-Entropy' section (two decimals), then balanced CE.
    for kind, v, cls, expr, printed in (
        ("ce", CE, "fg", "-ln(0.95)", "0.05"),
        ("ce", CE, "bg", "-ln(1-0.05)", "0.05"),
        ("bce", BCE, "fg", "-0.25*ln(0.95)", "0.0128"),
        ("bce", BCE, "bg", "-(1-0.25)*ln(1-0.05)", "0.038"),
    ):
        p, y = scen["easy"][cls]
        c = cls.upper()
        if kind == "ce":
            case_id, what = f"seed000_ce_{cls}_easy_short", f"CE({c}), easy"
            note = f"CE of the easily classified {c} (p={p}, y={y}), printed to two decimals."
        else:
            case_id, what = f"seed000_bce_{cls}_easy", f"balanced CE({c}), easy"
            note = f"alpha-balanced CE (alpha=0.25) of the easily classified {c} (p={p}, y={y})."
        yield _printed000(case_id, v, p, y, note, f"CE({c}) = {expr} = {printed}", printed, expr, what)
    for sc in ("miscls", "veryeasy"):
        for cls in ("fg", "bg"):
            p, y = scen[sc][cls]
            yield Case(
                f"seed000_bce_{cls}_{sc}", BCE, p, y, ("worked-example", "probs"),
                f"alpha-balanced CE (alpha=0.25) of the {sc} {cls.upper()} (p={p}, y={y}); the article prints "
                "balanced CE for the easy scenario only, this completes the table.",
                SECTIONS["probs"], None, SEED000,
            )  # fmt: skip
    # Modulating factors (1 - p_t)^2 of the 'Focal loss explanation' examples.
    factor = _ratio("self", CE, "modulating factor (1-p_t)^gamma = FL(gamma=2, alpha=None) / CE on the same input")
    for cls, p, y, expr, printed in (
        ("fg", "0.99", 1, "(1-0.99)^2", "0.0001"),
        ("bg", "0.01", 0, "(1-(1-0.01))^2", "0.0001"),
        ("fg", "0.01", 1, "(1-0.01)^2", "0.9801"),
        ("bg", "0.99", 0, "(1-(1-0.99))^2", "0.9801"),
    ):
        sc = "veryeasy" if printed == "0.0001" else "miscls"
        c = cls.upper()
        yield _printed000(
            f"seed000_factor_{cls}_{sc}", FL_NOALPHA, p, y, f"(1-p_t)^2 for the {c} with p={p}, y={y}.",
            f"Modulating factor ({c}) = {expr} = {printed}", printed, expr, f"modulating factor ({c}), {sc}", factor,
        )
    # 'Cross-Entropy vs Focal Loss': CE and FL (alpha 0.25, gamma 2) for the three scenarios, as printed
    # (the formula of FL(FG) in the very easy scenario has 1-0.01 for 1-0.99: an erratum the check reports).
    scenarios = ("easy", "miscls", "veryeasy")
    formulas = {
        ("ce", "fg"): ("-ln(0.95)", "-ln(0.05)", "-ln(0.99)"),
        ("ce", "bg"): ("-ln(1-0.05)", "-ln(1-0.95)", "-ln(1-0.01)"),
        ("fl", "fg"): ("-0.25*(1-0.95)^2*ln(0.95)", "-0.25*(1-0.05)^2*ln(0.05)", "-0.25*(1-0.01)^2*ln(0.99)"),
        ("fl", "bg"): ("-0.75*(1-(1-0.05))^2*ln(1-0.05)", "-0.75*(1-(1-0.95))^2*ln(1-0.95)",
                       "-0.75*(1-(1-0.01))^2*ln(1-0.01)"),
    }  # fmt: skip
    numbers = {
        ("ce", "fg"): ("0.0512932943875505", "2.995732273553991", "0.0100503358535014"),
        ("ce", "bg"): ("0.051293294387550", "2.995732273553992", "0.0100503358535014"),
        ("fl", "fg"): ("3.2058308992219E-5", "0.675912094220619", "2.51*10^-7"),
        ("fl", "bg"): ("9.61E-5", "2.027736282661858", "7.5377518901261E-7"),
    }
    for i, sc in enumerate(scenarios):
        for kind, cls in formulas:
            expr, printed = formulas[kind, cls][i], numbers[kind, cls][i]
            p, y = scen[sc][cls]
            v = CE if kind == "ce" else FL
            what = "CE" if kind == "ce" else "FL (alpha=0.25, gamma=2)"
            k, c = kind.upper(), cls.upper()
            note = f"{what} of the {sc} {c} (p={p}, y={y}), section 'Cross-Entropy vs Focal Loss'."
            yield _printed000(f"seed000_{kind}_{cls}_{sc}", v, p, y, note, f"{k}({c}) = {expr} = {printed}", printed,
                              expr, f"{k}({c}), {sc}")  # fmt: skip
    # 'Final Thoughts': CE/FL ratios of the FG rows.
    ratio_def = "CE(p_t) / FL(p_t) for the FG row: -ln p_t / (-0.25 (1-p_t)^2 ln p_t) = 1 / (0.25 (1-p_t)^2)"
    ratio = _ratio(CE, "self", ratio_def)
    for n, (sc, p, expr, printed) in enumerate((
        ("easy", "0.95", "0.05129/(3.2058*10^-7)", "1600"),
        ("miscls", "0.05", "2.3/0.667", "4.5"),
        ("veryeasy", "0.99", "0.01/0.00000025", "40,000"),
    ), start=1):  # fmt: skip
        yield _printed000(
            f"seed000_ratio_{sc}", FL, p, 1, f"'times smaller' ratio CE/FL of scenario {n} (FG, p={p}, y=1).",
            f"scenario-{n}: {expr} = {printed} times smaller number", printed, expr, f"ratio CE/FL, scenario {n}",
            ratio, ("worked-example", "ratio", "probs"),
        )


def _seed001() -> Iterator[Case]:
    sec = SECTIONS["reduction"]
    pos_note = (
        "positives predicted with p = 0.02 (y = 1): CE = -ln 0.02 = 3.91; the article says 'a loss of 5' "
        "(read off the CE curve of the paper's Figure 1, whose axis ends at 5)."
    )
    neg_note = (
        "negatives 'correctly predicted with 0.6 confidence': the prediction is right (background) with "
        "confidence 0.6, so p_t = 0.6, i.e. y = 0 and p(class 1) = 0.4; CE = -ln 0.6 = 0.51, which the "
        "article calls 'approximately 1'. The other reading (a negative scored 0.6 as object) is "
        "seed001_neg_ce_alt."
    )
    src_pos = f"{SEED001}: 'the probability of these positives boxes are somewhere near 0.02 so that each of "
    yield Case(
        "seed001_pos_ce", CE, "0.02", 1, ("worked-example", "probs"), pos_note, SECTIONS["probs"], "5",
        src_pos + "the positive boxes generate a loss of 5'", {"what": "CE of a positive at p = 0.02"},
    )  # fmt: skip
    yield Case(
        "seed001_neg_ce", CE, "0.4", 0, ("worked-example", "probs"), neg_note, SECTIONS["probs"], "1",
        f"{SEED001}: 'its probability has been correctly predicted with 0.6 confidence. That means that each "
        "negative box created a loss approximately 1'", {"what": "CE of a negative at p_t = 0.6"},
    )  # fmt: skip
    yield Case(
        "seed001_neg_ce_alt", CE, "0.6", 0, ("worked-example", "probs"),
        "alternative reading of the negatives: a background box scored p(object) = 0.6 (the 'object if "
        "confidence over 0.6' threshold), y = 0, CE = -ln 0.4 = 0.92. Not what the text says ('correctly "
        "predicted'), kept to show that 'approximately 1' fits this reading better.",
        SECTIONS["probs"], "1", f"{SEED001}: 'a loss approximately 1'",
        {"what": "CE of a negative at p(object) = 0.6 (alternative reading)"},
    )  # fmt: skip
    ce_sum, fl_sum = CE.with_(reduction="sum"), FL_NOALPHA.with_(reduction="sum")
    yield Case(
        "seed001_lpos_sum_ce", ce_sum, ["0.02"] * 10, [1] * 10, ("worked-example", "probs", "reduction"),
        "L_pos: sum of the CE of 10 positives with p = 0.02. " + pos_note, sec, "50",
        f"{SEED001}: 'L_pos = 5 x 10 = 50'", {"printed_expression": "5*10", "what": "L_pos (CE sum, 10 positives)"},
    )  # fmt: skip
    yield Case(
        "seed001_lneg_sum_ce", ce_sum, ["0.4"] * 235, [0] * 235, ("worked-example", "probs", "reduction"),
        "L_hn + L_en: sum of the CE of 235 negatives with p_t = 0.6. " + neg_note, sec, "235",
        f"{SEED001}: 'L_hn + L_en = 235 x 1 = 235'",
        {"printed_expression": "235*1", "what": "L_hn + L_en (CE sum, 235 negatives)"},
    )  # fmt: skip
    yield Case(
        "seed001_lpos_sum_fl", fl_sum, ["0.02"] * 10, [1] * 10, ("worked-example", "probs", "reduction"),
        "focal-loss counterpart (gamma = 2, no alpha, as the article writes FL) of L_pos; not printed.",
        sec, None, SEED001,
    )  # fmt: skip
    yield Case(
        "seed001_lneg_sum_fl", fl_sum, ["0.4"] * 235, [0] * 235, ("worked-example", "probs", "reduction"),
        "focal-loss counterpart (gamma = 2, no alpha) of L_hn + L_en: 'the loss of 235 negatives would reduce "
        "drastically'; not printed.",
        sec, None, SEED001,
    )  # fmt: skip


def _seed002() -> Iterator[Case]:
    src = f"{SEED002}: 'with gamma = 2 and p_t = 0.9, the modulating factor is 0.01, giving a 100x reduction'"
    yield Case(
        "seed002_factor_pt0.9", FL_NOALPHA, "0.9", 1, ("worked-example", "probs"),
        "(1-p_t)^2 at p_t = 0.9 (y = 1, p = 0.9).", SECTIONS["probs"], "0.01", src,
        {**_ratio("self", CE, "modulating factor (1-p_t)^2 = FL(gamma=2, alpha=None) / CE"),
         "printed_expression": "(1-0.9)^2", "what": "modulating factor at p_t = 0.9"},
    )  # fmt: skip
    yield Case(
        "seed002_reduction_pt0.9", FL_NOALPHA, "0.9", 1, ("worked-example", "ratio", "probs"),
        "the '100x reduction' relative to cross-entropy: CE / FL at p_t = 0.9, gamma = 2.", SECTIONS["probs"],
        "100", src, {**_ratio(CE, "self", "reduction factor CE / FL(gamma=2, alpha=None) = (1-p_t)^-2"),
         "what": "reduction CE/FL at p_t = 0.9"},
    )  # fmt: skip


def seed_cases() -> Iterator[Case]:
    """Every worked example of the three seed articles, in catalogue order."""
    yield from _seed000()
    yield from _seed001()
    yield from _seed002()
