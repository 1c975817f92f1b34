"""Drill scenarios: the shipped files load, a bad file says where it is wrong, and the price
path is what the scenario says (scripted moves, gaps without ticks, a kline file's four points
a bar)."""

from decimal import Decimal
from pathlib import Path

import pytest

from load.drill.path import build_path, depth_factor_bps, ticks_of
from load.drill.scenario import ScenarioError, load_scenario

DRILLS = Path(__file__).parent.parent / "load" / "drills"
KLINES = Path(__file__).parent / "data" / "btcusdt-1m-20200312-crash.csv"
SHARED = Path(__file__).parent.parent.parent / "shared" / "data"

SCRIPTED = """
name = "test"
[path]
kind = "scripted"
start = "2025-06-01T00:00:00Z"
start_price = 100
segments = [
  { kind = "move", change_pct = -10, minutes = 1 },
  { kind = "gap", change_pct = -5, minutes = 0.5 },
  { kind = "hold", minutes = 0.25 },
]
[population]
accounts = 10
leverage = { 10 = 1 }
size_min = "0.002"
size_max = "0.01"
[time]
tick_ms = 10000
"""


def write(tmp_path: Path, text: str, name: str = "drill.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    return str(caught.value)


@pytest.mark.parametrize("name", sorted(p.name for p in DRILLS.glob("*.toml")))
def test_every_shipped_scenario_loads(name: str) -> None:
    if name.startswith("crash-") and not SHARED.is_dir():
        pytest.skip("the shared data folder is not beside the repository")
    loaded = load_scenario(DRILLS / name)
    assert loaded.scenario.name
    assert len(build_path(loaded).ticks) > 10


def test_a_syntax_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    message = error_of(tmp_path, 'name = "x"\n[path\nkind = 1\n')
    assert "drill.toml" in message and "line 2" in message and "column" in message


def test_a_wrong_type_names_the_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, SCRIPTED.replace("accounts = 10", 'accounts = "ten"'))
    assert "drill.toml" in message and "$.population.accounts" in message


def test_an_unknown_key_is_refused_by_name(tmp_path: Path) -> None:
    message = error_of(tmp_path, SCRIPTED.replace("accounts = 10", "accounts = 10\nacounts = 3"))
    assert "unknown field `acounts`" in message and "$.population" in message


def test_an_unknown_segment_kind_names_the_segment(tmp_path: Path) -> None:
    message = error_of(tmp_path, SCRIPTED.replace('kind = "hold"', 'kind = "pause"'))
    assert "$.path.segments[2]" in message


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("leverage = { 10 = 1 }", "leverage = { 200 = 1 }"), "$.population.leverage"),
        (('size_max = "0.01"', 'size_max = "0.0105"'), "$.population.size_max"),
        (("accounts = 10", "accounts = 10\nlong_pct = 120"), "$.population.long_pct"),
        (("accounts = 10", "accounts = 0"), "$.population.accounts"),
        (("change_pct = -5,", "change_pct = -100,"), "$.path.segments[1].change_pct"),
        (('name = "test"', 'name = "test"\nsymbol = "DOGEUSDT"'), "$.symbol"),
    ],
)
def test_a_value_out_of_range_names_its_key(
    tmp_path: Path, change: tuple[str, str], where: str
) -> None:
    assert where in error_of(tmp_path, SCRIPTED.replace(*change))


def test_a_missing_data_file_says_where_it_looked(tmp_path: Path) -> None:
    text = SCRIPTED.replace(
        'kind = "scripted"', 'kind = "data"\nfile = "../shared/data/nothing.csv"'
    )
    text = text[: text.index("start = ")] + text[text.index("[population]") :]
    message = error_of(tmp_path, text)
    assert "$.path.file" in message and "nothing.csv" in message and "looked for" in message


def test_a_scripted_path_moves_gaps_and_holds(tmp_path: Path) -> None:
    path = build_path(load_scenario(write(tmp_path, SCRIPTED)))
    start = 1_748_736_000_000
    # 100.0 → 90.0 over a minute, ticked every 10 s (ticks of 0.1: 1000 → 900), floored.
    assert path.ticks[:7] == [(start + 10_000 * k, 1000 + (-100 * k) // 6) for k in range(7)]
    # The gap: nothing for 30 s, then 5 % lower (85.5), held a quarter of a minute.
    times = [t for t, _ in path.ticks]
    assert not [t for t in times if start + 60_000 < t < start + 90_000]
    assert path.ticks[7:] == [(start + 90_000, 855), (start + 100_000, 855), (start + 105_000, 855)]
    assert (path.start_price, path.low, path.high) == (1000, 855, 1000)


def test_a_kline_file_becomes_four_points_a_bar_between_the_window(tmp_path: Path) -> None:
    text = f"""
name = "klines"
[path]
kind = "data"
file = "{KLINES}"
start = "2020-03-12T23:00:00Z"
end = "2020-03-12T23:01:00Z"
[population]
accounts = 1
leverage = {{ 10 = 1 }}
size_min = "0.01"
size_max = "0.01"
[time]
tick_ms = 20000
"""
    path = build_path(load_scenario(write(tmp_path, text)))
    first = 1_584_054_000_000  # 2020-03-12T23:00:00Z
    assert [t - first for t, _ in path.ticks] == [
        0,
        20_000,
        40_000,
        59_999,
        60_000,
        80_000,
        100_000,
        119_999,
    ]


def test_ticks_between_knots_are_floored_and_every_knot_is_ticked() -> None:
    assert ticks_of([(0, 10), (3, 0), (5, 4)], 2) == [(0, 10), (2, 3), (3, 0), (4, 2), (5, 4)]


def test_depth_thins_linearly_to_the_crash_depth_at_the_low(tmp_path: Path) -> None:
    path = build_path(load_scenario(write(tmp_path, SCRIPTED)))
    assert depth_factor_bps(path, path.start_price, Decimal(25)) == 10_000
    assert depth_factor_bps(path, path.low, Decimal(25)) == 2_500
    halfway = (path.start_price + path.low) // 2  # 927 of 1000 → 855: 73 of 145 ticks down
    assert depth_factor_bps(path, halfway, Decimal(25)) == 10_000 - 7_500 * 73 // 145
