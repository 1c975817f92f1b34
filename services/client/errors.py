"""What the client raises. One base, ``ClientError``, so a bot can catch everything the client
means to raise in one place, and one subclass per thing a bot does something different about.
"""


class ClientError(Exception):
    """Anything the client raises on purpose."""


class ExchangeError(ClientError):
    """The gateway answered a request with an error (docs/gateway-protocol.md, *Errors*).

    ``code`` is what a program branches on (``insufficient_margin``, ``rate_limited``,
    ``unknown_order``…); ``message`` is for people and may change; ``retry_after_ms`` is set
    for ``rate_limited``: when the request would be allowed.
    """

    def __init__(self, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


class ConnectError(ClientError):
    """The websocket could not be opened (nothing listening, or the gateway still catching up
    with the event log, which it answers with HTTP 503)."""


class ConnectionClosedError(ClientError):
    """The websocket closed: requests still waiting for an answer, and open subscriptions, end
    with this. A command sent just before may or may not have been applied: look
    (``open_orders``, ``order``) after reconnecting."""


class SequenceGapError(ClientError):
    """A push's ``seq`` was not the one after the last: a push was lost. The gateway never
    drops a push silently (it disconnects a slow client instead), so this is a bug somewhere;
    a subscription made with ``resubscribe_on_gap=True`` resubscribes instead of raising."""

    def __init__(self, channel: str, expected: int, got: int) -> None:
        super().__init__(f"{channel}: expected seq {expected}, got {got}")
        self.channel = channel
        self.expected = expected
        self.got = got


class SlowConsumerError(ClientError):
    """A subscription's unread pushes reached its ``max_queue``: the code reading it is slower
    than the stream. The subscription ends rather than grow without bound or drop pushes
    silently, as the gateway itself does with a slow client."""
