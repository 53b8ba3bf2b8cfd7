"""The real public data the tests read when it is present (never committed): the folder
`shared/data` beside the checkout, or the one SHARED_DATA_DIR names. Tests that need a file skip
when it is absent."""

import os
from pathlib import Path

DATA = Path(
    os.environ.get("SHARED_DATA_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data"
)
ARENA_VOTES = DATA / "arena_human_preference_140k_votes.csv.gz"
HH_HARMLESS = DATA / "hh_rlhf_harmless_base_test.jsonl.gz"
ALPACA_EVAL = DATA / "alpaca_eval"  # annotations of 4 models and their published leaderboard rows
