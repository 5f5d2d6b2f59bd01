"""How the suite calls an implementation so that the code it judges cannot take the gate down.

Two callers with one interface, ``call(method, args, timeout) -> result``:

* ``ProcessCaller`` (``--focal-isolate process``; the default of ``focalspec check`` and of
  ``--focal-impl`` callables): the adapter is rebuilt in a worker process (``python -m
  focalspec.conformance.suite.isolation``, a fresh interpreter: no fork of a process holding torch,
  JAX or TF threads) and every call is sent to it over a pipe.  While it waits, the suite
  watches the worker: a signal or an exit (a segfaulting kernel, ``os._exit``) is a crash, no
  answer within the timeout is a hang, a resident set above ``--focal-memory-limit`` is a
  memory blow-up.  In each case the worker is killed, the call fails with that cause
  (``ImplementationFault``) and a fresh worker serves the next call.
* ``ThreadCaller`` (``--focal-isolate thread``): the call runs in a daemon thread of the suite's
  own process.  No start-up cost, but a hung call cannot be killed (its thread is abandoned)
  and a crash takes the whole run down; fine for focalspec's own and other vetted adapters.

``ProcessCaller.prefetch`` sends calls ahead from a background thread: the suite uses it for the
compiled-mode checks, which get workers of their own, split by dtype (``worker_tag``), that
compile while the eager checks run in the other (on two cores that hides most of the
``torch.compile`` calls).  The suite's own process never imports an isolated callable: its
eager worker reports what the suite needs to know (``worker_facts``).  A prefetched call is the
same request and gets the same reply, read when the suite asks for it; only what fits the pipes'
buffers is sent ahead (``PREFETCH_BYTES``), so neither side can block on a full pipe.

``FaultBudget`` turns repeated hangs and crashes of one (implementation, dtype, mode) into
"not run" for the rest of it, so a hanging implementation costs a few timeouts, not one per
check.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from focalspec.adapters.base import DTYPES, Adapter, AdapterError
from focalspec.spec.variant import SpecError

GIB = 1024**3
MAX_STUCK = 4  # thread mode: abandoned calls of one implementation allowed to run at once
START_TIMEOUT_S = 300.0  # a worker importing torch/TF on a loaded 2-core machine can take a while
POLL_S = 0.05
SLOW_S = 1.0
PREFETCH_BYTES = 48 * 1024  # requests (and replies) sent ahead stay below a Linux pipe's 64 KiB


class ImplementationFault(Exception):
    """A call that produced no result because of how the implementation behaved (not what it
    computed): ``cause`` is one of crash, exit, hang, memory, not-run."""

    cause = "crash"

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        if cause is not None:
            self.cause = cause


class CallTimeout(ImplementationFault):
    """A call did not return in time (``thread`` is still running it in thread mode)."""

    cause = "hang"

    def __init__(self, message: str, thread: threading.Thread | None = None) -> None:
        super().__init__(message)
        self.thread = thread


class NotRun(ImplementationFault):
    """A call refused before it was made: a fault budget or the run's wall-clock budget is spent."""

    cause = "not-run"


def describe_exception(exc: BaseException) -> str:
    """One line: adapter errors and faults say what went wrong already; anything else is named."""
    if isinstance(exc, AdapterError | ImplementationFault | SpecError):
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = str(exc).strip().splitlines()
    return f"the implementation raised {type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


def signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


# ----------------------------------------------------------------------------- how to rebuild an adapter


@dataclass(frozen=True)
class Recipe:
    """What a worker needs to rebuild an adapter: a registry name, or a callable and its convention."""

    kind: str  # "registry" | "callable"
    target: str
    convention: Any = None
    sys_path: tuple[str, ...] = ()

    @classmethod
    def of(cls, adapter: Adapter) -> Recipe | None:
        """The recipe of an adapter, or None when a worker could not rebuild it (an object made in code)."""
        from focalspec.adapters.callable_adapter import CallableAdapter
        from focalspec.adapters.registry import get_adapter

        path = tuple(sys.path)
        if isinstance(adapter, CallableAdapter):
            return cls.of_callable(adapter.spec, adapter.conv)
        try:
            same = type(get_adapter(adapter.name)) is type(adapter)
        except Exception:
            same = False
        return cls("registry", adapter.name, None, path) if same else None

    @classmethod
    def of_callable(cls, spec: str, convention: Any) -> Recipe:
        """The recipe of ``PKG.MODULE:CALLABLE`` under a convention, with this process's sys.path."""
        return cls("callable", spec, convention, tuple(sys.path))

    def build(self) -> Adapter:
        if self.kind == "callable":
            from focalspec.adapters.callable_adapter import make_callable_adapter

            return make_callable_adapter(self.target, self.convention)
        from focalspec.adapters.registry import get_adapter

        return get_adapter(self.target)


# ----------------------------------------------------------------------------- callers


class ThreadCaller:
    """Calls in a daemon thread of this process (see module docstring)."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.stuck: list[threading.Thread] = []

    def call(
        self, method: str, args: tuple[Any, ...], timeout: float, on_slow: Callable[[], None] | None = None
    ) -> Any:
        """``on_slow`` is not called: the waiting thread is in ``join`` (kept for one interface)."""
        self.stuck = [th for th in self.stuck if th.is_alive()]
        if len(self.stuck) >= MAX_STUCK:  # give the oldest one a timeout's grace before refusing
            self.stuck[0].join(timeout)
            self.stuck = [th for th in self.stuck if th.is_alive()]
        if len(self.stuck) >= MAX_STUCK:
            raise NotRun(
                f"not called: {len(self.stuck)} earlier calls of {self.adapter.name} timed out and are still "
                f"running (--focal-timeout {timeout:g} s; --focal-isolate process would kill them)"
            )
        fn = getattr(self.adapter, method)
        try:
            return call_with_timeout(lambda: fn(*args), timeout)
        except CallTimeout as exc:
            if exc.thread is not None:
                self.stuck.append(exc.thread)
            raise

    def close(self) -> None:
        """Abandoned threads are daemons: nothing to do."""


def call_with_timeout(fn: Callable[[], Any], timeout: float) -> Any:
    """``fn()`` in a daemon thread, waiting at most ``timeout`` seconds (0 = call inline)."""
    if not timeout:
        return fn()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except KeyboardInterrupt:  # raised by the implementation in this thread (Ctrl-C goes to the main one)
            box["error"] = AdapterError("the implementation raised KeyboardInterrupt")
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="focalspec-impl-call", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise CallTimeout(f"the implementation did not return within {timeout:g} s (--focal-timeout)", worker)
    if "error" in box:
        raise box["error"]
    return box["result"]


@dataclass
class _Proc:
    popen: subprocess.Popen[bytes]
    send: Connection
    recv: Connection
    log: Any
    ready: bool = False


class ProcessCaller:
    """Calls in a worker process that is killed and replaced when the implementation misbehaves."""

    def __init__(self, recipe: Recipe, name: str, memory_limit_gib: float = 0.0) -> None:
        self.recipe = recipe
        self.name = name
        self.memory_limit = int(memory_limit_gib * GIB) if memory_limit_gib else 0
        self.proc: _Proc | None = None
        self.broken: str | None = None  # the worker cannot even start: every call fails with this
        self.build_error: str | None = None  # the worker's one line when it could not rebuild the adapter
        self.starts = 0
        self._lock = threading.Lock()  # the prefetch thread and the suite's calls take turns
        self._ahead: deque[bytes] = deque()  # digests of the requests sent ahead, in order
        self._early: dict[bytes, Any] = {}  # their replies, read before they were asked for

    # -------------------------------------------------------------- life cycle

    def spawn(self) -> None:
        """Start a worker now (its imports overlap the suite's own work); idempotent."""
        if self.proc is not None or self.broken:
            return
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        log = tempfile.TemporaryFile(prefix="focalspec-worker-")
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
        popen = subprocess.Popen(
            [sys.executable, "-m", "focalspec.conformance.suite.isolation", str(to_child_r), str(to_parent_w)],
            pass_fds=(to_child_r, to_parent_w),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,  # the terminal's Ctrl-C goes to the suite, which then closes the worker
        )
        os.close(to_child_r)
        os.close(to_parent_w)
        self.proc = _Proc(popen, Connection(to_child_w, readable=False), Connection(to_parent_r, writable=False), log)
        self.starts += 1
        try:
            self.proc.send.send(self.recipe)
        except OSError:
            pass  # it died at once: the wait for 'ready' reports how

    def start(self, warm_up: str | None = None) -> None:
        """Start the worker now; ``warm_up`` (a mode): also have it load that mode's compiler
        (the adapter's ``warm_up``), sent ahead, so the start-up costs nobody a wait."""
        self.spawn()  # here, not in the prefetch thread: that one waits for the GIL while this process imports
        if warm_up is not None:
            self.prefetch([("warm_up", (warm_up,))], [256])

    def _kill(self) -> None:
        self._ahead.clear()  # what was sent ahead died with the worker: it is asked again, normally
        self._early.clear()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, signal.SIGKILL)  # the worker and anything it started
            except OSError:
                proc.popen.kill()
        proc.popen.wait()
        for c in (proc.send, proc.recv):
            c.close()
        proc.log.close()

    def close(self) -> None:
        self._kill()

    def _log_tail(self, proc: _Proc) -> str:
        try:
            proc.log.seek(0)
            lines = [ln.strip() for ln in proc.log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        except (OSError, ValueError):  # ValueError: closed meanwhile
            return ""
        fatal = [ln for ln in lines if ln.startswith(("Fatal Python error", "MemoryError", "Killed"))]
        return (fatal or lines[-1:] or [""])[0][:200]

    # -------------------------------------------------------------- waiting on the worker

    def _wait(self, timeout: float, what: str, on_slow: Callable[[], None] | None = None) -> Any:
        """The worker's next message, or an ImplementationFault after killing it; ``on_slow`` is
        called once when the wait has lasted SLOW_S (the suite writes its snapshot meanwhile)."""
        proc = self.proc
        assert proc is not None
        start = time.monotonic()
        deadline = start + timeout if timeout else None
        slow = on_slow
        while True:
            if slow is not None and time.monotonic() - start > SLOW_S:
                callback, slow = slow, None
                try:
                    callback()
                except Exception:  # a snapshot that cannot be written must not fail the call
                    pass
            try:
                if proc.recv.poll(POLL_S):
                    return proc.recv.recv()
            except (EOFError, OSError):
                pass  # the pipe closed: the worker is gone; its exit status says how
            except pickle.UnpicklingError as exc:
                self._kill()
                raise ImplementationFault(f"the worker sent an unreadable answer {what}: {exc}") from None
            code = proc.popen.poll()
            if code is not None:
                tail = self._log_tail(proc)
                self._kill()
                if code < 0:
                    msg = f"the implementation crashed its worker process with {signal_name(-code)} {what}"
                    raise ImplementationFault(msg + (f" ({tail})" if tail else ""), "crash")
                msg = f"the worker process exited with status {code} {what}"
                raise ImplementationFault(msg + (f" ({tail})" if tail else ""), "exit")
            if self.memory_limit:
                rss = _rss_bytes(proc.popen.pid)
                if rss > self.memory_limit:
                    self._kill()
                    raise ImplementationFault(
                        f"the implementation exceeded the memory limit {what}: worker resident set "
                        f"{rss / GIB:.2f} GiB > {self.memory_limit / GIB:g} GiB (--focal-memory-limit); worker killed",
                        "memory",
                    )
            if deadline is not None and time.monotonic() > deadline:
                self._kill()
                raise CallTimeout(
                    f"the implementation hung: no result within {timeout:g} s {what} (--focal-timeout); worker killed"
                )

    def _ensure_ready(self) -> None:
        if self.broken:
            raise ImplementationFault(self.broken, "exit")
        self.spawn()
        assert self.proc is not None
        if self.proc.ready:
            return
        try:
            kind, payload = self._wait(START_TIMEOUT_S, "while starting")
        except ImplementationFault as exc:
            self.broken = f"the worker process for {self.name} could not start: {exc}"
            raise ImplementationFault(self.broken, "exit") from None
        if kind != "ready":
            self._kill()
            self.build_error = str(payload)
            self.broken = f"the worker process for {self.name} could not rebuild the adapter: {payload}"
            raise ImplementationFault(self.broken, "exit")
        self.proc.ready = True

    def call(
        self, method: str, args: tuple[Any, ...], timeout: float, on_slow: Callable[[], None] | None = None
    ) -> Any:
        with self._lock:
            self._ensure_ready()
            assert self.proc is not None
            reply = None
            if self._ahead or self._early:
                reply = self._reply_sent_ahead(_digest(pickle.dumps((method, args))), timeout, on_slow)
            if reply is None:
                try:
                    self.proc.send.send((method, args))
                except (OSError, pickle.PicklingError) as exc:
                    self._kill()
                    raise ImplementationFault(f"the request could not be sent to the worker: {exc}", "exit") from None
                reply = self._wait(timeout, "during the call", on_slow)
        kind, payload = reply
        if kind == "ok":
            return payload
        raise AdapterError(payload)

    def _reply_sent_ahead(self, digest: bytes, timeout: float, on_slow: Callable[[], None] | None) -> Any:
        """The reply to this request if it was sent ahead (waiting for it in order), else None
        after reading every reply still due, so that the next reply on the pipe is this call's.
        A fault while waiting for this request is this call's; one while waiting for another
        request sent ahead is not: the worker is replaced, and that request, asked for later, is
        sent again and meets its fault itself."""
        if digest in self._early:
            return self._early.pop(digest)
        while self._ahead:
            d = self._ahead.popleft()
            if d == digest:
                return self._wait(timeout, "during the call", on_slow)
            try:
                self._early[d] = self._wait(timeout, "during the call", on_slow)
            except ImplementationFault:
                self._ensure_ready()  # _wait killed the worker and forgot what was sent ahead
                return None
        return None

    def prefetch(self, requests: list[tuple[str, tuple[Any, ...]]], reply_bytes: list[int]) -> threading.Thread:
        """Start the worker and send ``requests`` ahead, from a daemon thread, in order, as long as
        they and their replies (``reply_bytes``, estimated) fit ``PREFETCH_BYTES``."""

        def send_ahead() -> None:
            try:
                _send_ahead()
            except Exception:  # closed under it (the session ended first): the thread just ends
                pass

        def _send_ahead() -> None:
            with self._lock:
                try:
                    self._ensure_ready()
                except ImplementationFault:
                    return  # every call reports it
                sent = due = 0
                for request, size in zip(requests, reply_bytes, strict=True):
                    blob = pickle.dumps(request)
                    if sent + len(blob) > PREFETCH_BYTES or due + size > PREFETCH_BYTES or self.proc is None:
                        return
                    try:
                        self.proc.send.send_bytes(blob)
                    except OSError:
                        return  # the worker died: the next call's wait says how
                    self._ahead.append(_digest(blob))
                    sent, due = sent + len(blob), due + size

        thread = threading.Thread(target=send_ahead, name=f"prefetch-{self.name}", daemon=True)
        thread.start()
        return thread


def _digest(blob: bytes) -> bytes:
    return hashlib.sha1(blob).digest()


# ----------------------------------------------------------------------------- which worker serves a call


def compiled_shards() -> int:
    """How many workers share an isolated adapter's compiled mode.  Its compiles (one per case and
    dtype, ~0.6 s each on CPU, after ~2 s of compiler start-up) are the longest path of a gate
    run; split by dtype over two workers they run side by side once the eager checks are done
    (benchmarks/PROFILE.md).  One where there is one core."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def worker_tag(mode: str, dtype: str) -> str:
    """The worker of an isolated call: ``eager`` for every mode but the compiled one, whose dtypes
    alternate over ``compiled_shards()`` workers (``compiled``, ``compiled-2``)."""
    if mode != "compiled":
        return "eager"
    k = DTYPES.index(dtype) % compiled_shards() if dtype in DTYPES else 0
    return "compiled" if k == 0 else f"compiled-{k + 1}"


# ----------------------------------------------------------------------------- workers started before the suite

_PRESPAWNED: dict[tuple[str, str, str, str], ProcessCaller] = {}


def _prespawn_key(recipe: Recipe, tag: str) -> tuple[str, str, str, str]:
    return (recipe.kind, recipe.target, repr(recipe.convention), tag)  # sys.path aside: pytest adds to it


def prespawn(recipe: Recipe, name: str, tag: str = "eager", warm_up: bool = False) -> None:
    """Start a worker before the suite exists (``focalspec check`` does, before it imports the
    framework to validate the callable: the two imports overlap); the suite adopts it (``adopt``).
    ``warm_up``: also load the compiled mode's compiler (``CallableAdapter.warm_up``)."""
    key = _prespawn_key(recipe, tag)
    if key in _PRESPAWNED:
        return
    _PRESPAWNED[key] = ProcessCaller(recipe, name)
    _PRESPAWNED[key].start(warm_up="compiled" if warm_up else None)


def worker_facts(recipe: Recipe, name: str) -> Any:
    """A callable's ``WorkerFacts``, asked of its eager worker (started here unless it was): the
    worker imports the callable, so this process does not.  SpecError with the worker's own line
    when it cannot (import error, signature, framework missing) or dies trying (a crash at import);
    the worker stays for the suite to adopt."""
    prespawn(recipe, name, "eager")
    caller = _PRESPAWNED[_prespawn_key(recipe, "eager")]
    try:
        facts = caller.call("worker_facts", (), START_TIMEOUT_S)
    except (ImplementationFault, AdapterError) as exc:
        raise SpecError(caller.build_error or describe_exception(exc)) from None
    if getattr(facts, "misuse", None):
        raise SpecError(facts.misuse)
    return facts


def adopt(recipe: Recipe, tag: str, memory_limit_gib: float = 0.0) -> ProcessCaller | None:
    """The worker ``prespawn`` started for this recipe and tag, now the caller's to own and close."""
    caller = _PRESPAWNED.pop(_prespawn_key(recipe, tag), None)
    if caller is not None:
        caller.memory_limit = int(memory_limit_gib * GIB) if memory_limit_gib else 0
    return caller


def discard_prespawned() -> None:
    """Stop the workers no suite adopted (a usage error, another selection)."""
    while _PRESPAWNED:
        _, caller = _PRESPAWNED.popitem()
        caller.close()


def _rss_bytes(pid: int) -> int:
    """Resident set of a process from /proc (0 where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# ----------------------------------------------------------------------------- fault budget


@dataclass
class FaultBudget:
    """Hangs and crashes per (implementation, dtype, mode); past the budget, calls are not made.

    ``hangs``/``crashes`` = 0: no limit.  ``seconds`` = 0: no wall-clock limit for the run."""

    hangs: int = 3
    crashes: int = 10
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    counts: dict[tuple[str, str, str], dict[str, int]] = field(default_factory=dict)

    def record(self, combo: tuple[str, str, str], fault: ImplementationFault) -> None:
        if isinstance(fault, NotRun):
            return
        kind = "hang" if fault.cause == "hang" else "crash"
        row = self.counts.setdefault(combo, {"hang": 0, "crash": 0})
        row[kind] += 1

    def refusal(self, combo: tuple[str, str, str]) -> NotRun | None:
        if self.seconds and time.monotonic() - self.started > self.seconds:
            return NotRun(f"not run: the run's wall-clock budget of {self.seconds:g} s is spent (--focal-budget)")
        row = self.counts.get(combo)
        if not row:
            return None
        name, dtype, mode = combo
        if self.hangs and row["hang"] >= self.hangs:
            return NotRun(
                f"not run: {name} hung {row['hang']} times in {dtype} {mode} (--focal-hang-budget {self.hangs})"
            )
        if self.crashes and row["crash"] >= self.crashes:
            return NotRun(
                f"not run: {name} crashed {row['crash']} times in {dtype} {mode} (--focal-crash-budget {self.crashes})"
            )
        return None


# ----------------------------------------------------------------------------- the worker's side


def _watch_parent(parent: int) -> None:
    """Exit when the suite is gone, even while the implementation spins (no orphaned workers)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def worker_main(read_fd: int, write_fd: int) -> None:
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    recipe: Recipe = inbox.recv()
    for p in reversed(recipe.sys_path):
        if p not in sys.path:
            sys.path.insert(0, p)
    try:
        adapter = recipe.build()
    except BaseException as exc:
        outbox.send(("error", describe_exception(exc)))
        return
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            method, args = inbox.recv()
        except EOFError:
            return
        try:
            result = getattr(adapter, method)(*args)
        except KeyboardInterrupt as exc:  # the worker has its own session: no Ctrl-C reaches it, the callable raised it
            outbox.send(("raised", f"the implementation raised KeyboardInterrupt{': ' + str(exc) if str(exc) else ''}"))
            continue
        except BaseException as exc:  # SystemExit from the callable is a failure of that call too
            outbox.send(("raised", describe_exception(exc)))
            continue
        try:
            outbox.send(("ok", result))
        except Exception as exc:
            outbox.send(("raised", f"{type(adapter).__name__}.{method} returned something unpicklable: {exc}"))


if __name__ == "__main__":
    worker_main(int(sys.argv[1]), int(sys.argv[2]))
