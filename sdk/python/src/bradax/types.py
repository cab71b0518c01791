"""Typed results of the broker's responses.

Every result keeps the decoded JSON it came from in ``raw``, so fields the broker adds later
are reachable before the SDK names them. ``cost_usd`` is a :class:`decimal.Decimal` read from
the JSON text itself (no float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator, Mapping, Optional, Sequence

__all__ = [
    "Usage",
    "LLMResponse",
    "StreamEvent",
    "VectorMatch",
    "QueryResult",
    "Document",
    "UpsertResult",
    "DeployResult",
    "GraphResult",
    "GraphEvent",
    "Metric",
    "MetricsResult",
    "Health",
    "TokenInfo",
]


def _dec(v: Any) -> Optional[Decimal]:
    if v is None:
        return None
    if isinstance(v, Decimal):
        return v
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, str)):
        try:
            return Decimal(v)
        except ArithmeticError:
            return None
    if isinstance(v, float):
        return Decimal(repr(v))
    return None


def _int(v: Any) -> Optional[int]:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, (float, Decimal)) and v == int(v):
        return int(v)
    return None


def _float(v: Any) -> Optional[float]:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float, Decimal)):
        return float(v)
    return None


def _plain(v: Any) -> Any:
    """Decimals (from exact parsing) back to int/float for user-facing free-form data."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() and "." not in str(v) else float(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


@dataclass(frozen=True)
class Usage:
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    total_tokens: Optional[int] = None
    cost_usd: Optional[Decimal] = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, v: Any) -> Optional["Usage"]:
        if not isinstance(v, Mapping):
            return None
        return cls(
            prompt_tokens=_int(v.get("prompt_tokens")),
            completion_tokens=_int(v.get("completion_tokens")),
            total_tokens=_int(v.get("total_tokens")),
            cost_usd=_dec(v.get("cost_usd")),
            raw=_plain(dict(v)),
        )


@dataclass(frozen=True)
class LLMResponse:
    content: str
    model: str
    usage: Optional[Usage]
    timestamp: Optional[str]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __str__(self) -> str:
        return self.content

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "LLMResponse":
        return cls(
            content=str(v.get("content") or ""),
            model=str(v.get("model") or ""),
            usage=Usage.parse(v.get("usage")),
            timestamp=v.get("timestamp"),
            raw=_plain(dict(v)),
        )


@dataclass(frozen=True)
class StreamEvent:
    """One ``llm/stream`` event: ``{"delta", "finished"}``; the last also ``usage``."""

    delta: str
    finished: bool
    usage: Optional[Usage] = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class VectorMatch:
    id: str
    score: float
    metadata: Mapping[str, Any]
    text: Optional[str]

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "VectorMatch":
        md = v.get("metadata")
        return cls(
            id=str(v.get("id", "")),
            score=_float(v.get("score")) or 0.0,
            metadata=dict(md) if isinstance(md, Mapping) else {},
            text=v.get("text"),
        )


@dataclass(frozen=True)
class QueryResult:
    """The matches of a vector query, best first; iterable and indexable like a list."""

    results: list[VectorMatch]
    timestamp: Optional[str]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[VectorMatch]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> VectorMatch:
        return self.results[i]

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "QueryResult":
        rs = v.get("results")
        return cls(
            results=[VectorMatch.parse(r) for r in rs if isinstance(r, Mapping)]
            if isinstance(rs, list)
            else [],
            timestamp=v.get("timestamp"),
            raw=dict(v),
        )


@dataclass
class Document:
    """A document to upsert: ``vector`` may be left out for the broker to embed ``text``."""

    id: str
    text: Optional[str] = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    vector: Optional[Sequence[float]] = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.vector is not None:
            out["vector"] = list(self.vector)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        if self.text is not None:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class UpsertResult:
    upserted: int
    timestamp: Optional[str]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "UpsertResult":
        return cls(
            upserted=_int(v.get("upserted")) or 0,
            timestamp=v.get("timestamp"),
            raw=dict(v),
        )


@dataclass(frozen=True)
class DeployResult:
    graph_id: str
    version: str
    success: bool
    timestamp: Optional[str]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "DeployResult":
        return cls(
            graph_id=str(v.get("graph_id", "")),
            version=str(v.get("version", "")),
            success=bool(v.get("success", False)),
            timestamp=v.get("timestamp"),
            raw=dict(v),
        )


@dataclass(frozen=True)
class GraphResult:
    execution_id: str
    graph_id: str
    version: str
    status: str
    outputs: Mapping[str, Any]
    usage: Optional[Usage]
    timestamp: Optional[str]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "GraphResult":
        outs = v.get("outputs")
        return cls(
            execution_id=str(v.get("execution_id", "")),
            graph_id=str(v.get("graph_id", "")),
            version=str(v.get("version", "")),
            status=str(v.get("status", "")),
            outputs=_plain(dict(outs)) if isinstance(outs, Mapping) else {},
            usage=Usage.parse(v.get("usage")),
            timestamp=v.get("timestamp"),
            raw=_plain(dict(v)),
        )


@dataclass(frozen=True)
class GraphEvent:
    """One event of a streamed graph run: a node's ``status`` (and ``output``), or the last
    one with ``finished`` true, ``outputs`` and ``usage``."""

    node: Optional[str]
    status: Optional[str]
    output: Any
    finished: bool
    outputs: Optional[Mapping[str, Any]] = None
    usage: Optional[Usage] = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "GraphEvent":
        outs = v.get("outputs")
        return cls(
            node=v.get("node"),
            status=v.get("status"),
            output=_plain(v.get("output")),
            finished=bool(v.get("finished", False)),
            outputs=_plain(dict(outs)) if isinstance(outs, Mapping) else None,
            usage=Usage.parse(v.get("usage")),
            raw=_plain(dict(v)),
        )


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    value: Any
    labels: Mapping[str, str]
    timestamp: Optional[str]

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "Metric":
        labels = v.get("labels")
        return cls(
            name=str(v.get("name", "")),
            type=str(v.get("type", "")),
            value=v.get("value"),
            labels=dict(labels) if isinstance(labels, Mapping) else {},
            timestamp=v.get("timestamp"),
        )


@dataclass(frozen=True)
class MetricsResult:
    metrics: list[Metric]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def get(self, name: str, **labels: str) -> list[Metric]:
        """The metrics called ``name`` whose labels include ``labels``."""
        return [
            m
            for m in self.metrics
            if m.name == name and all(m.labels.get(k) == v for k, v in labels.items())
        ]

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "MetricsResult":
        ms = v.get("metrics")
        return cls(
            metrics=[Metric.parse(m) for m in ms if isinstance(m, Mapping)]
            if isinstance(ms, list)
            else [],
            raw=dict(v),
        )


@dataclass(frozen=True)
class Health:
    """``GET /health``: ``status`` is ``healthy``, ``degraded`` or ``unhealthy`` (the latter
    answered with 503, which :meth:`bradax.Full.health` returns rather than raises)."""

    status: str
    checks: Mapping[str, Any]
    timestamp: Optional[str]
    http_status: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status in ("healthy", "degraded")

    @classmethod
    def parse(cls, v: Mapping[str, Any], http_status: int) -> "Health":
        checks = v.get("checks")
        return cls(
            status=str(v.get("status", "")),
            checks=dict(checks) if isinstance(checks, Mapping) else {},
            timestamp=v.get("timestamp"),
            http_status=http_status,
            raw=dict(v),
        )


@dataclass(frozen=True)
class TokenInfo:
    """What ``auth/token`` and ``auth/refresh`` answered (the tokens themselves are kept by
    the client and not repeated in ``repr``)."""

    access_token: str = field(repr=False)
    refresh_token: Optional[str] = field(repr=False)
    expires_in: Optional[int]
    token_type: str
    scopes: list[str]
    timestamp: Optional[str]

    @classmethod
    def parse(cls, v: Mapping[str, Any]) -> "TokenInfo":
        scopes = v.get("scopes")
        return cls(
            access_token=str(v.get("access_token", "")),
            refresh_token=v.get("refresh_token"),
            expires_in=_int(v.get("expires_in")),
            token_type=str(v.get("token_type", "Bearer")),
            scopes=[str(s) for s in scopes] if isinstance(scopes, list) else [],
            timestamp=v.get("timestamp"),
        )
