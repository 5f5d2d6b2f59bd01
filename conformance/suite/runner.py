"""The session's suite: which adapters, which parameters, and how one check runs and is graded.

One ``Suite`` per pytest session (kept in ``config.stash`` by the plugin).  It loads the
adapters, builds the case families for the depth, expands them into parameters (case x adapter
x dtype x device x mode), and runs a check: the adapter is called once per parameter (value
and gradient checks of the same parameter share the call), the reference gives the expected
values, ``grading`` turns errors into a verdict.

Every call of an implementation goes through ``Suite._call`` and one caller per adapter
(``isolation``): in a worker process that is killed and replaced when the implementation
crashes, hangs past ``--focal-timeout`` or exceeds ``--focal-memory-limit``, or in a daemon
thread of this process (``--focal-isolate``).  ``isolation.FaultBudget`` stops calling an
(implementation, dtype, mode) that keeps hanging or crashing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pytest

from focalspec.adapters.base import DTYPES, MODES, Adapter, AdapterError, Output
from focalspec.adapters.claims import resolve_variant, supports
from focalspec.conformance.diagnosis import causes, severity
from focalspec.conformance.suite import contracts, grading, invariants, isolation, shrink, tiers
from focalspec.conformance.suite import families as fam
from focalspec.conformance.suite.cases import Evaluation, InvariantCase, SuiteCase
from focalspec.conformance.suite.isolation import (
    FaultBudget,
    ImplementationFault,
    ProcessCaller,
    Recipe,
    ThreadCaller,
    describe_exception,
)
from focalspec.conformance.suite.options import Options, compiled_dtypes, compiled_runs
from focalspec.conformance.suite.params import Param, collapse_skips
from focalspec.conformance.suite.record import CheckRecord
from focalspec.spec.variant import SpecError, Variant

RETURNED_DTYPE = "returned_dtype"  # callable_adapter.RETURNED_DTYPE: the Output.ran note of a dtype breach

# Stands for every case of a combination that cannot run at all (adapter unavailable, dtype or
# mode not claimed): one skip per check with the reason, instead of one per case.
ALL_CASES = SuiteCase("all-cases", "golden", Variant(), [], [], "", compiled=True,
                      note="every case of the selected families")  # fmt: skip
# quick compiles in one dtype (options.QUICK_COMPILED_DTYPE) unless the dtypes are named
QUICK_COMPILED_REASON = "--depth quick compiles in float32 only (name the dtypes, or --depth default, for the others)"
QUICK_EAGER_REASON = (
    "--depth quick runs the eager mode only: a process's first compile costs ~4 s of compiler start-up, more "
    "than the rest of a quick run (--mode compiled or --dtype ..., or --depth default, runs it)"
)

CHECK_ORDER = {"value": 0, "grad": 1, "invariant": 2, "contract": 3}


# ----------------------------------------------------------------------------- adapters


def load_adapters(o: Options) -> list[Adapter]:
    """The adapters of this session; SpecError for an unknown name or an unusable callable."""
    from focalspec.adapters.registry import all_adapters

    chosen: list[Adapter] = []
    if o.impl:
        from focalspec.adapters import callable_adapter as ca

        conv = ca.convention_from_options(o, o.kwargs)
        if o.isolate == "thread":
            chosen.append(ca.make_callable_adapter(o.impl, conv))
        else:  # its worker imports it (isolation.worker_facts); this process never does
            recipe = Recipe.of_callable(o.impl, conv)
            chosen.append(ca.CallableAdapter(o.impl, conv, isolation.worker_facts(recipe, ca.callable_name(o.impl))))
        if not o.adapters:
            return chosen
    known = all_adapters()
    if not o.adapters:
        return known
    by_name = {a.name: a for a in known}
    missing = [n for n in o.adapters if n not in by_name]
    if missing:
        raise SpecError(f"--focal-adapters: no adapter named {', '.join(missing)}; known: {', '.join(sorted(by_name))}")
    return chosen + [by_name[n] for n in o.adapters]


class Suite:
    """Everything one session needs (see module docstring)."""

    def __init__(self, options: Options) -> None:
        self.o = options
        self.adapters = load_adapters(options)
        cases, invs = fam.build(options.depth, options.families, options.seed)
        if options.point:  # one ad-hoc element (a derived finding's reproducer)
            cases, invs = [fam.point_case(options.point, options.variant)], []
        elif options.cases:
            pats = options.cases
            cases = [c for c in cases if any(fnmatchcase(c.id, p) for p in pats)]
            invs = [i for i in invs if any(fnmatchcase(i.id, p) for p in pats)]
        self.cases, self.invariants = cases, invs
        self.contract_cases = (
            {
                k: cs
                for k, cs in contracts.cases().items()
                if not options.cases or any(fnmatchcase(cs[0].id, pat) for pat in options.cases)
            }
            if "contract" in options.families and not options.point
            else {}
        )
        self._params: list[Param] | None = None
        self._outputs: OrderedDict[Any, Any] = OrderedDict()
        self.grad_keys: set[tuple[str, ...]] = set()
        self.records: dict[str, CheckRecord] = {}  # node id -> what its last run found
        self.ran: dict[str, dict[str, Any]] = {}
        self.combos_run: set[tuple[str, str, str, str]] = set()
        self.callers: dict[str, ThreadCaller | ProcessCaller] = {}
        self.on_slow_call: Callable[[], None] | None = None  # the plugin's snapshot, while a call waits
        self.faults = FaultBudget(options.hang_budget, options.crash_budget, options.budget_s)
        self.shrinker = shrink.Shrinker(self)
        o = options
        for a in self.adapters:  # start the workers now: their imports overlap collection
            compiled = compiled_dtypes(o.depth, o.modes, o.dtypes, a.dtypes) if "compiled" in a.modes else ()
            runs = [("eager", DTYPES[0])] + [("compiled", d) for d in compiled]
            for mode, dtype in runs:
                caller = self.caller(a, mode, dtype)
                if isinstance(caller, ProcessCaller) and not caller.starts and not a.unavailable_reason():
                    caller.start(warm_up=mode if mode == "compiled" and hasattr(a, "warm_up") else None)

    # -------------------------------------------------------------- isolation

    def isolated(self, a: Adapter) -> bool:
        """Whether ``a`` runs in a worker process (``--focal-isolate``; auto: the user's callables)."""
        if self.o.isolate != "auto":
            return self.o.isolate == "process"
        from focalspec.adapters.callable_adapter import CallableAdapter

        return isinstance(a, CallableAdapter)

    def caller(self, a: Adapter, mode: str = "eager", dtype: str = DTYPES[0]) -> ThreadCaller | ProcessCaller:
        """The adapter's caller; an isolated adapter's compiled mode has workers of its own, by
        dtype (``isolation.worker_tag``; ``prefetch``: they compile while the eager checks run)."""
        tag = isolation.worker_tag(mode, dtype) if self.isolated(a) else "eager"
        key = f"{a.name} ({tag})" if tag != "eager" else a.name
        if key not in self.callers:
            recipe = Recipe.of(a) if self.isolated(a) else None
            if recipe is None:
                self.callers[key] = ThreadCaller(a)
            else:
                adopted = isolation.adopt(recipe, tag, self.o.memory_limit_gib)  # started by focalspec check
                self.callers[key] = adopted or ProcessCaller(recipe, a.name, self.o.memory_limit_gib)
        return self.callers[key]

    def prefetch(self, params: list[Param]) -> None:
        """Send the compiled-mode calls of the isolated adapters ahead to their compiled worker
        (the items that will run, in run order): a compile costs seconds, and on a second core it
        overlaps the eager checks instead of following them.  The replies are the same calls'."""
        ahead: dict[int, tuple[ProcessCaller, list[tuple[str, tuple[Any, ...]]], list[int]]] = {}
        for p in params:
            if p.mode != "compiled" or p.check != "value" or p.skip or not isinstance(p.case, SuiteCase):
                continue
            caller = self.caller(p.adapter, p.mode, p.dtype)
            if not isinstance(caller, ProcessCaller) or self.faults.refusal((p.adapter.name, p.dtype, p.mode)):
                continue
            x, t = p.case.rounded(p.dtype)
            args = (p.variant, np.array(x, copy=True), np.array(t, copy=True), p.dtype, p.device, p.mode,
                    p.key in self.grad_keys)  # fmt: skip
            _, requests, sizes = ahead.setdefault(id(caller), (caller, [], []))
            requests.append(("run", args))
            sizes.append(2 * 8 * x.size + 1024)  # loss and gradient as float64, and the Output around them
        for caller, requests, sizes in ahead.values():
            caller.prefetch(requests, sizes)

    def shrink(self) -> list[dict[str, Any]]:
        """The smallest failing input of each (implementation, cause), bisected (``shrink``)."""
        return [] if self.o.point else self.shrinker.run()

    def close(self) -> None:
        """Stop the worker processes (end of session)."""
        for c in self.callers.values():
            c.close()

    # -------------------------------------------------------------- parametrisation

    def _axes(self, a: Adapter) -> list[tuple[str, str, str, str | None]]:
        """(device, dtype, mode, skip reason) combinations of one adapter."""
        o = self.o
        reason = a.unavailable_reason()
        claimed_dtypes = tuple(d for d in DTYPES if d in a.dtypes)
        claimed_modes = tuple(m for m in MODES if m in a.modes)
        dtypes = o.dtypes or claimed_dtypes
        modes = o.modes or claimed_modes
        if reason:
            devices: tuple[str, ...] = ("cpu",)
        else:
            try:
                have = tuple(a.devices())
            except Exception as exc:
                have, reason = ("cpu",), f"{a.name}.devices raised {type(exc).__name__}: {exc}"
            devices = tuple(d for d in (o.devices or have) if d in have)
        out = []
        for dev in devices:
            for dt in dtypes:
                for mode in modes:
                    why = reason
                    if not why and dt not in claimed_dtypes:
                        why = f"{a.name} does not claim {dt}"
                    if not why and mode not in claimed_modes:
                        why = f"{a.name} has no {mode} mode"
                    if not why and mode == "compiled" and dt not in compiled_dtypes(o.depth, o.modes, o.dtypes):
                        why = QUICK_COMPILED_REASON if compiled_runs(o.depth, o.modes, o.dtypes) else QUICK_EAGER_REASON
                    out.append((dev, dt, mode, why))
        return out

    def params(self) -> list[Param]:
        if self._params is not None:
            return self._params
        out: list[Param] = []
        for a in self.adapters:
            required = self.o.grade or grading.default_required_grade(a)
            for dev, dt, mode, why in self._axes(a):
                if why:  # the whole combination cannot run: one skip per check, not one per case
                    if self.cases:
                        out += [Param(a, dev, dt, mode, ALL_CASES, c, ALL_CASES.variant, required, why)
                                for c in ("value", "grad")]  # fmt: skip
                    if self.invariants:
                        out.append(Param(a, dev, dt, mode, ALL_CASES, "invariant", ALL_CASES.variant, required, why))
                    continue
                narrow = dt in fam.NARROW_DTYPES and self.o.depth != "deep"
                combo: list[Param] = []
                for case in self.cases:
                    if mode == "compiled" and not case.compiled:
                        continue  # the compiled subset of this depth (families.py)
                    if narrow and not case.narrow:
                        continue  # families.NARROW_DTYPES
                    v, skip = case.variant, why
                    if not skip:
                        try:
                            x, t = case.rounded(dt)
                            v = resolve_variant(a, case.variant, dt, x)
                            skip = supports(a, v, x, t, dt, dev, mode)
                        except SpecError as exc:
                            skip = str(exc)
                    for check in ("value", "grad"):
                        combo.append(Param(a, dev, dt, mode, case, check, v, required, skip))
                out += collapse_skips(combo)
                for inv in self.invariants:
                    if (mode == "compiled" and not inv.compiled) or narrow:
                        continue
                    p = Param(a, dev, dt, mode, inv, "invariant", inv.variant, required, why)
                    if not why:
                        p.evals, p.skip = self._invariant_evals(a, inv, dt, dev, mode)
                    out.append(p)
                if mode == "eager" and hasattr(a, "probe"):
                    out += self._contract_params(a, dev, dt, mode, required)
        self._params = out
        return out

    def _contract_params(self, a: Adapter, dev: str, dt: str, mode: str, required: str) -> list[Param]:
        """One check per contract kind, on the first contract batch the adapter supports."""
        out = []
        for kind, candidates in self.contract_cases.items():
            chosen, skip = candidates[0], "no contract batch (sigmoid logits, probabilities, softmax) is supported"
            for case in candidates:
                try:
                    x, t = case.rounded(dt)
                    v = resolve_variant(a, case.variant, dt, x)
                except SpecError:
                    continue
                if supports(a, v, x, t, dt, dev, mode) is None:
                    chosen, skip = replace(case, variant=v), None
                    break
            if skip is None and kind == "no_grad_leak" and a.framework != "torch":
                skip = f"{a.framework} arrays carry no autograd state"
            out.append(Param(a, dev, dt, mode, chosen, "contract", chosen.variant, required, skip))
        return out

    def _invariant_evals(
        self, a: Adapter, inv: InvariantCase, dtype: str, device: str, mode: str
    ) -> tuple[list[Evaluation], str | None]:
        evals = invariants.evaluations(inv, dtype)
        resolved = []
        for ev in evals:
            try:
                v = resolve_variant(a, ev.variant, dtype, ev.inputs)
            except SpecError as exc:
                return [], str(exc)
            if inv.needs_exact_definition and v.clip_eps is not None and ev.variant.clip_eps is None:
                return [], (
                    f"this identity holds for the exact definition; {a.name} declares clipping at {v.clip_eps:g}"
                )
            why = supports(a, v, ev.inputs, ev.targets, dtype, device, mode)
            if why:
                return [], why
            resolved.append(replace(ev, variant=v))
        return resolved, None

    # -------------------------------------------------------------- running

    def _call(
        self, a: Adapter, v: Variant, x: np.ndarray, t: np.ndarray, dtype: str, device: str, mode: str, want_grad: bool
    ) -> Output | BaseException:
        xs, ts = np.array(x, copy=True), np.array(t, copy=True)
        out = self._invoke(a, "run", (v, xs, ts, dtype, device, mode, want_grad), dtype, mode)
        if isinstance(out, BaseException):
            return out
        if not isinstance(out, Output):
            return AdapterError(f"{a.name}.run returned {type(out).__name__}, not an Output")
        self.combos_run.add((a.name, device, dtype, mode))
        if out.ran and a.name not in self.ran:
            self.ran[a.name] = {k: v for k, v in out.ran.items() if k != RETURNED_DTYPE}
        return out

    def _invoke(self, a: Adapter, method: str, args: tuple[Any, ...], dtype: str, mode: str) -> Any:
        """The single door to an implementation: the fault budget, then the adapter's caller
        (worker process or thread); what it raised is returned, not raised."""
        combo = (a.name, dtype, mode)
        refused = self.faults.refusal(combo)
        if refused is not None:
            return refused
        try:
            return self.caller(a, mode, dtype).call(method, args, self.o.timeout, self.on_slow_call)
        except ImplementationFault as exc:
            self.faults.record(combo, exc)
            return exc
        except Exception as exc:
            return exc

    def _output(self, p: Param, x: np.ndarray, t: np.ndarray) -> Output | BaseException:
        """The adapter's output for a value/grad parameter; one call serves both checks."""
        assert p.variant is not None
        key = p.key
        if p.check == "grad":
            hit = self._outputs.pop(key, None)
            if isinstance(hit, BaseException) or (isinstance(hit, Output) and hit.grad is not None):
                return hit
            return self._call(p.adapter, p.variant, x, t, p.dtype, p.device, p.mode, True)
        want = key in self.grad_keys
        res = self._call(p.adapter, p.variant, x, t, p.dtype, p.device, p.mode, want)
        if want:
            self._outputs[key] = res
            while len(self._outputs) > 8:
                self._outputs.popitem(last=False)
            if isinstance(res, BaseException) and not isinstance(res, ImplementationFault):
                # the gradient may be what failed: the value check still gets its own verdict
                res = self._call(p.adapter, p.variant, x, t, p.dtype, p.device, p.mode, False)
        return res

    def run(self, p: Param, node: Any) -> None:
        """Run one check; ``pytest.fail`` with the message when it does not pass."""
        rec = self.records[node.nodeid] = CheckRecord(node.nodeid)
        self._running = (p, node)
        what = (
            f"{p.case.id} [{p.variant.label() if p.variant else ''}] in {p.dtype} on {p.adapter.name} "
            f"({p.device}, {p.mode})"
        )
        point = ["--point", self.o.point, *(["--variant", self.o.variant] if self.o.variant else [])]
        rec.reproducer = grading.reproducer(
            p.adapter, p.case.id, p.dtype, p.device, p.mode, p.case.family not in ("golden", "point"), self.o.depth,
            self.o.seed, point if p.case.family == "point" and self.o.point else None,
        )
        t0 = time.perf_counter()
        try:
            if p.check == "contract":
                self._run_contract(p, rec, what)
                return
            if p.check == "invariant":
                measures = self._run_invariant(p, rec, what)
            else:
                measures = self._run_value_grad(p, rec, what)
        finally:
            rec.duration_s = round(time.perf_counter() - t0, 6)
        worst = max(measures, key=lambda m: grading.RANK[m.grade])
        rec.grade = worst.grade
        bad = [m for m in measures if not m.passed]
        rec.worst = (bad[0] if bad else worst).worst
        node.user_properties.extend(
            [
                ("grade", worst.grade),
                ("required_grade", p.required),
                *((f"{m.which}_max_err_u", f"{m.max_err:.4g}") for m in measures),
            ]
        )
        if bad:
            rec.failure_tier = self._failure_tier(p, bad)
            v = (p.variant or p.case.variant).to_dict()
            self._set_cause(rec, causes.safely(lambda: causes.for_measures(p.check, p.dtype, v, bad,
                                                                           rec.failure_tier)))  # fmt: skip
            self.shrinker.offer(shrink.example_candidate(p, rec, node.nodeid))
            msg = "\n".join(grading.failure_message(m, what) for m in bad)
            if rec.returned_dtype:  # a dtype-contract breach: its numbers were graded all the same
                msg += f"\n{rec.returned_dtype}: graded as returned (contract_dtype_shape reports the dtype)"
            self._fail(rec, msg)

    def _failure_tier(self, p: Param, bad: list[grading.Measure]) -> str:
        """The tier of a graded failure from its failing elements (``tiers.failure_tier``)."""
        from focalspec.conformance.suite import tiers

        v = p.variant or p.case.variant
        x = tiers.param_inputs(p)
        if x is None or p.check == "invariant":
            return tiers.param_tier(p)
        found = [tiers.failure_tier(x, v.input_kind, p.dtype, p.mode, tiers.bad_mask(m),
                                    v.activation == "softmax") for m in bad]  # fmt: skip
        return min(found, key=lambda t: tiers.RANK.get(t, -1))

    def _set_cause(self, rec: CheckRecord, verdict: causes.Verdict) -> None:
        rec.cause, rec.cause_detail, rec.cause_example = verdict.cause, verdict.detail, verdict.example
        running = getattr(self, "_running", None)
        if running is not None:  # travels with the report (pytest-xdist, JUnit properties)
            ex = verdict.example or {}
            x = ex.get("size", ex.get("input"))  # how far out: |x|, or |logit p| for probabilities
            running[1].user_properties.extend([("cause", verdict.cause), ("cause_detail", verdict.detail),
                                               ("cause_input", x), ("cause_fix", verdict.fix),
                                               ("cause_nonfinite", severity.nonfinite_example(ex))])  # fmt: skip

    def _fail(self, rec: CheckRecord, message: str, grade: str | None = "fail") -> None:
        rec.message = message
        rec.grade = grade
        running = getattr(self, "_running", None)
        if not rec.cause and running is not None:  # a fault: raised, hung, shape, contract
            p = running[0]
            ev = causes.Evidence(p.check, p.dtype, (p.variant or p.case.variant).to_dict(),
                                 rec.failure_tier or tiers.param_tier(p), rec.fault, message)  # fmt: skip
            self._set_cause(rec, causes.safely(lambda: causes.classify(ev)))
        head = f"{rec.cause}: " if rec.cause else ""
        pytest.fail(f"{head}{message}\nReproduce: {rec.reproducer}", pytrace=False)

    def _run_value_grad(self, p: Param, rec: CheckRecord, what: str) -> list[grading.Measure]:
        case = p.case
        assert isinstance(case, SuiteCase) and p.variant is not None
        x, t = case.rounded(p.dtype)
        res = self._output(p, x, t)
        if isinstance(res, BaseException):
            rec.fault = getattr(res, "cause", None)
            self._fail(rec, f"{p.check} check of {what}: {describe_exception(res)}")
        assert isinstance(res, Output)
        rec.returned_dtype = res.ran.get(RETURNED_DTYPE) if res.ran else None
        source = grading.reference_source(case.family, p.dtype, x.size, p.variant.activation)
        m = grading.measure_output(p.check, res, p.variant, x, t, p.dtype, p.required, source)
        if isinstance(m, str):
            self._fail(rec, f"{p.check} check of {what}: {m}")
        assert isinstance(m, grading.Measure)
        setattr(rec, p.check, m.summary())  # value or grad
        return [m]

    def _run_contract(self, p: Param, rec: CheckRecord, what: str) -> None:
        kind = p.case.id.removeprefix("contract_")
        assert isinstance(p.case, SuiteCase) and p.variant is not None
        x, t = p.case.rounded(p.dtype)
        variants = [p.variant]
        if kind == "deterministic":
            variants.append(p.variant)
        elif kind in ("returns_tensor", "dtype_shape"):
            mean = replace(p.variant, reduction="mean")
            if supports(p.adapter, mean, x, t, p.dtype, p.device, p.mode) is None:
                variants.append(mean)
        probes = []
        for v in variants:
            args = (v, np.array(x, copy=True), np.array(t, copy=True), p.dtype, p.device)
            res = self._invoke(p.adapter, "probe", args, p.dtype, p.mode)
            if isinstance(res, BaseException):
                rec.fault = getattr(res, "cause", None)
                self._fail(rec, f"contract check {kind} of {what}: {describe_exception(res)}")
            probes.append(res)
        finding = contracts.judge(kind, p.variant, x, p.dtype, probes)
        if finding:
            rec.fault = "contract"
            self._fail(rec, f"contract check {kind} of {what}: {finding}")

    def _run_invariant(self, p: Param, rec: CheckRecord, what: str) -> list[grading.Measure]:
        inv = p.case
        assert isinstance(inv, InvariantCase)
        need_grad = invariants.NEEDS_GRAD[inv.kind]
        outs = []
        for ev in p.evals:
            res = self._call(p.adapter, ev.variant, ev.inputs, ev.targets, p.dtype, p.device, p.mode, need_grad)
            if isinstance(res, BaseException):
                rec.fault = getattr(res, "cause", None)
                self._fail(
                    rec, f"invariant check of {what}: evaluating {ev.variant.label()}: {describe_exception(res)}"
                )
            assert isinstance(res, Output)
            shape = _loss_shape(ev)
            if np.shape(res.loss) != shape:
                self._fail(
                    rec,
                    f"invariant check of {what}: {ev.variant.label()} returned shape "
                    f"{np.shape(res.loss)}, the spec gives {shape}",
                )
            if need_grad and (res.grad is None or np.shape(res.grad) != ev.inputs.shape):
                self._fail(
                    rec, f"invariant check of {what}: {ev.variant.label()} returned no gradient of the inputs' shape"
                )
            outs.append(res)
        rec.returned_dtype = next((o.ran[RETURNED_DTYPE] for o in outs if o.ran and o.ran.get(RETURNED_DTYPE)), None)
        mv, mg = invariants.compare(inv, p.evals, outs, p.dtype, p.required)
        rec.value = mv.summary()
        measures = [mv]
        if mg is not None:
            rec.grad = mg.summary()
            measures.append(mg)
        return measures


def _loss_shape(ev: Evaluation) -> tuple[int, ...]:
    return contracts.expected_shape(ev.variant, ev.inputs)
