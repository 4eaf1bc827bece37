"""bench.report: in-process ratios judged on their per-round 95 % interval."""

from __future__ import annotations

from typing import Any

from bench.report import DASH, TIMES, _overhead_ratio_target


def _row(rounds: list[float]) -> dict[str, Any]:
    return {"overhead_us": {"median": sorted(rounds)[len(rounds) // 2], "rounds": rounds}}


def test_a_ratio_is_met_only_when_its_whole_interval_is_within_the_goal() -> None:
    peer = _row([40.0] * 9)
    inside = _overhead_ratio_target(
        "x", _row([8.0, 9.0, 9.5, 10.0, 8.5, 9.0, 9.2, 8.8, 9.1]), peer, 0.25
    )
    assert inside["met"] is True and inside["measured"].startswith(f"0.23{TIMES}")
    over = _overhead_ratio_target("x", _row([12.0] * 9), peer, 0.25)
    assert over["met"] is False
    noisy = _row([4.0, 6.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0, 16.0])
    straddles = _overhead_ratio_target("x", noisy, peer, 0.25)
    assert straddles["met"] is None and f"95 % CI 0.15{DASH}0.40" in straddles["measured"]
    assert _overhead_ratio_target("x", None, peer, 0.25)["met"] is None
