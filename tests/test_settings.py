"""The settings object: defaults, parsing, and errors that name the variable to fix.

Pure: no broker, no real environment (every test passes its own mapping). Why it matters: the
embedded and the compose deployment differ only in these values, so a value silently ignored or
misread would make the two deployments differ in ways no other test would catch.
"""

from pathlib import Path

import msgspec
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from exchange.default_markets import USDT
from exchange.funding_schedule import FundingSchedule
from exchange.index_price import IndexMethod, IndexSource
from exchange.units import RATE_ONE
from services.gateway.config import gateway_config
from services.settings import Settings, SettingsError, env_var, load_settings

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def as_env(settings: Settings) -> dict[str, str]:
    """The environment that describes ``settings`` (the faucet cap and the maker's deposit
    are written in USDT)."""
    env = {env_var(name): str(value) for name, value in msgspec.structs.asdict(settings).items()}
    env["EXCHANGE_FAUCET_CAP"] = str(settings.faucet_cap // USDT)
    env["EXCHANGE_MAKER_DEPOSIT"] = str(settings.maker_deposit // USDT)
    return env


def test_no_variables_give_the_defaults() -> None:
    assert load_settings({}) == Settings()


def test_defaults_are_the_measured_broker_settings() -> None:
    """The values kafka-broker-notes.md measured to work on the embedded broker."""
    settings = Settings()
    assert settings.producer_linger_ms == 5
    assert settings.producer_max_batch_bytes == 256 * 1024
    assert settings.consumer_fetch_max_wait_ms == 10
    assert settings.consumer_session_timeout_ms == 2_000
    assert settings.consumer_heartbeat_interval_ms == 200
    assert settings.default_leverage == 20
    assert settings.faucet_cap == 100_000 * USDT


def test_every_field_is_read_from_its_variable() -> None:
    """Every field has a variable and a parser: a full environment of non-default values is
    read back exactly, so no field can be left out of ``load_settings``."""
    wanted = Settings(
        bootstrap_servers="kafka-1:9092,kafka-2:9092",
        embedded_port=19092,
        broker_start_timeout_ms=5_000,
        replication_factor=3,
        commands_topic="c",
        events_topic="e",
        prices_topic="p",
        risk_topic="r",
        commands_partitions=8,
        events_partitions=9,
        prices_partitions=2,
        risk_partitions=3,
        snapshot_every_commands=500,
        snapshot_every_ms=1_000,
        snapshot_dir="/var/lib/exchange",
        faucet_cap=2_500 * USDT,
        default_leverage=10,
        feed_sample="/data/feed.csv.gz",
        feed_speed=60,
        maker_account=7,
        maker_deposit=2_000 * USDT,
        maker_leverage=5,
        maker_levels=3,
        maker_spread_bps=20,
        maker_step_bps=0,
        maker_level_qty=100,
        maker_max_position=1_000,
        maker_requote_bps=10,
        maker_min_requote_ms=1_000,
        up_without="feed,market-maker",
        oracle_sources="binance-capture:2,okx;ETHUSDT=okx:1",
        oracle_stale_after_ms=120_000,
        oracle_max_deviation_bps=300,
        oracle_index_method="weighted_median",
        oracle_publish_ms=60_000,
        oracle_basis_window=300,
        funding_schedule="3600000;BTCUSDT=60000:5000",
        margin_call_bps=7_500,
        liquidator_resend_ms=2_000,
        liquidator_adl_interval_ms=5_000,
        liquidator_health_port=9001,
        markets_file="/etc/exchange/markets.json",
        health_port=9000,
        health_host="0.0.0.0",
        request_timeout_ms=40_000,
        producer_linger_ms=0,
        producer_max_batch_bytes=1_048_576,
        consumer_fetch_max_wait_ms=100,
        consumer_idle_fetch_max_wait_ms=200,
        consumer_session_timeout_ms=6_000,
        consumer_heartbeat_interval_ms=1_000,
        gateway_host="0.0.0.0",
        gateway_port=9443,
        gateway_master_key="k" * 40,
        gateway_login_window_ms=5_000,
        gateway_nonces_per_key=50,
        gateway_max_frame_bytes=8_192,
        gateway_max_message_bytes=65_536,
        gateway_send_buffer_bytes=1_048_576,
        gateway_connection_request_limit=100,
        gateway_connection_request_window_ms=1_000,
        gateway_account_order_limit=50,
        gateway_account_order_window_ms=1_000,
        gateway_max_commands_per_record=100,
        gateway_flush_interval_ms=0,
        gateway_engine_timeout_ms=5_000,
        gateway_recent_fills=10,
        gateway_finished_orders=10,
        gateway_heartbeat_ms=5_000,
        binance_port=9766,
    )
    defaults = msgspec.structs.asdict(Settings())
    assert all(v != defaults[k] for k, v in msgspec.structs.asdict(wanted).items())
    assert load_settings(as_env(wanted)) == wanted


def test_variable_names() -> None:
    assert env_var("bootstrap_servers") == "EXCHANGE_BOOTSTRAP_SERVERS"
    assert env_var("snapshot_every_ms") == "EXCHANGE_SNAPSHOT_EVERY_MS"


def test_other_variables_are_ignored() -> None:
    assert load_settings({"PATH": "/bin", "EXCHANGEX": "1", "KAFKA_X": "y"}) == Settings()


def test_values_are_normalized() -> None:
    settings = load_settings(
        {
            "EXCHANGE_BOOTSTRAP_SERVERS": " a:1 , [::1]:9092 ",
            "EXCHANGE_COMMANDS_PARTITIONS": " 12 ",
            "EXCHANGE_FAUCET_CAP": "0.5",
        }
    )
    assert settings.bootstrap_servers == "a:1,[::1]:9092"
    assert settings.commands_partitions == 12
    assert settings.faucet_cap == USDT // 2


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("EXCHANGE_COMMANDS_PARTITIONS", "0", "from 1 to 10000"),
        ("EXCHANGE_COMMANDS_PARTITIONS", "four", "whole number"),
        ("EXCHANGE_EVENTS_PARTITIONS", "2.5", "whole number"),
        ("EXCHANGE_PRICES_PARTITIONS", "", "whole number"),
        ("EXCHANGE_DEFAULT_LEVERAGE", "126", "from 1 to 125"),
        ("EXCHANGE_SNAPSHOT_EVERY_COMMANDS", "-1", "from 0"),
        ("EXCHANGE_EMBEDDED_PORT", "70000", "from 0 to 65535"),
        ("EXCHANGE_CONSUMER_FETCH_MAX_WAIT_MS", "1", "from 2"),
        ("EXCHANGE_PRODUCER_MAX_BATCH_BYTES", "2000000", "to 1048576"),
        ("EXCHANGE_BOOTSTRAP_SERVERS", "kafka", "'kafka' is not host:port"),
        ("EXCHANGE_BOOTSTRAP_SERVERS", "kafka:http", "is not host:port"),
        ("EXCHANGE_BOOTSTRAP_SERVERS", "a:1,,b:2", "'' is not host:port"),
        ("EXCHANGE_COMMANDS_TOPIC", "my commands", "Kafka topic name"),
        ("EXCHANGE_EVENTS_TOPIC", "x" * 250, "Kafka topic name"),
        ("EXCHANGE_SNAPSHOT_DIR", " ", "directory"),
        ("EXCHANGE_FAUCET_CAP", "-5", "must be positive"),
        ("EXCHANGE_FAUCET_CAP", "0.000000001", "not a multiple"),
        ("EXCHANGE_FAUCET_CAP", "lots", "not a decimal number"),
        ("EXCHANGE_FEED_SPEED", "0", "from 1 to 10000"),
        ("EXCHANGE_MAKER_ACCOUNT", str(2**31), "to 2147483647"),
        ("EXCHANGE_MAKER_DEPOSIT", "0", "must be positive"),
        ("EXCHANGE_MAKER_SPREAD_BPS", "0", "from 1 to 5000"),
        ("EXCHANGE_MAKER_MIN_REQUOTE_MS", "10", "from 100"),
        ("EXCHANGE_ORACLE_SOURCES", "", "expected source[:weight]"),
        ("EXCHANGE_ORACLE_SOURCES", "a,a", "listed twice"),
        ("EXCHANGE_ORACLE_SOURCES", "a:0", "from 1 to 1000000"),
        ("EXCHANGE_ORACLE_SOURCES", "a;BTCUSDT=b;BTCUSDT=c", "BTCUSDT is given twice"),
        ("EXCHANGE_ORACLE_SOURCES", "=a", "SYMBOL="),
        ("EXCHANGE_ORACLE_INDEX_METHOD", "mean", "weighted_average, weighted_median"),
        ("EXCHANGE_ORACLE_MAX_DEVIATION_BPS", "0", "from 1 to 10000"),
        ("EXCHANGE_ORACLE_PUBLISH_MS", "0", "from 1"),
        ("EXCHANGE_FUNDING_SCHEDULE", "60001", "multiple of 5000 ms"),
        ("EXCHANGE_FUNDING_SCHEDULE", "60000:60000", "from 0 to 59999"),
        ("EXCHANGE_FUNDING_SCHEDULE", "1000", "from 5000"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r}: ")
    assert reason in message


def test_an_unknown_variable_is_refused_with_a_suggestion() -> None:
    """A misspelt variable would otherwise leave its setting at the default, silently."""
    with pytest.raises(SettingsError, match=r"EXCHANGE_COMMAND_TOPIC is not a setting \(did you "):
        load_settings({"EXCHANGE_COMMAND_TOPIC": "x"})
    with pytest.raises(SettingsError, match=r"^EXCHANGE_ZZZ is not a setting$"):
        load_settings({"EXCHANGE_ZZZ": "x"})


@pytest.mark.parametrize(
    ("env", "names"),
    [
        (
            {"EXCHANGE_CONSUMER_HEARTBEAT_INTERVAL_MS": "2000"},
            ["EXCHANGE_CONSUMER_HEARTBEAT_INTERVAL_MS", "EXCHANGE_CONSUMER_SESSION_TIMEOUT_MS"],
        ),
        (
            {"EXCHANGE_CONSUMER_SESSION_TIMEOUT_MS": "30000"},
            ["EXCHANGE_REQUEST_TIMEOUT_MS", "EXCHANGE_CONSUMER_SESSION_TIMEOUT_MS"],
        ),
        (
            {"EXCHANGE_PRICES_TOPIC": "exchange.commands"},
            ["EXCHANGE_PRICES_TOPIC", "EXCHANGE_COMMANDS_TOPIC"],
        ),
    ],
)
def test_contradictory_values_name_every_variable(env: dict[str, str], names: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    for name in names:
        assert name in str(caught.value)


def test_per_market_sources_and_schedules() -> None:
    """An entry for a market replaces the one for every market; a market with no entry that
    applies has no index, and Binance's 8 h schedule."""
    settings = load_settings(
        {
            "EXCHANGE_ORACLE_SOURCES": "BTCUSDT = binance-capture:2 , okx",
            "EXCHANGE_ORACLE_MAX_DEVIATION_BPS": "250",
            "EXCHANGE_FUNDING_SCHEDULE": "BTCUSDT=60000:5000",
        }
    )
    btc = settings.index_config("BTCUSDT")
    assert btc is not None
    assert btc.sources == (IndexSource("binance-capture", 2), IndexSource("okx", 1))
    assert btc.max_deviation == RATE_ONE // 40  # 2.5 %
    assert settings.index_config("ETHUSDT") is None
    assert settings.funding_schedule_of("BTCUSDT") == FundingSchedule(
        interval_ms=60_000, phase_ms=5_000
    )
    assert settings.funding_schedule_of("ETHUSDT") == FundingSchedule()
    default = Settings()
    eth = default.index_config("ETHUSDT")
    assert eth is not None and eth.sources == (IndexSource("binance-capture", 1),)
    assert eth.method is IndexMethod.WEIGHTED_AVERAGE


def test_an_entry_for_a_market_not_traded_is_refused() -> None:
    settings = load_settings({"EXCHANGE_FUNDING_SCHEDULE": "28800000;BTCUSD=60000"})
    with pytest.raises(SettingsError, match=r"EXCHANGE_FUNDING_SCHEDULE: no market 'BTCUSD'"):
        settings.check_markets(["BTCUSDT", "ETHUSDT"])
    Settings().check_markets(["BTCUSDT"])


def test_topic_partitions() -> None:
    settings = load_settings({"EXCHANGE_EVENTS_PARTITIONS": "6", "EXCHANGE_PRICES_TOPIC": "idx"})
    assert settings.topic_partitions() == {
        "exchange.commands": 1,
        "exchange.events": 6,
        "idx": 4,
        "exchange.risk": 4,
    }


async def test_client_configs_are_accepted_by_aiokafka() -> None:
    """The keyword names are aiokafka's (a typo would be a TypeError here, not at deploy time),
    and the fixed choices hold: acks=all, no idempotence, manual commits, earliest reset."""
    settings = Settings()
    producer_config, consumer_config = settings.producer_config(), settings.consumer_config("g")
    assert producer_config["acks"] == "all"
    assert producer_config["enable_idempotence"] is False
    assert consumer_config["enable_auto_commit"] is False
    assert consumer_config["auto_offset_reset"] == "earliest"
    assert consumer_config["group_id"] == "g"
    AIOKafkaProducer(**producer_config)  # constructed, never started: no broker needed
    AIOKafkaConsumer(**consumer_config)


def compose_environment(service: str) -> dict[str, str]:
    """The ``EXCHANGE_*`` entries of one service's ``environment:`` in the compose file, with
    its YAML merge keys (the shared ``x-exchange-env``) resolved as Compose resolves them."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    environment = services[service]["environment"]
    return {k: str(v) for k, v in environment.items() if k.startswith("EXCHANGE_")}


def test_the_compose_engine_is_configured_by_valid_settings() -> None:
    """docker-compose.yml configures the engine only through EXCHANGE_* variables; every one of
    them must be a setting with a valid value, and point at the three Kafka brokers."""
    env = compose_environment("engine")
    assert "EXCHANGE_BOOTSTRAP_SERVERS" in env
    settings = load_settings(env)
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    assert settings.replication_factor == 3


@pytest.mark.parametrize(
    "service", ["gateway", "oracle", "funding", "liquidator", "feed", "market-maker"]
)
def test_the_other_compose_services_share_the_engines_broker_and_topics(service: str) -> None:
    engine, other = load_settings(compose_environment("engine")), compose_environment(service)
    settings = load_settings(other)
    fields = ("bootstrap_servers", "commands_topic", "events_topic", "prices_topic", "risk_topic")
    for field in (*fields, "funding_schedule"):  # the oracle and funding must agree on it
        assert getattr(settings, field) == getattr(engine, field)


def test_a_gateway_needs_a_long_master_key_and_a_message_limit_above_the_frame_limit() -> None:
    with pytest.raises(SettingsError, match="EXCHANGE_GATEWAY_MASTER_KEY"):
        load_settings({"EXCHANGE_GATEWAY_MASTER_KEY": "short"})
    with pytest.raises(SettingsError, match="EXCHANGE_GATEWAY_MAX_MESSAGE_BYTES"):
        load_settings(
            {
                "EXCHANGE_GATEWAY_MAX_FRAME_BYTES": "4096",
                "EXCHANGE_GATEWAY_MAX_MESSAGE_BYTES": "1024",
            }
        )
    with pytest.raises(ValueError, match="needs EXCHANGE_GATEWAY_MASTER_KEY"):
        gateway_config(Settings())
    config = gateway_config(load_settings({"EXCHANGE_GATEWAY_MASTER_KEY": "m" * 32}))
    assert config.master_key == "m" * 32 and config.port == Settings().gateway_port
