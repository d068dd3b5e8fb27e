"""Rate-quality curves of pacodec.quality (what tools/compare.py reports): interpolation, BD-rate,
alignment, means over clips, the summary and its plot.

Needs neither the peer codecs nor ViSQOL."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pacodec import quality


@pytest.fixture
def cmp():
    return quality


RATES = np.array([48.0, 64.0, 80.0, 96.0, 128.0, 160.0])


def linear_in_log(rates, a, b):
    return a + b * np.log(rates)


def test_interpolation_reproduces_a_curve_linear_in_log_rate(cmp):
    q = linear_in_log(RATES, 1.0, 0.5)
    got = cmp.interpolate_quality(RATES, q, [64, 100, 128])
    np.testing.assert_allclose(got, linear_in_log(np.array([64, 100, 128.0]), 1.0, 0.5), rtol=0, atol=1e-12)


def test_interpolation_hits_the_measured_points_and_ignores_input_order(cmp):
    q = np.array([3.1, 3.9, 4.2, 4.4, 4.6, 4.65])
    order = np.array([3, 0, 5, 1, 4, 2])
    got = cmp.interpolate_quality(RATES[order], q[order], RATES)
    np.testing.assert_allclose(got, q, atol=1e-12)


def test_interpolation_is_nan_outside_the_measured_range(cmp):
    got = cmp.interpolate_quality([70, 90, 150], [4.0, 4.3, 4.5], [64, 96, 128, 200])
    assert math.isnan(got[0]) and math.isnan(got[3])
    assert np.all(np.isfinite(got[1:3]))


def test_interpolation_extends_the_end_pieces_by_a_few_percent(cmp):
    q = linear_in_log(RATES, 1.0, 0.5)
    for method in ("pchip", "linear"):
        got = cmp.interpolate_quality(RATES, q, [47.0, 163.0, 45.0], method)
        np.testing.assert_allclose(got[:2], linear_in_log(np.array([47.0, 163.0]), 1.0, 0.5), atol=1e-12)
        assert math.isnan(got[2])


def test_interpolation_stays_within_neighbouring_points(cmp):
    # PCHIP is monotone between monotone data: no overshoot as a cubic spline would give
    q = np.array([2.0, 4.5, 4.6, 4.61, 4.62, 4.7])
    dense = np.linspace(48, 160, 400)
    got = cmp.interpolate_quality(RATES, q, dense)
    assert np.all(np.diff(got) >= -1e-12)
    assert got.min() >= 2.0 - 1e-12 and got.max() <= 4.7 + 1e-12


def test_linear_interpolation_draws_straight_lines_in_log_rate(cmp):
    got = cmp.interpolate_quality([50, 200], [3.0, 4.0], [100, 50, 300], method="linear")
    assert got[0] == pytest.approx(3.5)
    assert got[1] == pytest.approx(3.0)
    assert math.isnan(got[2])


def test_interpolation_methods_agree_on_a_curve_linear_in_log_rate(cmp):
    q = linear_in_log(RATES, 2.0, 0.3)
    targets = [64, 96, 128]
    np.testing.assert_allclose(cmp.interpolate_quality(RATES, q, targets, "linear"),
                               cmp.interpolate_quality(RATES, q, targets, "pchip"), atol=1e-12)
    with pytest.raises(ValueError):
        cmp.interpolate_quality(RATES, q, targets, "cubic")


def test_interpolation_averages_points_at_the_same_rate(cmp):
    got = cmp.interpolate_quality([64, 64, 128], [4.0, 4.2, 4.5], [64])
    assert got[0] == pytest.approx(4.1)


def test_bd_rate_of_identical_curves_is_zero(cmp):
    q = linear_in_log(RATES, -1.0, 1.1)
    assert cmp.bd_rate(RATES, q, RATES, q) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("factor", [0.8, 1.25, 0.5])
def test_bd_rate_of_a_curve_shifted_in_rate_is_the_shift(cmp, factor):
    q = np.array([3.0, 3.8, 4.2, 4.4, 4.55, 4.62])
    assert cmp.bd_rate(RATES, q, RATES * factor, q) == pytest.approx(100 * (factor - 1), abs=1e-9)


def test_bd_rate_matches_the_closed_form_for_different_slopes(cmp):
    # ref: Q = ln r  ->  ln r = Q;  test: Q = 2 ln r - c  ->  ln r = (Q + c) / 2
    r = np.exp(np.linspace(1.0, 4.0, 7))
    q_ref = np.log(r)
    c = 3.0
    q_test = 2 * np.log(r) - c
    lo, hi = max(q_ref.min(), q_test.min()), min(q_ref.max(), q_test.max())
    d = (c - (lo + hi) / 2) / 2
    assert cmp.bd_rate(r, q_ref, r, q_test) == pytest.approx(100 * math.expm1(d), rel=1e-9)


def test_bd_rate_ignores_points_that_do_not_raise_quality(cmp):
    q = np.array([3.0, 3.8, 4.2, 4.4, 4.55, 4.62])
    base = cmp.bd_rate(RATES, q, RATES * 0.9, q)
    with_dip = cmp.bd_rate(np.append(RATES, 200.0), np.append(q, 4.5), RATES * 0.9, q)
    assert with_dip == pytest.approx(base, abs=1e-9)


def test_bd_rate_is_nan_without_quality_overlap(cmp):
    assert math.isnan(cmp.bd_rate([48, 64, 96], [2.0, 2.5, 3.0], [48, 64, 96], [3.5, 4.0, 4.5]))
    assert math.isnan(cmp.bd_rate([48], [2.0], [48, 64], [2.0, 3.0]))


@settings(deadline=None, derandomize=True, database=None, max_examples=50)
@given(st.floats(0.3, 3.0), st.lists(st.floats(0.05, 1.0), min_size=3, max_size=7))
def test_bd_rate_of_a_rate_shift_is_the_shift_for_any_increasing_curve(factor, steps):
    cmp = quality
    q = 1.0 + np.cumsum(steps)
    r = 32.0 * 1.3 ** np.arange(len(q))
    assert cmp.bd_rate(r, q, r * factor, q) == pytest.approx(100 * (factor - 1), rel=1e-7, abs=1e-7)


def test_bd_quality_of_a_quality_offset_is_the_offset(cmp):
    q = np.array([3.0, 3.8, 4.2, 4.4, 4.55, 4.62])
    assert cmp.bd_quality(RATES, q, RATES, q - 0.1) == pytest.approx(-0.1, abs=1e-12)


def test_stereo_equivalent_doubles_mono_only(cmp):
    assert cmp.stereo_equivalent(30.0, 1) == 60.0
    assert cmp.stereo_equivalent(30.0, 2) == 30.0


def test_dcr_compares_with_16_bit_pcm(cmp):
    assert cmp.dcr(1000, 1000, 2) == pytest.approx(0.75)
    assert cmp.dcr(0, 10, 1) == 1.0


@pytest.mark.parametrize("lag", [0, 37, -25, 1000])
def test_best_lag_finds_a_delay_and_align_undoes_it(cmp, lag):
    rng = np.random.default_rng(7)
    ref = rng.standard_normal((8000, 2))
    if lag >= 0:
        deg = np.concatenate([np.zeros((lag, 2)), ref, np.zeros((123, 2))])
    else:
        deg = ref[-lag:]
    assert cmp.best_lag(ref, deg, 2048) == lag
    out = cmp.align(deg, ref.shape[0], lag)
    assert out.shape == ref.shape
    keep = ref.shape[0] - max(0, -lag)
    np.testing.assert_array_equal(out[max(0, -lag):keep], ref[max(0, -lag):keep])


def test_best_lag_respects_its_bound(cmp):
    rng = np.random.default_rng(3)
    ref = rng.standard_normal(4000)
    deg = np.concatenate([np.zeros(500), ref])
    assert abs(cmp.best_lag(ref, deg, 100)) <= 100
    assert cmp.best_lag(ref, deg, 0) == 0


def test_align_cuts_and_pads_to_length(cmp):
    deg = np.arange(10.0).reshape(5, 2)
    assert cmp.align(deg, 3, 0).tolist() == [[0, 1], [2, 3], [4, 5]]
    assert cmp.align(deg, 7, 0)[5:].tolist() == [[0, 0], [0, 0]]


def test_means_skip_failed_rows_and_use_stereo_equivalent_rates(cmp):
    rows = [
        {"codec": "opus", "clip": "a", "nominal_kbps": 64, "stereo_kbps": 70.0, "visqol": 4.0, "dcr": 0.9},
        {"codec": "opus", "clip": "m", "nominal_kbps": 64, "stereo_kbps": 2 * 31.0, "visqol": 3.0, "dcr": 0.8},
        {"codec": "opus", "clip": "x", "nominal_kbps": 64, "error": "boom"},
    ]
    (m,) = cmp.mean_rows(rows)
    assert m["clips"] == 2
    assert m["kbps"] == pytest.approx(66.0)
    assert m["visqol"] == pytest.approx(3.5)


def test_summary_reports_bd_rate_of_pacodec_against_each_peer(cmp):
    rows = []
    for codec, factor in (("pacodec", 0.9), ("opus", 1.0), ("lame", 1.2)):
        for nominal, q in zip(RATES, [3.0, 3.8, 4.2, 4.4, 4.55, 4.62]):
            rows.append({"codec": codec, "clip": "a", "nominal_kbps": float(nominal),
                         "stereo_kbps": nominal * factor, "visqol": q, "dcr": 0.9})
    means, curve, interp, bd, bdq = cmp.summarise(rows)
    assert set(bd) == {"visqol"}          # no row has a 2f score: that metric is left out
    assert set(bd["visqol"]) == {"pacodec"}
    assert bd["visqol"]["pacodec"]["opus"] == pytest.approx(-10.0, abs=1e-9)
    assert bd["visqol"]["pacodec"]["lame"] == pytest.approx(100 * (0.9 / 1.2 - 1), abs=1e-9)
    assert set(interp["visqol"]) == {"pchip", "linear"}
    assert set(interp["visqol"]["pchip"]["opus"]) == {"64", "96", "128"}


def test_summary_reports_both_metrics_each_with_its_own_bd_rate(cmp):
    # each metric's curve is linear in log-rate; pacodec's ViSQOL curve is opus16's shifted to 10 % fewer
    # bits, its 2f curve to 50 % more bits: BD-rate must report -10 % on one and +50 % on the other
    q = linear_in_log(RATES, 1.0, 0.5)
    m = linear_in_log(RATES, -100.0, 35.0)
    rows = [{"codec": "opus16", "clip": "a", "nominal_kbps": float(r), "stereo_kbps": float(r),
             "visqol": float(qq), "mms": float(mm), "dcr": 0.9} for r, qq, mm in zip(RATES, q, m)]
    # pacodec at the same rates: ViSQOL as opus at rate/0.9 (needs 10 % fewer bits), 2f as opus at rate/1.5
    rows += [{"codec": "pacodec", "clip": "a", "nominal_kbps": float(r), "stereo_kbps": float(r),
              "visqol": float(linear_in_log(r / 0.9, 1.0, 0.5)), "mms": float(linear_in_log(r / 1.5, -100.0, 35.0)),
              "dcr": 0.9} for r in RATES]
    means, curve, interp, bd, bdq = cmp.summarise(rows)
    assert set(bd) == {"visqol", "mms"}
    assert bd["visqol"]["pacodec"]["opus16"] == pytest.approx(-10.0, abs=1e-6)
    assert bd["mms"]["pacodec"]["opus16"] == pytest.approx(50.0, abs=1e-6)
    assert interp["mms"]["pchip"]["opus16"]["64"] == pytest.approx(float(linear_in_log(64.0, -100.0, 35.0)))
    assert {m["codec"]: m["mms"] for m in means if m["nominal_kbps"] == 64.0}["opus16"] == pytest.approx(
        float(linear_in_log(64.0, -100.0, 35.0)))


def test_means_leave_out_a_metric_some_rows_lack(cmp):
    rows = [{"codec": "opus", "clip": c, "nominal_kbps": 64, "stereo_kbps": 64.0, "visqol": 4.0, "dcr": 0.9,
             "mms": mms} for c, mms in (("a", 70.0), ("b", None))]
    (m,) = cmp.mean_rows(rows)
    assert m["visqol"] == pytest.approx(4.0)
    assert m["mms"] is None


def test_per_clip_matrix_and_plot_of_both_metrics(cmp, tmp_path):
    rows = [{"codec": c, "clip": "a", "nominal_kbps": float(r), "stereo_kbps": float(r) * f, "visqol": 4.0 + r / 1000,
             "mms": 50 + r / 10, "dcr": 0.9} for c, f in (("pacodec", 1.0), ("opus16", 1.1)) for r in RATES]
    mat = cmp.clip_matrix(rows, "mms", 64.0)
    assert mat == {"a": {"pacodec": pytest.approx(56.4), "opus16": pytest.approx(56.4)}}
    means, curve, interp, bd, bdq = cmp.summarise(rows)
    out = tmp_path / "plot.png"
    assert cmp.plot_curves(out, curve)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
