"""benchmarks/update_drift.py at CI size (lr 1e-3, so 30 updates move the weights).

Before chaos sets in, amago_fast's float32 weights differ from AMAGO's float32 weights by
less than AMAGO's own float32 run differs from its float64 run, i.e. by less than AMAGO's
rounding error. How soon rounding is amplified depends on the CPU's kernels: on an AVX2
core (Zen 3) amago_fast and AMAGO stayed within 3.4e-7 for all 30 updates, on an AVX-512
core (Zen 4) all three runs are 1e-5 apart by update 10 and 1e-3 by update 30, each pair
as far as the others, amago_fast's nearer to AMAGO's exact run in some thread counts and
AMAGO's in others. So the rounding bound is checked over the first five updates, and a
known behavioural difference (dpg_critics="current", warmup_from_zero=False) must open a
gap far wider than rounding by update 10."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
pytestmark = pytest.mark.usefixtures("no_dynamo")

SMALL = dict(
    d_model=32, n_heads=4, n_layers=2, d_ff=64, tstep_hidden=32, tstep_dim=16, head_hidden=32, lr=1e-3, warmup=5
)
MARKS = [1, 3, 5, 10, 20, 30]
BEFORE_CHAOS = 5  # the last update the rounding bound is checked at


def _drift(real_amago, **kw):
    sys.path.insert(0, str(BENCH))
    try:
        import update_drift
    finally:
        sys.path.remove(str(BENCH))
    return update_drift.run_drift(
        real_amago, 30, {**SMALL, **kw}, batch_size=8, n_rollouts=32, meta_horizon=20, checkpoints=MARKS
    )


def test_amago_fast_strays_from_amagos_exact_run_no_more_than_amago_does(real_amago):
    recs = _drift(real_amago)
    assert [r["update"] for r in recs] == MARKS
    for r in recs:
        if r["update"] <= BEFORE_CHAOS:
            # measured, updates 1-5: 2e-8 .. 3.8e-7 against AMAGO's own 2e-8 .. 1.2e-6 (Zen 3 and 4)
            assert r["fast_vs_amago"] <= r["amago_vs_exact"] + 1e-7, r
            assert r["fast_vs_exact"] <= 4 * r["amago_vs_exact"] + 1e-7, r
            assert r["loss"]["fast"] == pytest.approx(r["loss"]["amago"], rel=1e-5), r
        else:  # chaotic: the same training, other rounding (1e-3 relative apart at update 30)
            assert r["loss"]["fast"] == pytest.approx(r["loss"]["amago"], rel=1e-2), r


@pytest.mark.parametrize("behaviour", [{"dpg_critics": "current"}, {"warmup_from_zero": False}], ids=str)
def test_a_behavioural_difference_opens_a_far_wider_gap(real_amago, behaviour):
    at10 = next(r for r in _drift(real_amago, **behaviour) if r["update"] == 10)
    # measured: 1.6e-3 ("current") and 9.7e-3 (warmup) against AMAGO's own 1.1e-5
    assert at10["fast_vs_amago"] > 30 * at10["amago_vs_exact"], at10
