"""What the layout and accessibility tests share: a small world with something on every main
page, logging in, and the checks each page must pass (fits the screen, log-out reachable,
no serious or critical axe-core violation, every control reachable with the Tab key)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from annotation import services as annotation_services
from annotation.models import Item, TaskKind
from arena import battle_io, leaderboards
from arena import services as arena_services
from arena.models import Battle, Generation
from tests.annotation.factories import CompletionFactory, ProjectFactory, PromptFactory
from tests.evaluation.conftest import PROMPTS, judge_by_hand
from tests.training.test_runs import _snapshot
from training.models import RunStatus, TrainingRun

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WIDTHS = {"phone": 390, "desktop": 1366}
# A learning rate that a fixed four-decimal format would show as 0.0000.
LEARNING_RATE = 5e-5


def world(tiny_model_dir, tiny_contestant) -> dict:
    """Contestants with long names, counted votes and a fitted leaderboard, an annotation
    project with a ranking and a demonstration, a finished and a running training run, and an
    evaluation suite with one judged model."""
    _arena(tiny_model_dir)
    project = _project()
    finished, running = _runs(tiny_contestant)

    from evaluation.suites import PromptRow, suite_create

    baseline = arena_services.contestant_create(
        name="tiny-base", display_name="Tiny Base", backend="local", model_path=str(tiny_model_dir)
    )
    suite = suite_create(name="mini", baseline=baseline, prompts=[PromptRow(p) for p in PROMPTS])
    judge_by_hand(suite, tiny_contestant, [2.0, 1.0, 1.5])
    return {"finished": finished, "running": running, "project": project}


def _arena(tiny_model_dir) -> None:
    for name, shown in [
        ("tiny-two", "Tiny Two"),
        ("tiny-long", "A rather long model name that must wrap or scroll on a phone v2"),
    ]:
        arena_services.contestant_create(
            name=name,
            display_name=shown,
            backend="local",
            model_path=str(tiny_model_dir),
            max_new_tokens=6,
            organization="Layout Lab",
        )
    rows = ["model_a,model_b,winner,category"]
    rows += ["tiny-llama,tiny-two,model_a,coding"] * 12 + ["tiny-two,tiny-long,model_a,math"] * 8
    rows += ["tiny-long,tiny-llama,tie,creative_writing"] * 6
    path = Path(tiny_model_dir).parent / "layout-battles.csv"
    path.write_text("\n".join(rows) + "\n")
    battle_io.battles_import(path=path)
    leaderboards.leaderboard_compute(rounds=20)


def _project():
    project = ProjectFactory(slug="layout", name="Layout check", overlap=1, guidelines="Be *kind*.")
    question = [{"role": "user", "content": "Reverse a list"}]
    prompt = PromptFactory(project=project, messages=question)
    answers = [
        CompletionFactory(prompt=prompt, text="Use slicing:\n\n```python\nitems[::-1]\n```"),
        CompletionFactory(prompt=prompt, text="Call `items.reverse()`." + " word" * 80),
        CompletionFactory(prompt=prompt, text="You cannot reverse lists."),
    ]
    annotation_services.ranking_item_create(prompt=prompt, completions=answers)
    demo = PromptFactory(project=project, messages=[{"role": "user", "content": "A sea haiku."}])
    Item.objects.create(project=project, prompt=demo, kind=TaskKind.DEMONSTRATION)
    return project


def _runs(tiny_contestant) -> tuple[TrainingRun, TrainingRun]:
    pairs = _snapshot("preference", [{"prompt": "a", "chosen": "b", "rejected": "c"}] * 4)
    metrics = [
        {"step": s, "loss": 0.69 - 0.02 * s, "learning_rate": LEARNING_RATE * (1 - s / 40)}
        for s in range(1, 21)
    ]
    finished = TrainingRun.objects.create(
        kind="dpo",
        loss_type="sigmoid",
        base_model=tiny_contestant,
        snapshot=pairs,
        hyperparameters={"batch_size": 2, "learning_rate": LEARNING_RATE, "max_length": 48},
        status=RunStatus.SUCCEEDED,
        step=20,
        total_steps=20,
        metrics=metrics,
        summary={"train_loss": 0.41, "learning_rate": LEARNING_RATE / 2},
        log="step 20/20 loss=0.29",
    )
    running = TrainingRun.objects.create(
        kind="sft",
        base_model=tiny_contestant,
        snapshot=pairs,
        hyperparameters={"batch_size": 2},
        status=RunStatus.RUNNING,
        step=3,
        total_steps=10,
        metrics=metrics[:3],
    )
    return finished, running


def log_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_label("Password").press("Enter")
    expect(page.locator("#topbar")).to_contain_text(username)


def open_battle(page, url: str) -> None:
    """Start a battle in the browser and let both answers arrive (written here, no worker)."""
    page.goto(f"{url}/arena/")
    page.get_by_label("Prompt").fill("Write a short poem about the sea")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#battle")).to_be_visible()
    battle = Battle.objects.order_by("-pk").first()
    turn = battle.turns.order_by("-index").first()
    long_answer = "A long line without spaces: " + "x" * 300 + "\n\n```\n" + "y" * 200 + "\n```"
    Generation.objects.filter(pk=turn.generation_a_id).update(status="succeeded", output="Waves.")
    Generation.objects.filter(pk=turn.generation_b_id).update(
        status="succeeded", output=long_answer
    )
    expect(page.get_by_role("button", name="A is better")).to_be_enabled(timeout=15_000)


def assert_fits(page) -> None:
    """Nothing is wider than the window: the page never scrolls sideways."""
    sizes = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]"
    )
    assert max(sizes[0], sizes[2]) <= sizes[1], f"{page.url} is {sizes} px wide"


def assert_account_reachable(page, signed_in: bool = True) -> None:
    """Log-out (or, for a visitor, log-in) can be reached: at once on wide screens, through the
    menu on phones, and inside the screen."""
    toggle = page.get_by_role("button", name="Menu")
    control = (
        page.get_by_role("button", name="Log out")
        if signed_in
        else page.locator("#topbar").get_by_role("link", name="Log in")
    )
    if toggle.is_visible():
        expect(control).to_be_hidden()
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(control).to_be_visible()
        assert_fits(page)
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
        page.keyboard.press("Escape")
        expect(control).to_be_hidden()
    else:
        expect(control).to_be_visible()
        expect(control).to_be_in_viewport()


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())  # evaluated by the browser's debugger, not a <script>
    found = page.evaluate(
        """async () => {
          const result = await axe.run(document, {resultTypes: ["violations"]});
          return result.violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => v.id + " (" + v.impact + "): " + v.help + " at "
                 + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
        }"""
    )
    return [f"{page.url}: {line}" for line in found]


def unreachable_controls(page, limit: int = 300) -> list[str]:
    """Visible, enabled controls that pressing Tab from the top of the page never reaches."""
    count = page.evaluate(
        """() => {
          const selector = "a[href], button, input:not([type=hidden]), select, textarea, summary,"
            + " [tabindex]:not([tabindex='-1'])";
          let n = 0;
          for (const el of document.querySelectorAll(selector)) {
            const box = el.getBoundingClientRect();
            const shown = box.width > 0 && box.height > 0
              && getComputedStyle(el).visibility !== "hidden";
            // tabindex="-1": taken out of the Tab order on purpose, with a key of its own
            // (the ranking list's tie toggles: the = key).
            const skipped = el.getAttribute("tabindex") === "-1";
            if (shown && !el.disabled && !skipped) el.dataset.wantFocus = String(n++);
          }
          window.__reached = new Set();
          document.addEventListener("focusin", (e) => {
            const want = e.target.dataset && e.target.dataset.wantFocus;
            if (want !== undefined) window.__reached.add(want);
          });
          return n;
        }"""
    )
    page.locator("body").focus()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(min(count + 5, limit)):
        page.keyboard.press("Tab")
    return page.evaluate(
        """() => [...document.querySelectorAll("[data-want-focus]")]
          .filter(el => !window.__reached.has(el.dataset.wantFocus))
          .map(el => el.outerHTML.slice(0, 120))"""
    )
