"""Offline product counting on synthetic packages: right counts, and "not checked" instead of guesses."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from PIL import Image

from simulation.products import Placement, counter_scene, package_image, package_png
from vision.local_products import LocalProductCounter, load_references
from vision.types import ProductCount

LABELS = ["Bottle", "Box", "Can", "Fruit"]  # Fruit has no reference photo


@pytest.fixture(scope="module")
def counter() -> LocalProductCounter:
    return LocalProductCounter({label: [package_png(label)] for label in ("Bottle", "Box", "Can")})


def counted(counter: LocalProductCounter, placements: list[Placement], *, seed: int = 0) -> dict[str, int | None]:
    return {c.label: c.seen for c in counter.count(counter_scene(placements, seed=seed), LABELS)}


BOTTLES = [
    Placement("Bottle", (190, 200), 0.8, 5),
    Placement("Bottle", (620, 420), 1.1, -8),
    Placement("Bottle", (960, 575), 0.5, 0),
]
BOX = Placement("Box", (1030, 250), 0.9, 3)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_counts_zero_to_three_copies_beside_another_product(counter, n):
    assert counted(counter, BOTTLES[:n] + [BOX], seed=n) == {"Bottle": n, "Box": 1, "Can": 0, "Fruit": None}


def test_counts_several_labels_at_other_places_scales_and_angles(counter):
    placements = [
        Placement("Can", (170, 520), 0.6, -11),
        Placement("Can", (480, 200), 0.95, 9),
        Placement("Box", (800, 480), 0.7, -4),
        Placement("Box", (1120, 200), 1.0, 12),
        Placement("Bottle", (1130, 560), 0.55, 6),
        Placement("Can", (520, 560), 0.5, 2),
    ]
    assert counted(counter, placements, seed=7) == {"Bottle": 1, "Box": 2, "Can": 3, "Fruit": None}


def test_an_empty_counter_counts_nothing_of_anything(counter):
    assert counted(counter, [], seed=3) == {"Bottle": 0, "Box": 0, "Can": 0, "Fruit": None}


def test_confidence_comes_with_what_was_found(counter):
    counts = counter.count(counter_scene(BOTTLES[:2], seed=1), ["Bottle", "Box", "Fruit"])
    assert counts[0].seen == 2 and counter.min_similarity <= counts[0].confidence <= 1.0
    assert counts[1] == ProductCount("Box", 0, None)
    assert counts[2] == ProductCount("Fruit", None, None)


def test_an_unreadable_picture_checks_nothing(counter):
    assert counter.count(b"not an image", ["Bottle", "Fruit"]) == [
        ProductCount("Bottle", None),
        ProductCount("Fruit", None),
    ]


def test_a_plain_reference_photo_is_unusable_so_the_label_is_not_checked(caplog):
    blank = io.BytesIO()
    Image.new("RGB", (200, 280), (200, 30, 30)).save(blank, format="PNG")
    plain = LocalProductCounter({"Bag": [blank.getvalue()], "Bottle": [package_png("Bottle")]})
    assert plain.labels == {"Bottle"}
    assert "label Bag: 1 of 1 reference photos unusable" in caplog.text
    [bag, bottle] = plain.count(counter_scene([BOTTLES[0]], seed=2), ["Bag", "Bottle"])
    assert (bag.seen, bottle.seen) == (None, 1)


def test_several_photos_of_one_label_do_not_count_a_package_twice():
    twice = LocalProductCounter({"Bottle": [package_png("Bottle"), package_png("Bottle")]})
    [bottle] = twice.count(counter_scene(BOTTLES[:2], seed=4), ["Bottle"])
    assert bottle.seen == 2


def test_another_variant_of_a_label_is_not_counted_without_its_photo(counter):
    """Same label name, different packaging (seed): the camera cannot know it is a Bottle."""
    assert counted(counter, [Placement("Bottle", (400, 300), 0.9, 0, seed=1)], seed=5)["Bottle"] == 0


def test_load_references_reads_photos_per_label(tmp_path):
    (tmp_path / "whisky.png").write_bytes(package_png("Bottle"))
    (tmp_path / "gin.png").write_bytes(package_png("Bottle", seed=1))
    catalog = [
        SimpleNamespace(sku="1", label="Bottle", reference_images=("whisky.png",)),
        SimpleNamespace(sku="2", label="Bottle", reference_images=("gin.png",)),
        SimpleNamespace(sku="3", label="Box"),
    ]
    references = load_references(catalog, tmp_path)
    assert list(references) == ["Bottle"] and len(references["Bottle"]) == 2


def test_synthetic_packages_are_deterministic_and_distinct():
    assert package_png("Bottle") == package_png("Bottle")
    assert package_png("Bottle") != package_png("Box")
    assert package_png("Bottle", seed=1) != package_png("Bottle")
    assert package_image("Box").size == (200, 280)
    scene = [Placement("Box", (300, 300), 0.7, 4)]
    assert counter_scene(scene, seed=9) == counter_scene(scene, seed=9)
