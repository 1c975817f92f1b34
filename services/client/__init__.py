"""The typed async Python client of the exchange's websocket gateway, for bots.

```python
from services.client import ExchangeClient

async with ExchangeClient("ws://127.0.0.1:8765/ws") as client:
    created = await client.create_account()      # api_key, api_secret: keep them
    await client.login(created.api_key, created.api_secret)
    await client.deposit("10000")
    order = await client.place_order("BTCUSDT", "buy", "0.010", "60000", post_only=True)
    book = await client.order_book("BTCUSDT")    # kept from snapshot + deltas
    async for push in client.my_fills():         # or a callback
        print(push.data.price, push.data.qty)
```

Prices and quantities go in as ``Decimal``, decimal strings or ints, and come back as
``Decimal`` (``views``); an error answer raises ``ExchangeError`` with the gateway's ``code``.
No I/O lives in the domain (``exchange/``): this package is the edge, like the gateway.
"""

from exchange.engine_commands import MarginMode
from exchange.orders import OrderType, Side, StpMode, TimeInForce, TriggerBy
from services.client.book import Level, OrderBook
from services.client.client import ExchangeClient, Number, connect, decimal_text
from services.client.credentials import Credentials, default_credentials_path
from services.client.errors import (
    ClientError,
    ConnectError,
    ConnectionClosedError,
    ExchangeError,
    SequenceGapError,
    SlowConsumerError,
)
from services.client.streams import LiveOrderBook, Push, Subscription
from services.client.views import (
    AccountCreated,
    Balance,
    BookUpdate,
    CancelledAll,
    Fill,
    Funding,
    FundingSettlement,
    Index,
    LeverageSet,
    MarginModeSet,
    Mark,
    Market,
    Order,
    Pong,
    Position,
    Ticker,
    Trade,
)
from services.gateway.protocol import MarginAction, OrderStatus

__all__ = [
    "AccountCreated",
    "Balance",
    "BookUpdate",
    "CancelledAll",
    "ClientError",
    "ConnectError",
    "ConnectionClosedError",
    "Credentials",
    "ExchangeClient",
    "ExchangeError",
    "Fill",
    "Funding",
    "FundingSettlement",
    "Index",
    "Level",
    "LeverageSet",
    "LiveOrderBook",
    "MarginAction",
    "MarginMode",
    "MarginModeSet",
    "Mark",
    "Market",
    "Number",
    "Order",
    "OrderBook",
    "OrderStatus",
    "OrderType",
    "Pong",
    "Position",
    "Push",
    "SequenceGapError",
    "Side",
    "SlowConsumerError",
    "StpMode",
    "Subscription",
    "Ticker",
    "TimeInForce",
    "Trade",
    "TriggerBy",
    "connect",
    "decimal_text",
    "default_credentials_path",
]
