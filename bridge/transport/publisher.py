"""Publish with confirm: the one place aio-pika publish errors are translated."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustChannel
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError
from aio_pika.exceptions import PublishError as ReturnedError

from bridge.transport.errors import PublishError, PublishFailure

log = structlog.get_logger(__name__)

_RECONNECT_POLL_S = 0.1


class Publisher:
    """Publishes persistent, mandatory messages on a confirm channel.

    A publish interrupted by a reconnect is sent again once the channel is
    back, within the same timeout: the broker may then hold two copies, which
    at-least-once delivery and the ledger absorb.
    """

    def __init__(self, channel: AbstractRobustChannel, timeout_s: float) -> None:
        self._channel = channel
        self._timeout_s = timeout_s

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, object],
    ) -> None:
        """Return once the broker confirmed the message.

        Raises PublishError (nacked, returned as unroutable, timeout, connection).
        """
        message = aio_pika.Message(
            body,
            message_id=message_id,
            headers=dict(headers),  # type: ignore[arg-type]
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        interruptions: list[BaseException] = []
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._publish_until_sent(exchange, routing_key, message, interruptions)
        except ReturnedError as exc:
            raise PublishError(PublishFailure.RETURNED, routing_key, "unroutable") from exc
        except DeliveryError as exc:
            raise PublishError(PublishFailure.NACKED, routing_key, "nacked") from exc
        except TimeoutError as exc:
            if interruptions:
                raise PublishError(
                    PublishFailure.CONNECTION, routing_key, repr(interruptions[-1])
                ) from exc
            raise PublishError(
                PublishFailure.TIMEOUT, routing_key, f"no confirm in {self._timeout_s}s"
            ) from exc

    async def _publish_until_sent(
        self,
        exchange_name: str,
        routing_key: str,
        message: aio_pika.Message,
        interruptions: list[BaseException],
    ) -> None:
        while True:
            try:
                await self._channel.ready()
                exchange = await self._channel.get_exchange(exchange_name, ensure=False)
                await exchange.publish(message, routing_key, mandatory=True)
                return
            except (ReturnedError, DeliveryError):
                raise
            except CONNECTION_EXCEPTIONS as exc:
                # Channel or connection lost (or the channel closed by an error
                # such as a missing exchange): wait for the robust restore.
                log.debug("publish.interrupted", routing_key=routing_key, error=repr(exc))
                interruptions.append(exc)
                if not _is_transient(exc):
                    raise PublishError(PublishFailure.CONNECTION, routing_key, repr(exc)) from exc
                await asyncio.sleep(_RECONNECT_POLL_S)


def _is_transient(exc: BaseException) -> bool:
    """A channel-level 404 (missing exchange) will not heal by waiting."""
    return not isinstance(exc, aio_pika.exceptions.ChannelNotFoundEntity)
