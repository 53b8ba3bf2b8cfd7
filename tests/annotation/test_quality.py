"""The pure quality functions, checked against hand-worked and published numbers."""

import pytest

from annotation import quality


def test_parse_order_reads_ties_and_strict_preferences():
    assert quality.parse_order("d > c > a = b", "ABCD") == [["D"], ["C"], ["A", "B"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A > B", "C is missing"),
        ("A > B > C > A", "appears more than once"),
        ("A > B > E", "no answer E"),
        ("A > > B", "Cannot read"),
        ("A > B >", "ends with"),
        ("", "Order the answers"),
    ],
)
def test_parse_order_explains_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        quality.parse_order(text, "ABC")


def test_mid_ranks_share_the_places_of_a_tie():
    assert quality.mid_ranks([["D"], ["C"], ["A", "B"]]) == {"D": 1, "C": 2, "A": 3.5, "B": 3.5}


def test_a_ranking_of_k_answers_expands_to_k_choose_2_model_outcomes_with_ties_as_ties():
    owner = {1: "m1", 2: "m2", 3: "m3", 4: None}
    outcomes = quality.model_outcomes([[3], [1, 2], [4]], owner)
    assert sorted(outcomes) == [("m1", "m2", 0.5), ("m1", "m3", 0.0), ("m2", "m3", 0.0)]


def test_krippendorff_alpha_ordinal_matches_krippendorffs_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": ordinal alpha = 0.815.
    n = None
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    units = [{c: v for c, v in enumerate(col) if v is not None} for col in zip(*coders)]
    assert quality.krippendorff_alpha_ordinal(units) == pytest.approx(0.815, abs=5e-4)


def test_alpha_is_one_for_identical_rankings_and_negative_for_reversed_ones():
    same = {"x": {"u": [[1], [2], [3]], "v": [[1], [2], [3]]}}
    reversed_ = {"x": {"u": [[1], [2], [3]], "v": [[3], [2], [1]]}}
    assert quality.krippendorff_alpha_ordinal(quality.rank_units(same)) == 1.0
    assert quality.krippendorff_alpha_ordinal(quality.rank_units(reversed_)) < 0


def test_pairwise_agreement_counts_matching_pair_orders_per_annotator():
    items = {
        1: {"u": [["a"], ["b"], ["c"]], "v": [["a"], ["c"], ["b"]]},  # agree on 2 of 3 pairs
        2: {"u": [["a"], ["b"]], "w": [["a", "b"]]},  # tie vs strict: disagree
    }
    result = quality.pairwise_agreement(items)
    assert result.comparisons == 4
    assert result.rate == pytest.approx(2 / 4)
    assert result.per_annotator["v"] == (pytest.approx(2 / 3), 3)
    assert result.per_annotator["w"] == (0.0, 1)


def test_consensus_puts_the_answer_most_rankings_prefer_first():
    rankings = [[["a"], ["b"], ["c"]], [["a"], ["c"], ["b"]], [["b"], ["a"], ["c"]]]
    order = [member for member, _ in quality.consensus(rankings)]
    assert order[0] == "a" and order[-1] == "c"


def test_position_bias_sees_annotators_who_always_pick_the_first_shown_answer():
    records = [(["x", "y"], [["x"], ["y"]]), (["y", "x"], [["y"], ["x"]])] * 10
    bias = quality.position_bias(records)
    assert bias.first_shown_win_rate == 1.0
    assert bias.positions[0]["top_rate"] == 1.0 and bias.positions[1]["mean_rank"] == 1.0
    assert bias.z > 4


def test_gold_score_is_the_share_of_gold_pair_orders_reproduced():
    assert quality.gold_score([[1], [2], [3]], [[1], [2], [3]]) == 1.0
    assert quality.gold_score([[2], [1], [3]], [[1], [2], [3]]) == pytest.approx(2 / 3)
