"""bradax: the Python SDK of the bradax broker (LLM, vectors, graphs, metrics).

    from bradax import Full
    sdk = Full(token="eyJ0eXAi...", base_url="https://broker.example/api/v1")
    sdk.llm(model="gpt-4o-mini").invoke(messages=[{"role": "user", "content": "Oi"}])
"""

from .client import VERSION, LLM, Full, Graph, GraphStream, LLMStream, Student, VectorStore
from .errors import (
    AuthenticationError,
    BradaxConnectionError,
    BradaxError,
    ConflictError,
    ErrorDetail,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamError,
    StudentLimitError,
    ValidationError,
)
from .types import (
    DeployResult,
    Document,
    GraphEvent,
    GraphResult,
    Health,
    LLMResponse,
    Metric,
    MetricsResult,
    QueryResult,
    StreamEvent,
    TokenInfo,
    UpsertResult,
    Usage,
    VectorMatch,
)

__version__ = VERSION

__all__ = [
    "Full",
    "Student",
    "LLM",
    "LLMStream",
    "VectorStore",
    "Graph",
    "GraphStream",
    "BradaxError",
    "BradaxConnectionError",
    "AuthenticationError",
    "PermissionDeniedError",
    "StudentLimitError",
    "NotFoundError",
    "ConflictError",
    "QuotaExceededError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "StreamError",
    "ErrorDetail",
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
