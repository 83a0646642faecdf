"""The interleaved bench's arithmetic: the order of each round, and ratios within rounds."""

from __future__ import annotations

from bench.interleaved import Window, paired_ratios, rotated, spread


def _window(turn: int, target: str, rps: float) -> Window:
    return Window(turn, target, rps, 1.0, 0, 100.0, 0.0)


def test_each_target_leads_a_round_in_turn() -> None:
    targets = ["head", "base", "peer"]
    orders = [rotated(targets, turn) for turn in range(4)]
    assert orders == [
        ["head", "base", "peer"],
        ["base", "peer", "head"],
        ["peer", "head", "base"],
        ["head", "base", "peer"],
    ]
    assert [order[0] for order in orders[:3]] == targets


def test_ratios_pair_windows_of_the_same_round_only() -> None:
    # The host slows down between rounds: the per-round ratio does not see it, a ratio of
    # the two targets' overall medians would if their windows fell unevenly.
    windows = [
        _window(1, "head", 1000.0),
        _window(1, "peer", 800.0),
        _window(2, "peer", 400.0),
        _window(2, "head", 500.0),
        _window(3, "head", 900.0),  # its peer's window is missing: no ratio for round 3
    ]
    assert paired_ratios(windows, "head", "peer") == [1.25, 1.25]
    assert paired_ratios(windows, "peer", "head") == [0.8, 0.8]


def test_a_round_with_nothing_answered_gives_no_ratio() -> None:
    windows = [_window(1, "head", 1000.0), _window(1, "peer", 0.0)]
    assert paired_ratios(windows, "head", "peer") == []


def test_spread_gives_median_quartiles_and_extremes() -> None:
    figures = spread([1.0, 2.0, 3.0, 4.0, 100.0])
    assert figures["median"] == 3.0
    assert figures["min"] == 1.0
    assert figures["max"] == 100.0
    assert figures["q1"] <= figures["median"] <= figures["q3"]
    assert figures["n"] == 5
    assert spread([]) == {}
    assert spread([2.0])["median"] == 2.0
