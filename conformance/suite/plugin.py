"""pytest plugin of the focalspec conformance suite (entry point ``pytest11``: ``focalspec``).

Run the suite with ``pytest --pyargs focalspec.conformance [--focal-... options]``; every
option is also an environment variable ``FOCAL_<NAME>`` (``conformance/suite/options.py``).  The
plugin is loaded in every pytest session of an environment where focalspec is installed,
so it does nothing -- loads no adapter, imports no framework -- until a test that asks for
the ``focal_check`` parameter is collected.

Tests are ``test_value``, ``test_grad`` and ``test_invariant`` parametrised as
``ADAPTER-DEVICE-DTYPE-MODE-CASE`` (e.g. ``test_grad[torchvision-cpu-float32-eager-sat_large_g0.5]``).
An adapter that is unavailable, or does not support a combination, gives a skip carrying the
adapter's reason.  Required grade: ``--focal-grade``, else 'accurate' for focalspec's own
adapters and 'acceptable' for shipped third-party implementations and ``--focal-impl`` callables
(``grading.default_required_grade``).  ``--focal-timeout``, ``--focal-isolate`` and the fault
budgets: see ``isolation`` (a worker process killed and replaced when the implementation
crashes, hangs or blows its memory limit).  The results JSON (and JUnit) are snapshotted every
``SNAPSHOT_S`` seconds and written on Ctrl-C/SIGTERM with ``run.status`` saying which.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest

from focalspec.conformance.diagnosis import causes
from focalspec.conformance.suite import distributed, results, summary, tiers
from focalspec.conformance.suite.lists import ListEntry, read_list
from focalspec.conformance.suite.options import Options, add_options
from focalspec.conformance.suite.record import CheckRecord
from focalspec.spec.variant import SpecError

CHECKS = {"test_value": "value", "test_grad": "grad", "test_invariant": "invariant", "test_contract": "contract"}
SNAPSHOT_S = 5.0


class State:
    """Per-session state of the plugin (kept in ``config.stash``)."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self.config = config
        self.options = options
        self.suite: Any = None
        self.started = results.now_iso()
        self.static: dict[str, dict[str, Any]] = {}
        self.entries: dict[str, CheckRecord] = {}
        self.xfails = read_list(options.xfails, "xfails") if options.xfails else []
        self.skips = read_list(options.skips, "skips") if options.skips else []
        self.json_path: str | None = None
        self.sweep_error: str | None = None
        self.last_snapshot = -SNAPSHOT_S  # the first one after the first test, then every SNAPSHOT_S
        self.snapshot_entries = 0
        self.worker = distributed.is_worker(config)
        self.collected = distributed.Collected()  # under xdist, the controller's merge of its workers
        self.minimal: list[dict[str, Any]] = []  # bisected smallest failing inputs (shrink.py)

    @property
    def minimal_records(self) -> list[dict[str, Any]]:
        """The session's shrink records: its own, or under xdist its workers'."""
        return self.minimal if self.suite is not None else self.collected.minimal

    @property
    def controller(self) -> bool:
        return distributed.is_controller(self.config)

    @property
    def lists(self) -> dict[str, list[ListEntry]]:
        return {"xfails": self.xfails, "skips": self.skips}

    def get_suite(self) -> Any:
        """The session's suite, built on first use; SpecError for an unusable option."""
        if self.suite is None:
            from focalspec.conformance.suite.runner import Suite

            self.suite = Suite(self.options)
            self.suite.on_slow_call = lambda: self.snapshot(force=True)
        return self.suite

    # -------------------------------------------------------------- reports

    def on_report(self, report: pytest.TestReport) -> None:
        static = self.static.get(report.nodeid)
        if static is None:
            carried = getattr(report, distributed.ENTRY_ATTR, None)
            if carried is not None and self.controller:  # a worker's entry, complete for this phase
                self.entries[report.nodeid] = CheckRecord.from_json(carried)
            return
        e = self.entries.get(report.nodeid)
        if e is None:
            e = self.entries[report.nodeid] = CheckRecord(report.nodeid, dict(static))
        wasxfail = hasattr(report, "wasxfail")
        unrequired = wasxfail and unrequired_tier(report) is not None
        if report.when == "setup":
            if report.skipped:
                e.outcome = "xfailed" if wasxfail else "skipped"
                e.skip_reason = _skip_reason(report)
            elif report.failed:
                e.outcome = "error"
                e.message = _first_line(report)
        elif report.when == "call":
            e.duration_s = round(report.duration, 6)
            if report.passed:
                e.outcome = "xpassed" if wasxfail else "passed"
            elif report.failed or unrequired:
                e.outcome = "failed"
            else:
                e.outcome = "xfailed" if wasxfail else "skipped"
                if not wasxfail:
                    e.skip_reason = _skip_reason(report)
            if e.outcome == "xpassed":
                for entry in self.xfails:
                    if report.nodeid in entry.matched:
                        entry.xpassed.append(report.nodeid)
        elif report.when == "teardown" and report.failed and e.outcome in ("passed", None):
            e.outcome = "error"
            e.message = _first_line(report)
        graded = self.suite.records.get(report.nodeid) if self.suite is not None else None
        if graded is not None:
            e.take_graded(graded)
        if e.outcome in ("failed", "error"):
            e.failure_tier = e.failure_tier or e.tier
            e.tier_required = e.failure_tier in self.options.require
            if not e.cause:  # failed outside the runner (setup, teardown): from the entry
                v = causes.classify_entry(e.to_json())
                e.cause, e.cause_detail, e.cause_example = v.cause, v.detail, v.example
        if self.worker:
            setattr(report, distributed.ENTRY_ATTR, distributed.plain(e.to_json()))

    def entry_dicts(self) -> list[dict[str, Any]]:
        """The test entries of the results JSON so far (``CheckRecord.to_json``)."""
        return [e.to_json() for e in self.entries.values()]

    def document(self, status: str, sweep_data: list[dict[str, Any]]) -> dict[str, Any]:
        """The results JSON of what has run so far (``status``: finished, interrupted, running)."""
        stale_x, stale_s = self.stale()
        return results.document(
            depth=self.options.depth,
            started=self.started,
            finished=results.now_iso(),
            command=results.command_line(),
            adapters=self.adapter_entries(),
            tests=self.entry_dicts(),
            sweeps=sweep_data,
            stale_xfails=[e.pattern for e in stale_x],
            stale_skips=[e.pattern for e in stale_s],
            status=status,
            minimal=self.minimal_records,
        )

    def adapter_entries(self) -> list[dict[str, Any]]:
        if self.suite is None:  # the xdist controller: what its workers reported
            return list(self.collected.adapters.values())
        return [results.adapter_entry(a, self.suite.ran.get(a.name)) for a in self.suite.adapters]

    def snapshot(self, force: bool = False) -> None:
        """Every SNAPSHOT_S, the JSON (and JUnit) of what has run, so that a run killed from
        outside or crashing in its own process still leaves its completed checks behind;
        ``force``: now, if anything ran since the last one (a call is slow: it may hang)."""
        xml = getattr(self.config.option, "xmlpath", None)
        if self.worker or (self.suite is None and not self.controller) or not (self.options.json or xml):
            return
        if force and len(self.entries) == self.snapshot_entries:
            return
        if not force and time.monotonic() - self.last_snapshot <= SNAPSHOT_S:
            return
        self.snapshot_entries = len(self.entries)
        t0 = time.monotonic()
        doc = self.document("running", [])
        if self.options.json:
            results.write(self.options.json, doc)
        if xml:
            from pathlib import Path

            from focalspec.conformance.suite.junit import write_junit

            write_junit([], doc, Path(xml))
        # never more than ~10 % of the run: a big run's JSON takes a while to write
        self.last_snapshot = time.monotonic() + 9 * (time.monotonic() - t0)

    def stale(self) -> tuple[list[ListEntry], list[ListEntry]]:
        xf = [e for e in self.xfails if not e.matched or e.xpassed]
        sk = [e for e in self.skips if not e.matched]
        return xf, sk


def _skip_reason(report: pytest.TestReport) -> str | None:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        reason = str(lr[2])
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    wx = getattr(report, "wasxfail", None)
    return str(wx) if wx else None


def _first_line(report: pytest.TestReport) -> str:
    text = report.longreprtext.strip().splitlines()
    return text[-1][:500] if text else ""


STATE = pytest.StashKey[State]()


# ----------------------------------------------------------------------------- hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    try:
        options = Options.from_config(config)
        config.stash[STATE] = State(config, options)
    except SpecError as exc:
        raise pytest.UsageError(f"focalspec: {exc}") from None


def minimal_of(config: pytest.Config) -> list[dict[str, Any]]:
    """The session's shrink records (its own, or under xdist its workers')."""
    state = _state(config)
    return [] if state is None else state.minimal_records


def required_not_run(config: pytest.Config) -> list[str]:
    """The required tiers no check of the session belonged to (a quick run's compile tier)."""
    state = _state(config)
    if state is None:
        return []
    ran = {t for row in tiers.summarize(state.entry_dicts()).values() for t, (n, _) in row.items() if n}
    return [t for t in state.options.require if t not in ran]


def _state(config: pytest.Config) -> State | None:
    return config.stash.get(STATE, None)


def _targets_conformance(config: pytest.Config) -> bool:
    """Whether the session's arguments name the conformance package (or a folder holding it)."""
    from pathlib import Path

    import focalspec.conformance as pkg

    pkgdir = Path(pkg.__file__).resolve().parent
    for arg in config.args:
        base = str(arg).split("::")[0]
        if base == pkg.__name__ or base.startswith(pkg.__name__ + "."):
            return True
        p = Path(base).resolve()
        if p == pkgdir or pkgdir in p.parents or p in pkgdir.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Build the suite before collection so that a bad option is one 'ERROR:' line (exit 4)."""
    state = _state(session.config)
    if state is None or state.controller or not _targets_conformance(session.config):
        return
    try:
        state.get_suite()
    except SpecError as exc:
        raise pytest.UsageError(f"focalspec: {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "focal_check" not in metafunc.fixturenames:
        return
    state = _state(metafunc.config)
    assert state is not None
    try:
        suite = state.get_suite()
    except SpecError as exc:  # collected without naming the package (e.g. through a copy): stop cleanly
        pytest.exit(f"focalspec: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    check = CHECKS.get(metafunc.function.__name__)
    if check is None:
        raise pytest.UsageError(f"focal_check is for {', '.join(CHECKS)} only")
    params = []
    for p in suite.params():
        if p.check != check:
            continue
        marks = [pytest.mark.skip(reason=p.skip)] if p.skip else []
        params.append(pytest.param(p, id=p.id, marks=marks))
    metafunc.parametrize("focal_check", params)


@pytest.fixture(scope="session")
def focal_suite(request: pytest.FixtureRequest) -> Any:
    """The session's ``runner.Suite``."""
    state = _state(request.config)
    assert state is not None
    try:
        return state.get_suite()
    except SpecError as exc:
        pytest.exit(f"focalspec: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def _focal_param(item: pytest.Item) -> Any:
    """The params.Param of a suite item (None for another test, or pytest's empty-set placeholder)."""
    callspec = getattr(item, "callspec", None)
    p = callspec.params.get("focal_check") if callspec is not None else None
    return p if hasattr(p, "static") else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    if state is None or state.suite is None:
        return
    focal: list[tuple[tuple[Any, ...], pytest.Item]] = []
    others: list[pytest.Item] = []
    order_adapter = {a.name: i for i, a in enumerate(state.suite.adapters)}
    order_case = {c.id: i for i, c in enumerate([*state.suite.cases, *state.suite.invariants])}
    from focalspec.conformance.suite.runner import CHECK_ORDER

    empty: list[pytest.Item] = []
    for item in items:
        p = _focal_param(item)
        if p is None and "focal_check" in getattr(getattr(item, "callspec", None), "params", {}):
            empty.append(item)  # pytest's placeholder for an empty parameter set: nothing to run
            continue
        if p is None:
            others.append(item)
            continue
        state.static[item.nodeid] = {**p.static(), "tier": tiers.param_tier(p)}
        names = (item.nodeid, item.name, p.id, *(m.id for m in p.members))  # a collapsed skip: its cases too
        for entry in state.skips:
            if entry.matches(*names):
                entry.matched.append(item.nodeid)
                item.add_marker(pytest.mark.skip(reason=entry.reason))
        for entry in state.xfails:
            if entry.matches(*names):
                entry.matched.append(item.nodeid)
                item.add_marker(pytest.mark.xfail(reason=entry.reason, strict=False))
        if p.check == "grad" and not p.skip and item.get_closest_marker("skip") is None:
            state.suite.grad_keys.add(p.key)
        key = (
            order_adapter.get(p.adapter.name, 0),
            p.device,
            p.mode == "compiled",  # last: their compiles overlap the rest (Suite.prefetch)
            p.dtype,
            p.mode,
            order_case.get(p.case.id, 0),
            CHECK_ORDER[p.check],
        )
        focal.append((key, item))
    if empty:
        config.hook.pytest_deselected(items=empty)
    if focal or empty:
        focal.sort(key=lambda kv: kv[0])
        items[:] = others + [it for _, it in focal]


def pytest_collection_finish(session: pytest.Session) -> None:
    """The final items are known (after -k, deselection and the skip lists): send the compiled
    calls of isolated adapters ahead.  Not in a pytest-xdist worker, which runs only some items."""
    state = _state(session.config)
    if state is None or state.suite is None or hasattr(session.config, "workerinput"):
        return
    if session.config.option.collectonly:
        return
    runs = (_focal_param(item) for item in session.items if item.get_closest_marker("skip") is None)
    state.suite.prefetch([p for p in runs if p is not None])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    """A failed check whose failure tier is not required becomes an xfail naming the tier."""
    outcome = yield
    report = outcome.get_result()
    state = _state(item.config)
    if state is None or report.when != "call" or not report.failed:
        return
    static = state.static.get(item.nodeid)
    if static is None:
        return
    graded = state.suite.records.get(item.nodeid) if state.suite is not None else None
    tier = (graded.failure_tier if graded is not None else None) or static.get("tier")
    report.user_properties.append(("failure_tier", tier))
    if tier not in state.options.require:
        report.outcome = "skipped"
        report.wasxfail = f"{tiers.UNREQUIRED_TEXT}{tier} (--focal-require {','.join(state.options.require)})"
        setattr(report, tiers.UNREQUIRED_ATTR, tier)  # the typed mark (xdist carries it); the text is for people


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """pytest's own line counts a failure in a tier not required as "not required", not as an
    xfail: one tally with the gate, the JSON and JUnit (``results.TALLY``, SPEC §10.5)."""
    if report.when == "call" and report.skipped and unrequired_tier(report) is not None:
        return "not required", "n", ("NOT REQUIRED", {"yellow": True})
    return None


def unrequired_tier(report: Any) -> str | None:
    """The tier of a failure reported as not required (set in ``pytest_runtest_makereport``), else None."""
    return getattr(report, tiers.UNREQUIRED_ATTR, None)


def tally_of(config: pytest.Config) -> dict[str, int] | None:
    """The session's ``results.tally`` (None outside a focalspec session)."""
    state = _state(config)
    return None if state is None else results.tally(state.entry_dicts())


def not_applicable_of(config: pytest.Config) -> dict[str, int]:
    """Per reason, the checks skipped because the implementation's declared convention does not
    offer them (a reduction it lacks, no alpha ...): said on the gate's verdict line."""
    from focalspec.adapters.callable_adapter import NOT_APPLICABLE

    state = _state(config)
    out: dict[str, int] = {}
    for e in state.entries.values() if state is not None else ():
        reason = str(e.skip_reason or "")
        if e.outcome == "skipped" and reason.startswith(NOT_APPLICABLE):
            key = reason.removeprefix(NOT_APPLICABLE)
            out[key] = out.get(key, 0) + 1
    return out


class _Reporter:
    """Bound to one session's state: collects every test's outcome for the JSON."""

    def __init__(self, state: State) -> None:
        self.state = state

    @pytest.hookimpl(tryfirst=True)  # before xdist sends the report: it carries the entry
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.on_report(report)
        if report.when == "teardown":
            self.state.snapshot()


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is not None:
        session.config.pluginmanager.register(_Reporter(state), "focalspec-reporter")
        # a CI runner cancels with SIGTERM: end like Ctrl-C, so JSON and JUnit are written
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
            signal.SIG_DFL,
            None,
        ):
            signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state is None or (state.suite is None and not state.controller):
        return
    if signal.getsignal(signal.SIGTERM) is _sigterm_as_interrupt:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    try:
        if state.suite is not None and not interrupted and not session.config.option.collectonly:
            state.minimal = state.suite.shrink()
        if state.worker:  # its results travel to the controller, which writes them
            sweep_data = _sweeps(state) if state.options.json and not interrupted else []
            adapters = state.adapter_entries()
            out = distributed.worker_output(adapters, sweep_data, state.lists, state.minimal)
            session.config.workeroutput[distributed.OUTPUT_KEY] = out  # type: ignore[attr-defined]
        elif state.options.json and not session.config.option.collectonly:
            _write_results(state, interrupted)
    finally:
        if state.suite is not None:
            state.suite.close()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """An xdist worker ended: merge what it ran into the controller's results."""
    state = _state(node.config)
    if state is not None:
        state.collected.add(getattr(node, "workeroutput", {}).get(distributed.OUTPUT_KEY), state.lists)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n``, one (adapter, device, dtype, mode) runs on one worker (distributed.py)."""
    if config.getoption("dist", "no") != "load" or not _targets_conformance(config):
        return None
    return distributed.make_scheduler(config, log)


def _sweeps(state: State) -> list[dict[str, Any]]:
    from focalspec.conformance.suite import sweeps

    try:
        return sweeps.all_sweeps(state.suite)
    except Exception as exc:  # the results must be written even when a sweep breaks
        state.sweep_error = f"{type(exc).__name__}: {exc}"
        return []


def _write_results(state: State, interrupted: bool) -> None:
    sweep_data: list[dict[str, Any]] = []
    if state.suite is None:  # the xdist controller: its workers computed them
        sweep_data = list(state.collected.sweeps.values())
    elif not interrupted:  # an interrupted run writes what it has, at once
        sweep_data = _sweeps(state)
    doc = state.document("interrupted" if interrupted else "finished", sweep_data)
    state.json_path = str(results.write(state.options.json, doc))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if state is not None and state.entries:
        summary.write(terminalreporter, state)
