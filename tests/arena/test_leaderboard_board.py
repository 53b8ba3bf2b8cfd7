"""What the leaderboard shows beside the fit: provisional models apart, style control only
on battles that carry style features, the plain board while another is not there, and
category names as people read them."""

import pytest

from arena import battle_io, leaderboards
from arena.models import LeaderboardSnapshot
from arena.selectors import category_label

pytestmark = pytest.mark.django_db


@pytest.fixture
def battles(tmp_path):
    """alpha, beta and gamma meet dozens of times; delta has two lucky wins over alpha."""
    rows = ["model_a,model_b,winner,category"]
    rows += ["alpha,beta,model_a,coding"] * 30 + ["alpha,beta,model_b,coding"] * 10
    rows += ["beta,gamma,model_a,math"] * 25 + ["beta,gamma,tie,math"] * 5
    rows += ["alpha,gamma,model_a,math"] * 20 + ["alpha,gamma,both_bad,math"] * 4
    rows += ["delta,alpha,model_a,math"] * 2
    path = tmp_path / "battles.csv"
    path.write_text("\n".join(rows) + "\n")
    battle_io.battles_import(path=path)
    return path


def test_models_below_the_minimum_votes_are_listed_apart_and_not_ranked(settings, battles):
    settings.ARENA_MIN_VOTES = 10
    snapshot = leaderboards.leaderboard_compute(rounds=50)
    assert [r["model"] for r in snapshot.rows] == ["alpha", "beta", "gamma"]
    assert [r["model"] for r in snapshot.provisional] == ["delta"]
    assert snapshot.provisional[0]["votes"] == 2


def test_the_page_marks_provisional_models_and_scales_the_plot_to_ranked_ones(
    settings, client, battles
):
    settings.ARENA_MIN_VOTES = 10
    snapshot = leaderboards.leaderboard_compute(rounds=50)
    html = client.get("/arena/leaderboard/").content.decode()
    assert 'id="provisional"' in html and "fewer than 10 votes" in html
    board, provisional = html.split('id="provisional"')
    assert "delta" not in board.split('<svg class="ci"')[0]  # not in the ranked table
    assert "delta" in provisional.split('<svg class="ci"')[0]
    start = html.index('<svg class="ci"')
    svg = html[start : html.index("</svg>", start)]
    assert "delta" not in svg  # its wide interval does not stretch the axis
    ranked_low = min(r["ci_lower"] for r in snapshot.rows)
    assert f">{round(ranked_low)}</text>" in svg


def test_style_control_is_refused_with_the_count_when_too_few_battles_carry_features(
    settings, client, battles
):
    settings.ARENA_STYLE_MIN_BATTLES = 50
    LeaderboardSnapshot.objects.create(style_control=True, battles=3, rows=[])  # a stale fit
    assert leaderboards.leaderboard_compute(style_control=True, rounds=0) is None
    assert not LeaderboardSnapshot.objects.filter(style_control=True).exists()
    leaderboards.leaderboard_compute(rounds=50)
    html = client.get("/arena/leaderboard/?style_control=on").content.decode()
    assert "only 0 of 96 counted votes carry them" in html
    assert "alpha" in html and "Rank (UB)" in html  # the plain board instead of nothing


def test_the_annotation_board_shows_the_plain_board_while_it_is_fitted(client, battles):
    leaderboards.leaderboard_compute(rounds=50)
    html = client.get("/arena/leaderboard/?include_annotation=on").content.decode()
    assert "being fitted in the background" in html and "alpha" in html


def test_filters_go_into_the_address_and_categories_read_as_words(client, battles):
    leaderboards.leaderboards_refresh(rounds=20)
    html = client.get("/arena/leaderboard/?category=math").content.decode()
    assert 'hx-push-url="true"' in html
    assert '<option value="math" selected>Math</option>' in html


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("creative_writing.creative_writing", "Creative writing"),
        ("if.if", "Instruction following"),
        ("math", "Math"),
        ("criteria.domain_knowledge", "Domain knowledge (criterion)"),
        ("hard", "Hard prompts"),
        ("multi_turn", "Multi-turn"),
    ],
)
def test_category_labels(name, label):
    assert category_label(name) == label


def test_the_api_gives_provisional_models_and_style_coverage(settings, api_client, battles):
    settings.ARENA_MIN_VOTES = 10
    leaderboards.leaderboard_compute(rounds=20)
    body = api_client.get("/api/leaderboard/").json()
    assert [r["model"] for r in body["provisional"]] == ["delta"]
    assert body["style_battles"] == 0
