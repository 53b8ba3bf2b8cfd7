"""The training run page: real charts (axes, the value under the pointer, scientific notation
for a small learning rate) that stay inside their card on a phone and a laptop and follow a
running run's new steps; the settings as a table; cancel asks first."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import pages
from training.models import TrainingRun

LR_CHART = "#run-charts canvas[aria-label^='learning_rate']"


def _chart(page, selector: str, script: str):
    return page.evaluate(
        f"() => {{ const chart = Chart.getChart(document.querySelector({selector!r})); {script} }}"
    )


@pytest.mark.parametrize("width", pages.WIDTHS.values(), ids=pages.WIDTHS.keys())
@pytest.mark.django_db(transaction=True)
def test_charts_have_axes_hover_values_and_scientific_notation_inside_their_card(
    live_server, page, screenshot, width, researcher, tiny_model_dir, tiny_contestant
):
    run = pages.world(tiny_model_dir, tiny_contestant)["finished"]
    page.set_viewport_size({"width": width, "height": 900})
    pages.log_in(page, live_server.url, "res")
    page.goto(f"{live_server.url}/training/runs/{run.pk}/")
    canvas = page.locator(LR_CHART)
    expect(canvas).to_be_visible()
    expect(page.locator("#run-charts canvas")).to_have_count(2)  # loss and learning_rate
    pages.assert_fits(page)
    card, box = canvas.locator("xpath=ancestor::section[1]").bounding_box(), canvas.bounding_box()
    assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"]
    assert box["height"] >= 150

    ticks = _chart(page, LR_CHART, "return chart.scales.y.ticks.map(t => t.label);")
    assert ticks and all("e-5" in t or "e-05" in t or t == "0" for t in ticks), ticks
    axes = _chart(
        page,
        LR_CHART,
        "return [chart.scales.x.options.title.text, chart.scales.y.options.title.text];",
    )  # noqa: E501
    assert axes == ["step", "learning_rate"]

    canvas.hover()  # scrolled into view, the pointer over the middle of the chart
    page.wait_for_function(
        f"() => Chart.getChart(document.querySelector({LR_CHART!r})).tooltip.opacity > 0"
    )
    lines = _chart(
        page, LR_CHART, "return [chart.tooltip.title, chart.tooltip.body.map(b => b.lines)];"
    )  # noqa: E501
    assert re.fullmatch(r"step \d+", lines[0][0]), lines
    assert re.fullmatch(r"learning_rate: \d(\.\d+)?e-05", lines[1][0][0]), lines
    summary = page.locator("#run-charts .chart-summary").last
    expect(summary).to_contain_text("e-05")
    expect(page.locator("#run-charts")).not_to_contain_text("0.0000")
    screenshot(f"training-run-charts-{width}")

    settings = page.locator("table.settings")
    expect(settings.locator("tr", has_text="learning_rate")).to_contain_text("5e-05")
    expect(settings.locator("tr", has_text="batch_size")).to_contain_text("chosen")
    expect(settings.locator("tr", has_text="kind")).to_contain_text("DPO")
    assert "{'" not in settings.inner_text()  # no Python dict
    final = page.locator("section", has=page.get_by_role("heading", name="Final metrics"))
    expect(final.locator("tr", has_text="learning_rate")).to_contain_text("2.5e-05")


@pytest.mark.django_db(transaction=True)
def test_charts_follow_a_running_run_and_cancel_asks_first(
    live_server, page, screenshot, admin_user, tiny_model_dir, tiny_contestant
):
    run = pages.world(tiny_model_dir, tiny_contestant)["running"]
    pages.log_in(page, live_server.url, "adm")
    page.goto(f"{live_server.url}/training/runs/{run.pk}/")
    expect(page.locator(LR_CHART)).to_be_visible()
    page.evaluate(f"() => {{ document.querySelector({LR_CHART!r}).dataset.first = 'yes'; }}")
    more = run.metrics + [{"step": 4, "loss": 0.5, "learning_rate": 4e-5}]
    TrainingRun.objects.filter(pk=run.pk).update(step=4, metrics=more)
    page.wait_for_function(
        f"() => Chart.getChart(document.querySelector({LR_CHART!r})).data.datasets[0].data.length === 4"  # noqa: E501
    )
    assert page.locator(LR_CHART).get_attribute("data-first") == "yes"  # kept, not redrawn

    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_text("Step 4 of 10")).to_be_visible()
    assert questions and f"Cancel run #{run.pk}?" in questions[0]
    assert not TrainingRun.objects.get(pk=run.pk).cancel_requested

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_text("stopping at the next step")).to_be_visible()
    assert TrainingRun.objects.get(pk=run.pk).cancel_requested
    screenshot("training-run-cancel-requested")
