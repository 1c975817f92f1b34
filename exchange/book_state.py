"""The complete state of one ``MatchingEngine`` as plain, ordered data (snapshot and restore).

The engine is a deterministic state machine, so a market can be recovered from a snapshot plus
the commands after it, instead of replaying its whole history. For that the snapshot must hold
everything that influences future events, including three kinds of order the engine never
writes down explicitly:

- FIFO order within a level, which is *not* ``seq`` order: an amend that loses priority puts the
  order at the back of its level but keeps its ``seq``.
- Dict iteration orders (``_live``, ``_conditional``, ``_ro_resting``, ``_positions``): cancel-all,
  trigger evaluation and reduce-only upkeep walk those dicts, so their order is behaviour.
- The counters (``update_id``, trade id, ``seq``) that number future events.

Every container is a tuple in the order the engine iterates it (never a set or a mapping that
an encoder might reorder), so the same state always encodes to the same bytes and
``MatchingEngine.state_hash`` can compare engines across processes and versions of a run.
"""

import msgspec

from exchange.book import Order


class LevelState(msgspec.Struct, frozen=True, kw_only=True):
    """One price level: its price and the ids of its orders, front of the queue first.

    The level's total is not stored: it is always the sum of its orders' open quantity, and
    storing it twice would only allow a snapshot to contradict itself.
    """

    price: int
    order_ids: tuple[int, ...]


class AccountOrders(msgspec.Struct, frozen=True, kw_only=True):
    """The resting reduce-only orders of one account, in the engine's dict order."""

    account: int
    order_ids: tuple[int, ...]


class BookState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that decides the future events of a ``MatchingEngine``; see the module doc.

    ``orders`` are copies of the engine's live orders (mutating them does not change the
    engine, nor does the engine's next command change them), in the iteration order of its
    ``_live`` dict. The other collections refer to orders by id, because in the engine they
    share the very same order objects, which ``MatchingEngine.restore`` recreates.

    Not stored: the market spec (given to ``restore`` separately), the per-command scratch
    state (events list, the book sides' ``touched`` maps, which are empty between commands),
    and the "triggers due" flag, which between commands can only be set while there is no
    conditional order, and every command that adds one sets it again, so it never matters.
    """

    orders: tuple[Order, ...]
    """Every live order (resting and conditional), in ``_live`` order."""
    bids: tuple[LevelState, ...]
    """Bid levels by ascending price."""
    asks: tuple[LevelState, ...]
    """Ask levels by ascending price."""
    conditional: tuple[int, ...]
    """Ids of the conditional (untriggered) orders, in ``_conditional`` order."""
    reduce_only_resting: tuple[AccountOrders, ...]
    """Resting reduce-only orders per account, accounts and ids in the engine's dict order."""
    positions: tuple[tuple[int, int], ...]
    """(account, net position in lots), in ``_positions`` order, zero positions included."""
    last: int | None
    mark: int | None
    update_id: int
    trade_id: int
    """The id of the latest trade (the next one gets ``trade_id + 1``)."""
    seq: int
    """The ``seq`` of the latest accepted order."""
