"""The loop benchmark's figures, computed from recorded runs (pure: no database, no model)."""

from __future__ import annotations

import pytest

from bench.common import labels_to_reach
from bench.loop import (
    Change,
    arms_merged,
    challenger_mean,
    figures,
    first_change,
    gap_closed,
    gap_pooled,
    largest_drop,
    rank_agreement,
    seeds_combined,
)


def test_labels_to_reach_is_the_first_count_at_or_above_the_target() -> None:
    assert labels_to_reach([100, 200, 300, 400], [0.70, 0.79, 0.80, 0.85], 0.80) == 300
    assert labels_to_reach([100, 200], [0.81, 0.70], 0.80) == 100
    assert labels_to_reach([100, 200], [0.70, 0.79], 0.80) is None
    assert labels_to_reach([], [], 0.5) is None


def test_first_change_and_largest_drop_come_from_successive_champions() -> None:
    only_v1 = [Change(0, 1, 0.80, "no champion")]
    assert first_change(only_v1) is None
    assert largest_drop(only_v1) is None
    changes = [*only_v1, Change(150, 4, 0.83, "better"), Change(300, 7, 0.81, "better")]
    assert first_change(changes) == 150
    assert largest_drop(changes) == pytest.approx(0.02)
    rising = [*only_v1, Change(150, 4, 0.83, "better"), Change(300, 7, 0.84, "better")]
    assert largest_drop(rising) == pytest.approx(-0.01)


def test_gap_closed_is_the_share_of_the_way_from_v1_to_the_ceiling() -> None:
    assert gap_closed(0.80, 0.85, 0.90) == pytest.approx(0.5)
    assert gap_closed(0.80, 0.78, 0.90) == pytest.approx(-0.2)
    assert gap_closed(0.91, 0.92, 0.90) is None  # v1 already at the ceiling: no gap to close
    assert gap_closed(None, 0.85, 0.90) is None


def test_challenger_mean_averages_the_challengers_trained_in_the_range() -> None:
    arm = {
        "retrains": [
            {"labels": 0, "challenger_test": {"macro_f1": 0.80}},
            {"labels": 500, "challenger_test": {"macro_f1": 0.84}},
            {"labels": 750, "challenger_test": None},  # a retrain that trained nothing
            {"labels": 1000, "challenger_test": {"macro_f1": 0.86}},
            {"labels": 1050, "challenger_test": {"macro_f1": 0.99}},
        ]
    }
    assert challenger_mean(arm, 500, 1000) == pytest.approx(0.85)
    assert challenger_mean(arm, 2000, 3000) is None
    assert challenger_mean({}, 500, 1000) is None


def _arm(weight: float, changes: list[tuple[int, int, float]], every: int, last: int) -> dict:
    steps = [Change(labels, number, f1, "") for labels, number, f1 in changes]

    def test(labels: int) -> dict | None:  # None before the first champion
        known = [c.macro_f1 for c in steps if c.labels <= labels]
        return {"macro_f1": known[-1]} if known else None

    return {
        "given_label_weight": weight,
        "champion_changes": [vars(c) for c in steps],
        "checkpoints": [{"labels": n, "test": test(n)} for n in range(0, last + 1, every)],
    }


def test_figures_compare_product_and_random_order() -> None:
    arms = {
        "product": _arm(0.5, [(0, 1, 0.80), (150, 2, 0.84), (700, 3, 0.86)], 100, 1000),
        "random": _arm(0.5, [(0, 1, 0.80), (600, 2, 0.81)], 100, 1000),
        # Weight 0: the product's champion reaches 0.95 * 0.90 = 0.855 at 350 labels, random at
        # 900; the checkpoints only see them at 400 and 900.
        "product_w0": _arm(0.0, [(50, 1, 0.60), (350, 5, 0.86)], 100, 400),
        "random_w0": _arm(0.0, [(50, 1, 0.55), (450, 8, 0.85), (900, 17, 0.855)], 100, 900),
    }
    out = figures(arms, ceiling=0.90)
    assert out["first_champion_change"] == {
        "product": 150,
        "random": 600,
        "product_w0": 350,
        "random_w0": 450,
    }
    assert out["weight0_labels_to_target"] == {
        "product_w0": 350,
        "random_w0": 900,
        "ratio": pytest.approx(350 / 900),
    }
    assert out["gain_over_v1_at_500"] == {"product": 0.04, "random": 0.0}
    assert out["gain_over_v1_at_1000"] == {"product": 0.06, "random": 0.01}
    assert out["gap_closed_at_1000"] == {"product": 0.6, "random": 0.1}
    assert out["largest_drop_at_promotion"]["random_w0"] == -0.005


def test_figures_report_the_oracle_arm_beside_the_product_when_it_ran() -> None:
    arms = {
        "product": _arm(0.5, [(0, 1, 0.80), (700, 3, 0.81)], 100, 1000),
        "product_oracle": _arm(0.5, [(0, 1, 0.80), (300, 2, 0.85)], 100, 1000),
    }
    out = figures(arms, ceiling=0.90)
    assert out["gain_over_v1_at_1000"] == {"product": 0.01, "random": None, "product_oracle": 0.05}
    assert out["gap_closed_at_1000"] == {"product": 0.1, "product_oracle": 0.5}
    assert out["first_champion_change"] == {"product": 700, "product_oracle": 300}


def test_figures_measure_the_gap_to_the_pool_ceiling_too_when_known() -> None:
    """The pool's true labels (all the product may train on) give a second, lower ceiling; runs
    stored before it was measured have no such figures."""
    arms = {"product": _arm(0.5, [(0, 1, 0.80), (700, 3, 0.83)], 100, 1000)}
    arms["product"]["retrains"] = [
        {"labels": 500, "challenger_test": {"macro_f1": 0.82}},
        {"labels": 1000, "challenger_test": {"macro_f1": 0.84}},
    ]
    out = figures(arms, ceiling=0.90, pool_ceiling=0.86)
    assert out["pool_ceiling_macro_f1"] == 0.86
    assert out["gap_closed_at_1000"] == {"product": 0.3}
    assert out["gap_closed_at_1000_pool"] == {"product": 0.5}
    assert out["challenger_mean_gap_closed_500_1000_pool"] == {"product": 0.5}
    assert "gap_closed_at_1000_pool" not in figures(arms, ceiling=0.90)


def test_figures_leave_out_what_a_shorter_run_did_not_reach() -> None:
    arms = {"product": _arm(0.5, [(0, 1, 0.80)], 100, 300)}
    out = figures(arms, ceiling=0.90)
    assert out["first_champion_change"] == {"product": None}
    assert out["gain_over_v1_at_500"] == {"product": None, "random": None}
    assert out["weight0_labels_to_target"]["ratio"] is None
    assert out["gap_closed_at_1000"] == {"product": None}


def test_a_random_arm_short_of_the_target_bounds_the_ratio_from_above() -> None:
    """Random order that never reaches the target within its 2,000 labels needs more: the
    product's 600 make the ratio below 600 / 2,000."""
    arms = {
        "product_w0": _arm(0.0, [(50, 1, 0.60), (600, 5, 0.86)], 100, 600),
        "random_w0": _arm(0.0, [(50, 1, 0.55), (900, 8, 0.80)], 100, 2000),
    }
    out = figures(arms, ceiling=0.90)["weight0_labels_to_target"]
    assert out == {"product_w0": 600, "random_w0": None, "ratio": None, "ratio_below": 0.3}
    # Neither reached, or both did: no bound.
    arms["product_w0"] = _arm(0.0, [(50, 1, 0.60)], 100, 600)
    assert "ratio_below" not in figures(arms, ceiling=0.90)["weight0_labels_to_target"]


def test_runs_of_one_seed_merge_into_one_with_figures_across_their_arms() -> None:
    def run(seed: int, ceiling: float, **arms: dict) -> dict:
        return {"config": {"seed": seed}, "ceiling": {"macro_f1": ceiling}, "arms": arms,
                "total_seconds": 10.0}  # fmt: skip

    product = _arm(0.0, [(50, 1, 0.60), (600, 5, 0.86)], 100, 600)
    random_order = _arm(0.0, [(50, 1, 0.55), (1500, 8, 0.86)], 100, 1500)
    merged = arms_merged({"a": run(16, 0.9, product_w0=product),
                          "b": run(16, 0.9, random_w0=random_order)})  # fmt: skip
    assert set(merged["arms"]) == {"product_w0", "random_w0"}
    assert merged["figures"]["weight0_labels_to_target"]["ratio"] == pytest.approx(0.4)
    assert merged["config"]["labels_per_arm"] == {"product_w0": 600, "random_w0": 1500}
    assert merged["total_seconds"] == 20.0
    with pytest.raises(SystemExit, match="one seed"):
        arms_merged({"a": run(16, 0.9, product_w0=product),
                     "b": run(17, 0.9, random_w0=random_order)})  # fmt: skip
    with pytest.raises(SystemExit, match="more than one run"):
        arms_merged({"a": run(16, 0.9, product_w0=product),
                     "b": run(16, 0.9, product_w0=product)})  # fmt: skip


def test_rank_agreement_is_spearman_over_the_pairs_with_both_values() -> None:
    assert rank_agreement([(0.70, 0.84), (0.72, 0.85), (0.75, 0.86)]) == pytest.approx(1.0)
    assert rank_agreement([(0.75, 0.84), (0.72, 0.85), (0.70, 0.86)]) == pytest.approx(-1.0)
    # A version without a figure on one side is left out; fewer than 3 left: no correlation.
    assert rank_agreement([(0.70, 0.84), (0.72, 0.85), (None, 0.86), (0.9, None)]) is None
    assert rank_agreement([(0.70, 0.84), (0.70, 0.85), (0.70, 0.86)]) is None  # all tied


def test_seeds_combined_puts_each_runs_figure_beside_the_mean() -> None:
    runs = {
        "s16": {"figures": {"ceiling_macro_f1": 0.86, "gap": {"product": 0.2, "random": None}}},
        "s17": {"figures": {"ceiling_macro_f1": 0.88, "gap": {"product": 0.4}}},
    }
    combined = seeds_combined(runs)
    assert combined["ceiling_macro_f1"] == {
        "runs": {"s16": 0.86, "s17": 0.88},
        "mean": pytest.approx(0.87),
    }
    assert combined["gap"]["product"] == {"runs": {"s16": 0.2, "s17": 0.4}, "mean": 0.3}
    # A run without the arm, or with no figure for it, is shown and left out of the mean.
    assert combined["gap"]["random"] == {"runs": {"s16": None, "s17": None}, "mean": None}


def test_gap_pooled_weighs_each_seed_by_its_gap() -> None:
    def run(ceiling: float, v1: float, share: float | None) -> dict:
        return {
            "figures": {
                "ceiling_macro_f1": ceiling,
                "v1_macro_f1": {"product": v1},
                "challenger_mean_gap_closed_500_1000": {"product": share},
            }
        }

    # Gains 0.005 and 0.0075 over gaps 0.02 and 0.01: 0.0125 / 0.03, not the shares' mean 0.5.
    runs = {"a": run(0.87, 0.85, 0.25), "b": run(0.86, 0.85, 0.75), "c": run(0.86, 0.85, None)}
    figure = seeds_combined(runs)["challenger_mean_gap_closed_500_1000"]["product"]
    assert figure["mean"] == pytest.approx(0.5)
    assert figure["pooled"] == pytest.approx(0.4167, abs=1e-4)
    assert gap_pooled({"c": runs["c"]}, "challenger_mean_gap_closed_500_1000", "product") is None
