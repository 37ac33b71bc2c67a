"""``python -m bot demo --auto`` as a person runs it: the whole story offline, and a summary that is true.

The demo runs as a subprocess on its own SQLite file and port; its printed summary is checked
against that database, counted here independently.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import REPO
from tests.served import free_port

pytestmark = pytest.mark.slow
KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "CI")


def test_demo_auto_plays_the_day_and_its_summary_matches_the_database(tmp_path):
    database = tmp_path / "demo.db"
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if k in KEEP},
        "DATABASE_URL": f"sqlite:///{database}",
        "DATA_DIR": str(tmp_path / "data"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--auto"],
        cwd=REPO,
        env=environ,
        text=True,
        capture_output=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout
    assert done.returncode == 0, f"{output[-4000:]}\n{done.stderr[-4000:]}"
    assert f"http://127.0.0.1:{port}/console" in output
    assert re.search(r"ana@example\.com\s+manager\s+\S{20,}", output)  # the console tokens are printed
    summary = {name: int(value) for name, value in re.findall(r"^  ([a-z ]+): (\d+)", output, re.MULTILINE)}

    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as db:

        def count(query: str) -> int:
            return db.execute(text(query)).scalar()

        counted = {
            "transactions": count("SELECT count(*) FROM transactions"),
            "pictures": count("SELECT count(*) FROM snapshots WHERE status = 'ready'"),
            "faces": count("SELECT count(*) FROM faces"),
            "matches": count("SELECT count(*) FROM face_matches"),
            "alerts": count("SELECT count(*) FROM alerts"),
            "decisions": count("SELECT count(*) FROM alerts WHERE status IN ('confirmed', 'dismissed')"),
            "fraud reports": count("SELECT count(*) FROM fraud_reports"),
            "watchlist": count("SELECT count(*) FROM watchlist_people"),
        }
        rules = [row[0] for row in db.execute(text("SELECT rule FROM alerts ORDER BY id"))]
        console_presses = count("SELECT count(*) FROM inbound_events WHERE source = 'console'")
    engine.dispose()
    assert {name: summary[name] for name in counted} == counted
    assert counted["transactions"] == 13 and counted["pictures"] >= 9
    # The manager decided every alert through the console: the under-ring, the keyed cards, the cashier's
    # refund of their own sale (a pattern rule), the return visit.
    assert counted["decisions"] == counted["alerts"] and console_presses >= counted["alerts"]
    assert rules[:4] == ["product_mismatch", "keyed_card_high_risk", "keyed_card_high_risk", "refund_of_own_sale"]
    # The charged-back shopper was enrolled and recognised when she came back, at the other register.
    assert counted["watchlist"] == 1 and counted["matches"] >= 1 and rules[-1] == "watchlist_match"


def test_the_demo_fills_only_what_it_is_not_given_and_resets_only_its_own_data():
    from bot.demo import DEMO_CONFIG, environment_defaults

    given: dict[str, str] = {"API_TOKEN": "mine", "PORT": "9999", "DATABASE_URL": ""}
    assert environment_defaults(given) is True  # an empty DATABASE_URL counts as unset: the demo's own scratch data
    assert given["API_TOKEN"] == "mine" and given["PORT"] == "9999" and given["FLP_CONFIG"] == DEMO_CONFIG
    assert given["DATABASE_URL"] == "sqlite:///data/demo/demo.db" and len(given["POS_WEBHOOK_SECRET"]) >= 32
    assert environment_defaults({"DATA_DIR": "/srv/flp"}) is False  # someone else's data is never emptied
