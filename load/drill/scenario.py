"""The drill's scenario file: TOML decoded into typed structs, every mistake reported with where.

``msgspec.toml.decode(..., type=Scenario)`` does the typing: a TOML syntax error names its line
and column, a wrong type or an unknown key names its path (``$.population.accounts``). The
checks that types cannot express (a share above 100 %, a leverage the market does not allow, a
data file that is not there) follow in ``load_scenario`` and name the key the same way, so a
person fixing a scenario always learns the file and the place.

Percentages and prices are decimals (TOML numbers or strings); they become integers at once
(ticks, lots, minor units, basis points) with the rounding stated where it happens.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from exchange.default_markets import DEFAULT_MARKETS, USDT
from exchange.market import MarketSpec
from exchange.units import UnitError, to_units
from load.replay.summary import iso

REPOSITORY = Path(__file__).resolve().parents[2]
"""The repository's root: a relative data file is looked for beside the scenario, then here
(the shipped scenarios name ``../shared/data/...``, the shared data beside the repository)."""

MAX_ACCOUNTS = 900_000
"""Population accounts are numbered 1..N, below the drill's tool accounts (``HOUSE``)."""


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the file and the key or line."""


Fail = Callable[[str, str], ScenarioError]
"""``fail(key, message)``: the error for the key at ``$.key`` of the scenario being checked."""


class Move(msgspec.Struct, tag="move", tag_field="kind", forbid_unknown_fields=True):
    """The price moves by ``change_pct`` (of the price where the segment starts), linearly,
    over ``minutes`` of event time."""

    change_pct: Decimal
    minutes: Decimal


class Hold(msgspec.Struct, tag="hold", tag_field="kind", forbid_unknown_fields=True):
    """The price stays where it is for ``minutes``."""

    minutes: Decimal


class Gap(msgspec.Struct, tag="gap", tag_field="kind", forbid_unknown_fields=True):
    """No tick for ``minutes`` (the feed is silent: the oracle takes the source for stale after
    ``oracle_stale_after_s``), then the price resumes ``change_pct`` away at once."""

    change_pct: Decimal = Decimal(0)
    minutes: Decimal = Decimal(0)


Segment = Move | Hold | Gap


class DataPath(msgspec.Struct, tag="data", tag_field="kind", forbid_unknown_fields=True):
    """A recorded price path: a kline (or OHLCV) file read with ``load.marketdata``, each bar
    becoming O, L, H, C (O, H, L, C for a falling bar) as ``exchange replay`` does, between
    ``start`` and ``end`` (ISO 8601 UTC, inclusive; empty: the whole file). A relative ``file``
    is looked for beside the scenario file, then from the repository's root (``REPOSITORY``)."""

    file: str
    start: str = ""
    end: str = ""


class ScriptedPath(msgspec.Struct, tag="scripted", tag_field="kind", forbid_unknown_fields=True):
    """A scripted path from ``start_price`` at ``start`` through ``segments`` in order."""

    start_price: Decimal
    segments: list[Segment]
    start: str = "2025-06-01T00:00:00Z"


class Population(msgspec.Struct, forbid_unknown_fields=True):
    """The leveraged accounts, drawn from ``Scenario.seed`` (``population.py``).

    ``leverage`` maps a leverage to its weight; ``long_pct`` of the accounts are long,
    ``isolated_pct`` isolated. A size is drawn uniformly in lots between ``size_min`` and
    ``size_max`` (base asset); the deposit is the initial margin plus a buffer drawn uniformly
    between 0 and ``buffer_pct_max`` % of it, plus the taker fee of the opening order."""

    accounts: int
    leverage: dict[int, int]
    size_min: Decimal
    size_max: Decimal
    long_pct: Decimal = Decimal(50)
    isolated_pct: Decimal = Decimal(0)
    buffer_pct_max: Decimal = Decimal(50)


class Liquidity(msgspec.Struct, forbid_unknown_fields=True):
    """The market maker's ladder: ``levels`` a side, ``spread_bps`` between the best bid and
    ask, ``step_bps`` between levels, ``level_size`` (base asset) a level at full depth, quoted
    afresh every ``requote_s`` of event time and whenever the index moved a step. Depth thins
    linearly with the fall below the path's start, to ``crash_depth_pct`` % at the path's
    lowest point."""

    levels: int = 20
    spread_bps: int = 10
    step_bps: int = 10
    level_size: Decimal = Decimal("0.5")
    requote_s: int = 5
    crash_depth_pct: Decimal = Decimal(100)


class Timing(msgspec.Struct, forbid_unknown_fields=True):
    """Time compression. ``funding_every_minutes``: the funding interval of event time (0:
    Binance's 8 h); ``tick_ms``: event time between index ticks; ``oracle_stale_after_s``: how
    long a silent source still counts (Binance 10 s).

    ``lockstep`` (the default): each tick waits until the oracle has published the points the
    previous one closed, the engine has answered every command, and the liquidation service
    has read the whole event log with nothing in flight, so every mark meets the liquidations
    it causes before the next one, as it would when marks come a second apart; the drill runs
    as fast as that loop. Without it, ticks run up to ``ticks_ahead`` beyond the oracle's latest
    mark: faster, but marks then reach the engine in batches and the liquidation service sees
    only the last of each batch, so liquidations come later in event time than they would.

    ``adl_indicators_every_s``: event time between two ADL queue indicator publications of the
    liquidation service (its ``EXCHANGE_LIQUIDATOR_ADL_INTERVAL_MS``, 1 s by default): ranking
    every position costs about a second at 100,000 positions (docs/drills.md, "Limits")."""

    funding_every_minutes: int = 1
    tick_ms: int = 1_000
    lockstep: bool = True
    ticks_ahead: int = 30
    oracle_stale_after_s: int = 30
    adl_indicators_every_s: int = 1


class Scenario(msgspec.Struct, forbid_unknown_fields=True):
    """One drill (docs/drills.md has an annotated example)."""

    name: str
    path: DataPath | ScriptedPath
    population: Population
    symbol: str = "BTCUSDT"
    seed: int = 1
    description: str = ""
    insurance_fund: Decimal = Decimal(0)
    """USDT in the fund at the start."""
    liquidity: Liquidity = msgspec.field(default_factory=Liquidity)
    time: Timing = msgspec.field(default_factory=Timing)


class LoadedScenario(msgspec.Struct, frozen=True):
    """A checked scenario and what it resolves to: the market and the data file's full path."""

    scenario: Scenario
    spec: MarketSpec
    source: Path
    data_file: Path | None


def decode_scenario(text: bytes | str, source: str = "<scenario>") -> Scenario:
    """The scenario in ``text``; ``ScenarioError`` naming ``source`` and the line or key."""
    try:
        return msgspec.toml.decode(text, type=Scenario)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ScenarioError(f"{source}: {error}") from None


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read, decode and check a scenario file (the module docstring says what is checked)."""
    source = Path(path)
    try:
        text = source.read_bytes()
    except OSError as error:
        raise ScenarioError(f"{source}: cannot read: {error.strerror}") from None
    scenario = decode_scenario(text, str(source))
    return check_scenario(scenario, source)


def check_scenario(scenario: Scenario, source: Path) -> LoadedScenario:
    """The checks beyond types; ``source`` locates the data file and the messages."""

    def fail(key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{source}: {message} - at `$.{key}`")

    specs = {spec.symbol: spec for spec in DEFAULT_MARKETS}
    spec = specs.get(scenario.symbol)
    if spec is None:
        raise fail("symbol", f"no market {scenario.symbol!r} (markets: {sorted(specs)})")
    population = scenario.population
    if not 1 <= population.accounts <= MAX_ACCOUNTS:
        raise fail("population.accounts", f"expected 1 to {MAX_ACCOUNTS:,} accounts")
    if not population.leverage:
        raise fail("population.leverage", "expected at least one leverage with its weight")
    first = spec.leverage_brackets[0].max_leverage
    for leverage, weight in population.leverage.items():
        if not 1 <= leverage <= first:
            raise fail("population.leverage", f"leverage {leverage} is not within 1..{first}")
        if weight < 0:
            raise fail("population.leverage", f"the weight of {leverage}x is negative")
    if sum(population.leverage.values()) <= 0:
        raise fail("population.leverage", "the weights add up to nothing")
    for key in ("long_pct", "isolated_pct"):
        if not 0 <= getattr(population, key) <= 100:
            raise fail(f"population.{key}", "expected a percentage from 0 to 100")
    if population.buffer_pct_max < 0:
        raise fail("population.buffer_pct_max", "expected 0 or more")
    size_min = _lots(spec, population.size_min, fail, "population.size_min")
    size_max = _lots(spec, population.size_max, fail, "population.size_max")
    if size_min > size_max:
        raise fail("population.size_max", "below size_min")
    liquidity = scenario.liquidity
    _lots(spec, liquidity.level_size, fail, "liquidity.level_size")
    if not 0 <= liquidity.crash_depth_pct <= 100:
        raise fail("liquidity.crash_depth_pct", "expected a percentage from 0 to 100")
    if liquidity.levels < 1 or liquidity.step_bps < 1 or liquidity.spread_bps < 1:
        raise fail("liquidity", "levels, step_bps and spread_bps must be at least 1")
    if liquidity.spread_bps // 2 + liquidity.levels * liquidity.step_bps >= 500:
        raise fail("liquidity", "the ladder reaches beyond the market's 5 % price band")
    if liquidity.requote_s < 1:
        raise fail("liquidity.requote_s", "expected at least 1 s")
    if scenario.insurance_fund < 0:
        raise fail("insurance_fund", "expected 0 or more USDT")
    if scenario.insurance_fund:
        _usdt(scenario.insurance_fund, fail, "insurance_fund")
    timing = scenario.time
    if timing.funding_every_minutes < 0 or timing.tick_ms < 100 or timing.ticks_ahead < 1:
        raise fail("time", "funding_every_minutes >= 0, tick_ms >= 100, ticks_ahead >= 1")
    if timing.oracle_stale_after_s < 1:
        raise fail("time.oracle_stale_after_s", "expected at least 1 s")
    if timing.adl_indicators_every_s < 1:
        raise fail("time.adl_indicators_every_s", "expected at least 1 s")
    data_file: Path | None = None
    path = scenario.path
    if isinstance(path, DataPath):
        candidates = [(base / path.file).resolve() for base in (source.parent, REPOSITORY)]
        data_file = next((c for c in candidates if c.is_file()), None)
        if data_file is None:
            looked = " and ".join(str(c) for c in dict.fromkeys(candidates))
            raise fail(
                "path.file",
                f"no data file {path.file!r} (looked for {looked}); the bundled crashes are "
                "in the shared data folder beside the repository (../shared/data)",
            )
        for key in ("start", "end"):
            if getattr(path, key):
                parse_time(getattr(path, key), fail, f"path.{key}")
        if timing.tick_ms * 3 > 60_000:
            raise fail("time.tick_ms", "a minute bar has four points: at most 20,000 ms")
    else:
        parse_time(path.start, fail, "path.start")
        if path.start_price <= 0:
            raise fail("path.start_price", "expected a positive price")
        if not path.segments:
            raise fail("path.segments", "expected at least one segment")
        for number, segment in enumerate(path.segments):
            if segment.minutes < 0 or (isinstance(segment, Move) and segment.minutes == 0):
                raise fail(f"path.segments[{number}].minutes", "expected a positive duration")
            if not isinstance(segment, Hold) and segment.change_pct <= -100:
                raise fail(f"path.segments[{number}].change_pct", "a price cannot fall 100 %")
    return LoadedScenario(scenario, spec, source, data_file)


def parse_time(text: str, fail: Fail, key: str) -> int:
    """ISO 8601 (UTC unless it says otherwise) to ms; ``fail(key, message)`` if it is not."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(key, f"{text!r} is not ISO 8601 (2020-03-12T23:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def usdt_units(amount: Decimal) -> int:
    """USDT to minor units, exactly (``to_units`` refuses what is off the 1e-8 grid)."""
    return to_units(str(amount), Decimal(1) / USDT, "amount") if amount else 0


def _usdt(amount: Decimal, fail: Fail, key: str) -> int:
    try:
        return usdt_units(amount)
    except UnitError as error:
        raise fail(key, str(error)) from None


def _lots(spec: MarketSpec, size: Decimal, fail: Fail, key: str) -> int:
    try:
        return spec.qty_to_lots(str(size))
    except UnitError as error:
        raise fail(key, f"{error} (lot {spec.lot_size})") from None


def describe(loaded: LoadedScenario, first_time: int, last_time: int) -> str:
    """One line for logs and the report's title."""
    scenario = loaded.scenario
    return (
        f"{scenario.name}: {scenario.population.accounts:,} accounts on {scenario.symbol}, "
        f"{iso(first_time)} → {iso(last_time)}"
    )
