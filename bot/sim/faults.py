"""Fault injection for the simulator: which request gets which failure.

The daemon must survive a public API that limits it, fails and hands it odd content; these rules let
tests (and `plantbot sim --fault`) reproduce each failure on chosen routes, deterministically per seed.
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_PROB = re.compile(r"[0-9.]+(?:x[0-9]+)?")
KINDS = (
    "status", "slow", "reset", "reset_after", "truncate", "corrupt", "html", "foreign_host", "redirect", "hold",
    "drip", "bloat",
)


@dataclass
class FaultRule:
    """One fault on the requests whose "METHOD /path" matches `route` (a glob, query excluded).

    `reset_after` (an addition) stores a write like `hold` and then drops the connection unanswered.
    `drip` sends the answer's body one byte every `delay` seconds; `bloat` pads a JSON answer with
    whitespace to `size` bytes (hostile-platform tests: a whole-response deadline, a response-size cap).
    `with_param` narrows the rule to requests whose query carries that parameter: a Rails fork reads
    observations by id (`id[]=`) on the same path it polls, so only the parameter tells them apart.
    """

    route: str
    kind: str
    probability: float = 1.0
    status: int = 500
    retry_after: float = 1.0
    delay: float = 2.0
    target: str = ""
    size: int = 0  # `bloat`: the padded body size in bytes
    message: str = ""  # `status`: the error text in the JSON body (hostile text for terminals and pages)
    times: int | None = None
    with_param: str = ""
    applied: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"fault probability must be within 0..1, got {self.probability}")
        if self.kind in ("foreign_host", "redirect") and not self.target:
            raise ValueError(f"fault kind {self.kind!r} needs a target base URL")

    def matches(self, method: str, path: str, query: Mapping[str, object] | None = None) -> bool:
        if self.with_param and self.with_param not in (query or {}):
            return False
        return fnmatch.fnmatchcase(f"{method.upper()} {path}", self.route)


@dataclass
class FaultPlan:
    """An ordered list of rules; the first matching rule whose dice roll hits applies to a request."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def pick(self, method: str, path: str, query: Mapping[str, object] | None = None) -> FaultRule | None:
        """The fault to apply to this request, if any (thread-safe, counts `times`)."""
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path, query):
                    continue
                if rule.times is not None and rule.applied >= rule.times:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.applied += 1
                return rule
        return None

    def garbage(self, length: int) -> bytes:
        """Deterministic junk bytes of the given length (for `corrupt`)."""
        with self._lock:
            return self._rng.randbytes(length)

    @classmethod
    def parse(cls, specs: list[str], seed: int = 0) -> FaultPlan:
        """Rules from CLI specs `ROUTE=KIND[:ARG][@PROB][xTIMES]`.

        ARG is the seconds per byte for `drip`, the body size for `bloat`, the status code for `status`
        (`status:429` or `status:429:2.5` with Retry-After, and
        `status:422::TEXT` with TEXT as the error description, colons allowed), the
        delay in seconds for `slow`/`hold`, the target base URL for `foreign_host`/`redirect`.
        Examples: "GET /v1/observations*=status:503@0.2", "GET /photos/*=corrupt@0.1",
        "*=slow:1.5@0.05", "POST /v1/identifications=hold:30", "GET /photos/*=reset@1x3".
        """
        return cls(rules=[_parse_one(spec) for spec in specs], seed=seed)


def _parse_one(spec: str) -> FaultRule:
    route, sep, rest = spec.partition("=")  # the first "=": a status message may hold more of them
    if not sep or not route.strip() or not rest:
        raise ValueError(f"bad fault spec {spec!r}: expected ROUTE=KIND[:ARG][@PROB][xTIMES]")
    times: int | None = None
    probability = 1.0
    body, at, prob_part = rest.rpartition("@")
    if not at or (body.startswith("status:") and not _PROB.fullmatch(prob_part)):
        body, at, prob_part = rest, "", ""  # an "@" inside a status message is text
    if at:
        prob_text, x, times_text = prob_part.partition("x")
        try:
            probability = float(prob_text)
            times = int(times_text) if x else None
        except ValueError:
            raise ValueError(f"bad fault spec {spec!r}: bad probability or times {prob_part!r}") from None
    kind, _, arg = body.partition(":")
    kind = kind.strip()
    try:
        extra = _arg_fields(kind, arg)
    except ValueError:
        raise ValueError(f"bad fault spec {spec!r}: bad argument {arg!r} for {kind!r}") from None
    try:
        return FaultRule(route=route.strip(), kind=kind, probability=probability, times=times, **extra)
    except ValueError as exc:
        raise ValueError(f"bad fault spec {spec!r}: {exc}") from None


def _arg_fields(kind: str, arg: str) -> dict[str, Any]:
    if not arg:
        return {}
    if kind == "status":
        code, _, rest = arg.partition(":")
        retry, _, message = rest.partition(":")
        return {"status": int(code), **({"retry_after": float(retry)} if retry else {}),
                **({"message": message} if message else {})}
    if kind in ("slow", "hold", "drip"):
        return {"delay": float(arg)}
    if kind == "bloat":
        return {"size": int(arg)}
    if kind in ("foreign_host", "redirect"):
        return {"target": arg}
    raise ValueError(arg)
