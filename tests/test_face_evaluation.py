"""``python -m bot evaluate-faces``: a set built from the public-domain faces, run on the local backend and on the
Rekognition stand-in, its rates checked against counts this test computes on its own from the faces' descriptors.

Only two real people ship with the project, so the set is small and the small-set warning must appear.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy.stats import binomtest

from bot.__main__ import main
from bot.evaluate_faces import REKOGNITION_MAX_USERS, scratch_backend, too_many_people
from core.config import load_config_from_environment
from handlers.learning.evaluation_rates import rate
from simulation.rekognition_server import RekognitionStandIn
from storage.db import Database
from storage.uow import UnitOfWork
from tests.conftest import POS_SECRET, REPO
from tests.face_sets import NO_FACE, build_set
from vision.local_faces import LocalFaceBackend, similarity

ODD_NAME = "O'Brien <b>x"  # a folder name that must stay text in the HTML
MATCH, REVIEW = 90.0, 80.0  # config/flp.yaml's thresholds
# The independent scores come from descriptors of the whole photos; the evaluation enrolls from the face's crop,
# as enrollment does, which moves a similarity by a little: counts are compared where no score is this near.
NEAR = 2.0


@pytest.fixture(scope="module")
def face_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_set(tmp_path_factory.mktemp("faces") / "set")
    odd = root / ODD_NAME
    odd.mkdir()
    (odd / "cat.png").write_bytes((root / NO_FACE / "cat.png").read_bytes())
    return root


@pytest.fixture(scope="module")
def independent(face_set: Path) -> dict[str, Any]:
    """Each photo's largest face descriptor (None: no face of 40 px or more), by this test's own detection."""
    backend = LocalFaceBackend()
    descriptors: dict[tuple[str, str], np.ndarray | None] = {}
    for file in sorted(face_set.glob("*/*")):
        faces = [f for f in backend.detect(file.read_bytes()) if f.size_px >= 40]
        descriptors[(file.parent.name, file.name)] = max(faces, key=lambda f: f.size_px).handle if faces else None
    return descriptors


def evaluate(face_set: Path, tmp: Path, **environ: str) -> tuple[int, str, dict[str, Any], Path]:
    out = tmp / "report"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLP_CONFIG", str(REPO / "config" / "flp.yaml"))
        patch.setenv("DATA_DIR", str(tmp / "data"))
        for name, value in environ.items():
            patch.setenv(name, value)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(["evaluate-faces", str(face_set), "--out", str(out)])
    return code, printed.getvalue(), json.loads((out / "report.json").read_text(encoding="utf-8")), out


@pytest.fixture(scope="module")
def local_run(face_set: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("local")
    return evaluate(face_set, tmp, DATABASE_URL=f"sqlite:///{tmp / 'flp.db'}", RECOGNITION_BACKEND="local")


def expected_counts(
    independent: dict[tuple[str, str], np.ndarray | None], enrolled: dict[str, str], threshold: float
) -> dict[str, int]:
    """Genuine and impostor comparisons and their errors at ``threshold``, from the whole-photo descriptors."""
    gallery = {person: independent[(person, photo)] for person, photo in enrolled.items()}
    counts = dict.fromkeys(("genuine", "misses", "impostor", "false_matches"), 0)
    for (person, photo), descriptor in independent.items():
        if descriptor is None or enrolled.get(person) == photo:
            continue
        for against, enrolled_descriptor in gallery.items():
            score = similarity(float(np.linalg.norm(descriptor - enrolled_descriptor)))
            if against == person:
                counts["genuine"] += 1
                counts["misses"] += score < threshold
            else:
                counts["impostor"] += 1
                counts["false_matches"] += score >= threshold
    return counts


def clear_thresholds(independent: dict, enrolled: dict[str, str]) -> list[int]:
    """Thresholds no independent score is near, where both ways of counting must agree exactly."""
    gallery = [independent[(p, f)] for p, f in enrolled.items()]
    scores = [
        similarity(float(np.linalg.norm(d - g)))
        for (p, f), d in independent.items()
        if d is not None and enrolled.get(p) != f
        for g in gallery
    ]
    return [t for t in range(50, 100) if all(abs(s - t) > NEAR for s in scores)]


def check_rates_against_independent_counts(report: dict[str, Any], independent: dict) -> None:
    enrolled = report["enrolled"]
    rows = {row["threshold"]: row for row in report["thresholds"]}
    clear = clear_thresholds(independent, enrolled)
    assert len(clear) >= 20, clear  # most of 50..99: the check below covers the range
    assert any(t < 80 for t in clear) and any(t >= 90 for t in clear)
    for threshold in clear:
        want, row = expected_counts(independent, enrolled, threshold), rows[float(threshold)]
        assert (row["false_match"]["errors"], row["false_match"]["trials"]) == (want["false_matches"], want["impostor"])
        assert (row["false_non_match"]["errors"], row["false_non_match"]["trials"]) == (want["misses"], want["genuine"])
    # Some threshold must see errors of each kind, or the comparison above would prove little.
    assert any(rows[float(t)]["false_match"]["errors"] for t in clear)
    assert any(rows[float(t)]["false_non_match"]["errors"] for t in clear)


def test_local_rates_agree_with_counts_computed_from_the_descriptors(local_run, independent):
    code, _printed, report, _out = local_run
    assert code == 0
    # Astronaut's first photo is blurred past the enrollment gate: the next one is enrolled, as enrollment would.
    assert report["enrolled"] == {"astronaut": "01-front.jpg", "grace_hopper": "01-front.jpg"}
    refused = {(r["person"], r["photo"], r["stage"], r["code"]) for r in report["refusals"]}
    assert ("astronaut", "00-blurred.jpg", "enrollment", "blurred") in refused
    assert {(p, c) for p, _f, s, c in refused if p in (NO_FACE, ODD_NAME)} == {
        (NO_FACE, "no_face"),
        (ODD_NAME, "no_face"),
    }
    assert report["refused_photos"] == 4 and report["people"] == 4 and report["people_enrolled"] == 2
    check_rates_against_independent_counts(report, independent)


def test_every_rate_has_its_wilson_interval(local_run):
    _code, _printed, report, _out = local_run
    for row in report["thresholds"]:
        for kind in ("false_match", "false_non_match"):
            figure = row[kind]
            want = binomtest(figure["errors"], figure["trials"]).proportion_ci(0.95, method="wilson")
            assert figure["low"] == pytest.approx(want.low, abs=1e-9)
            assert figure["high"] == pytest.approx(want.high, abs=1e-9)
    assert rate(0, 0).low is None


def test_small_set_is_warned_about_and_the_configured_thresholds_are_marked(local_run):
    _code, printed, report, out = local_run
    assert "WARNING: The set is too small to say anything: 2 people enrolled" in printed
    assert report["too_small"] is True and any("too small" in w for w in report["warnings"])
    lines = printed.splitlines()
    assert any(line.strip().startswith("90 ") and line.endswith("<- match_threshold") for line in lines)
    assert any(line.strip().startswith("80 ") and line.endswith("<- review_threshold") for line in lines)
    assert [row["threshold"] for row in report["thresholds"]] == [float(t) for t in range(50, 100)]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<b>match_threshold 90</b>" in html and "<b>review_threshold 80</b>" in html
    assert "The set is too small to say anything" in html
    assert "O&#39;Brien &lt;b&gt;x" in html and "<b>x" not in html
    chart = (out / "threshold-chart.png").read_bytes()
    assert chart.startswith(b"\x89PNG\r\n\x1a\n") and len(chart) > 10_000
    assert "data:image/png;base64," in html  # the chart travels inside the report


def test_the_run_is_recorded_for_check_config(local_run, face_set, tmp_path, capsys, monkeypatch):
    _code, _printed, report, out = local_run
    database_url = f"sqlite:///{out.parent / 'flp.db'}"
    db = Database(database_url)
    try:
        with UnitOfWork(db) as uow:
            row = uow.face_evaluations.latest("local")
            assert uow.face_evaluations.latest("rekognition") is None
    finally:
        db.dispose()
    assert row is not None and (row.people, row.match_threshold, row.review_threshold) == (2, MATCH, REVIEW)
    assert row.figures["match_threshold"] == report["match_threshold"]
    assert ODD_NAME not in json.dumps(row.figures) and "grace_hopper" not in json.dumps(row.figures)

    def check_config(config: Path, url: str) -> str:
        monkeypatch.setenv("FLP_CONFIG", str(config))
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("POS_WEBHOOK_SECRET", POS_SECRET)
        monkeypatch.setenv("RECOGNITION_BACKEND", "local")
        monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
        assert main(["check-config"]) == 0
        return capsys.readouterr().out

    committed = REPO / "config" / "flp.yaml"
    said = check_config(committed, database_url)
    fmr = report["match_threshold"]["false_match"]
    assert "face evaluation: evaluated" in said and "WARNING" not in said.split("face evaluation:")[1]
    assert f"false matches {100 * fmr['rate']:.1f} %" in said
    moved = yaml.safe_load(committed.read_text(encoding="utf-8"))
    moved["recognition"]["match_threshold"] = 85
    changed = tmp_path / "flp.yaml"
    changed.write_text(yaml.safe_dump(moved), encoding="utf-8")
    said = check_config(changed, database_url)
    assert (
        "face evaluation: WARNING: the thresholds changed" in said and "match 90 / review 80 then, 85 / 80 now" in said
    )
    fresh = tmp_path / "never.db"
    said = check_config(committed, f"sqlite:///{fresh}")
    assert "face evaluation: WARNING: face matching on local was never evaluated" in said
    assert not fresh.exists()  # check-config creates no database


@pytest.fixture
def rekognition() -> Iterator[RekognitionStandIn]:
    stand_in = RekognitionStandIn().start()
    yield stand_in
    stand_in.stop()


def test_rekognition_run_uses_a_collection_of_its_own_and_agrees_with_the_counts(
    rekognition, face_set, independent, tmp_path
):
    # The store's watchlist collection exists with someone in it: the evaluation must not touch it.
    rekognition.answer("CreateCollection", {"CollectionId": "flp-watchlist"})
    rekognition.answer("CreateUser", {"CollectionId": "flp-watchlist", "UserId": "P-1"})
    code, printed, report, _out = evaluate(
        face_set,
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'flp.db'}",
        RECOGNITION_BACKEND="rekognition",
        REKOGNITION_COLLECTION_ID="flp-watchlist",
        AWS_ENDPOINT_URL=rekognition.endpoint_url,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    assert code == 0 and report["backend"] == "rekognition"
    assert rekognition.collection_ids() == ["flp-watchlist"]  # the run's own collection is gone
    assert rekognition.users("flp-watchlist") == {"P-1": set()}
    assert rekognition.calls.count("CreateCollection") == 2 and rekognition.calls.count("DeleteCollection") == 1
    assert report["enrolled"] == {"astronaut": "01-front.jpg", "grace_hopper": "01-front.jpg"}
    check_rates_against_independent_counts(report, independent)
    assert "WARNING: The set is too small to say anything" in printed


def test_the_runs_collection_is_deleted_when_the_run_fails(rekognition, monkeypatch, tmp_path):
    for name, value in {
        "FLP_CONFIG": str(REPO / "config" / "flp.yaml"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'flp.db'}",
        "RECOGNITION_BACKEND": "rekognition",
        "AWS_ENDPOINT_URL": rekognition.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    config = load_config_from_environment("db")
    with pytest.raises(RuntimeError), scratch_backend(config, "rekognition") as faces:
        assert rekognition.collection_ids() == [faces.collection_id]  # type: ignore[attr-defined]
        assert faces.collection_id.startswith("flp-watchlist-evaluation-")  # type: ignore[attr-defined]
        raise RuntimeError("the run broke half-way")
    assert rekognition.collection_ids() == []


def test_a_folder_without_photos_is_told_plainly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLP_CONFIG", str(REPO / "config" / "flp.yaml"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'flp.db'}")
    (tmp_path / "photos" / "ana").mkdir(parents=True)
    (tmp_path / "photos" / "ana" / "notes.txt").write_text("not a photo", encoding="utf-8")
    assert main(["evaluate-faces", str(tmp_path / "photos")]) == 2
    assert "has no person folders with JPEG or PNG photos" in capsys.readouterr().err
    assert main(["evaluate-faces", str(tmp_path / "missing")]) == 2
    assert not (tmp_path / "flp.db").exists()  # nothing was run, nothing recorded


def test_more_people_than_a_rekognition_search_names_is_warned_about():
    assert too_many_people("rekognition", REKOGNITION_MAX_USERS) is None
    assert too_many_people("local", REKOGNITION_MAX_USERS + 1) is None  # the local gallery is searched whole
    warning = too_many_people("rekognition", REKOGNITION_MAX_USERS + 1)
    assert warning and f"{REKOGNITION_MAX_USERS + 1} people" in warning and "lower bound" in warning
