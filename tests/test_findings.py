"""The findings of reports/findings_verified.json stay found.

For each recorded defect whose implementation is installed here *at the recorded version*
(library and framework), the implementation is run again on the finding's exact input and
focalspec's grading must still flag it: an error beyond the 'acceptable' budget, a
non-finite result where the reference is finite, or the same error raised.  The certified
expected value must also be the recorded one, so neither a change to the grading nor a
stale file can silently hide a finding.  Another installed version is a skip that says so
(an upstream fix shows up as that skip, not as a false failure).  The file's shape, and its
agreement with reports/FINDINGS.md, are checked everywhere.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pytest
from thirdparty_support import FINDINGS_JSON, ROOT, get_impl, measure_finding

from focalspec.spec.variant import Variant

FINDINGS = json.loads(FINDINGS_JSON.read_text())
FIELDS = {
    "id", "implementation", "adapter", "version", "variant", "inputs", "targets", "dtype", "check",
    "expected", "observed", "err_u", "cause", "spec_section", "reproducer",
}  # fmt: skip


def _floats(v: object) -> np.ndarray:
    """JSON numbers, with "inf"/"nan" strings for the non-finite ones, as a float array."""
    return np.asarray(v if not isinstance(v, str) else float(v), dtype=np.float64)


def test_findings_file_is_complete() -> None:
    ids = [f["id"] for f in FINDINGS]
    assert len(ids) == len(set(ids)), "duplicate finding id"
    for f in FINDINGS:
        missing = FIELDS - set(f)
        assert not missing, f"{f.get('id')}: missing {sorted(missing)}"
        assert re.fullmatch(r"F-[A-Z]+-\d+", f["id"]), f["id"]
        Variant.from_dict(f["variant"])  # a valid spec variant
        assert f["check"] in ("value", "grad") and f["dtype"] in ("float64", "float32")
        assert f["spec_section"].startswith("§") and f["cause"] and f["reproducer"].startswith("python -c")
        assert f["version"], f"{f['id']}: never measured"
        err = float(f["err_u"])
        assert err > 0 and (math.isinf(err) or err > 100), f"{f['id']}: recorded error {err} is no defect"


def test_every_finding_is_written_up() -> None:
    text = (ROOT / "reports" / "FINDINGS.md").read_text()
    for f in FINDINGS:
        assert f"### {f['id']}" in text, f"{f['id']} has no section in reports/FINDINGS.md"


@pytest.mark.parametrize("finding", FINDINGS, ids=[f["id"] for f in FINDINGS])
def test_finding_is_still_flagged(finding: dict) -> None:  # type: ignore[type-arg]
    impl = get_impl(finding["adapter"])
    reason = impl.unavailable_reason()
    if reason:
        pytest.skip(f"{finding['adapter']}: {reason}")
    have = (impl.package_version(), impl.framework_version())
    recorded = (finding["version"], finding.get("framework_version"))
    if have != recorded:
        pytest.skip(
            f"{finding['id']} was recorded on {impl.package} {recorded[0]} / {finding.get('framework')} {recorded[1]}; "
            f"installed: {have[0]} / {have[1]} -- re-measure with tests/thirdparty_support.py findings"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        now = measure_finding(finding)
    np.testing.assert_array_equal(_floats(now["expected"]), _floats(finding["expected"]))
    observed = finding["observed"]
    if isinstance(observed, str) and observed.startswith("error:"):
        assert isinstance(now["observed"], str), f"{finding['id']}: no longer raises, now {now['observed']!r}"
        assert observed.split(":")[2].strip() in now["observed"], now["observed"]
        return
    assert now["flagged"], f"{finding['id']}: grading no longer flags it (err {now['err_u']:.4g} u)"
    rec_obs, now_obs = _floats(observed), _floats(now["observed"])
    assert np.array_equal(np.isnan(rec_obs), np.isnan(now_obs)), f"{finding['id']}: NaN pattern changed"
    if not np.isinf(float(finding["err_u"])):
        assert now["err_u"] > now["acceptable"]


def test_another_installed_version_is_a_skip_not_a_failure() -> None:
    """A finding pinned to a version that is not installed (an upstream release that may have
    fixed it) must skip with both versions named."""
    finding = dict(FINDINGS[0], version="0.0.0-recorded-elsewhere")
    if get_impl(finding["adapter"]).unavailable_reason():
        pytest.skip(f"{finding['adapter']} is not installed here")
    with pytest.raises(pytest.skip.Exception, match=r"recorded on .* 0\.0\.0-recorded-elsewhere"):
        test_finding_is_still_flagged(finding)
