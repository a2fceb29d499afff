"""The one retry factory: bounded attempts, a deadline, jittered exponential back-off,
retrying only errors whose `retriable` is true (honouring `RateLimited.retry_after`).

Retry happens around one adapter call, in one layer (the engine's applier). Longer waits
belong to the broker's delayed-retry queues, not to a sleeping coroutine.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from adapters.errors import AdapterError, RateLimited


class RetryPolicy(BaseModel, frozen=True):
    """How one call is retried. `max_attempts` and `deadline_s` always bound it."""

    max_attempts: int = Field(default=4, ge=1)
    deadline_s: float = Field(default=30.0, gt=0)
    initial_s: float = Field(default=0.2, ge=0)
    max_wait_s: float = Field(default=5.0, ge=0)
    jitter_s: float = Field(default=0.2, ge=0)
    max_retry_after_s: float = Field(
        default=10.0, ge=0, description="a longer Retry-After is left to the broker's retry queues"
    )

    @classmethod
    def no_wait(cls, max_attempts: int = 3) -> RetryPolicy:
        """For tests: same bounds, no sleeping."""
        return cls(max_attempts=max_attempts, initial_s=0, max_wait_s=0, jitter_s=0)


def _is_retriable(exc: BaseException) -> bool:
    return isinstance(exc, AdapterError) and exc.retriable


def retrying(policy: RetryPolicy) -> AsyncRetrying:
    """An `AsyncRetrying` for one adapter call; re-raises the last error when it gives up."""
    backoff = wait_exponential_jitter(
        multiplier=policy.initial_s, max=policy.max_wait_s, jitter=policy.jitter_s
    )

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            if exc.retry_after > policy.max_retry_after_s:
                # Stop here: the broker's delayed retry is the right place for a long wait.
                raise exc
            return exc.retry_after
        return backoff(state)

    return AsyncRetrying(
        retry=retry_if_exception(_is_retriable),
        stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.deadline_s),
        wait=wait,
        reraise=True,
    )
