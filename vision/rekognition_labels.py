"""Amazon Rekognition as a ProductCounter: boxes of one chosen label per catalog entry, never a guess.

DetectLabels returns parents with their children ("Beverage" for every "Bottle"), so only the
label named in the catalog is counted, by its Instances (boxes). Labels without boxes can say
"present" but not "how many": those are "not checked" (seen=None). A store's own products can be
counted by a Custom Labels object-detection model instead (a running model version; 4 MB images).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from vision.rekognition import MAX_IMAGE_BYTES, call, sendable
from vision.types import ProductCount

logger = logging.getLogger(__name__)

MAX_CUSTOM_LABELS_IMAGE_BYTES = 4 * 1024 * 1024  # DetectCustomLabels takes less than the other operations


class RekognitionProductCounter:
    """Counts catalog labels with DetectLabels, or with a Custom Labels model for the labels it knows.

    ``countable_labels``: labels known to come with boxes; when DetectLabels does not mention one of
    them the count is 0, while any other unmentioned label stays "not checked" (it may simply be a
    label Rekognition does not know). ``custom_labels``: the labels the custom model was trained on
    (default: all requested labels when a model ARN is given).
    """

    def __init__(
        self,
        client: Any,
        *,
        min_confidence: float = 70.0,
        custom_model_arn: str | None = None,
        custom_labels: Collection[str] | None = None,
        countable_labels: Collection[str] = (),
    ):
        if not 0 <= min_confidence <= 100:
            raise ValueError("min_confidence is 0-100")
        self._client, self.min_confidence, self.custom_model_arn = client, float(min_confidence), custom_model_arn
        self._custom = {label.casefold() for label in custom_labels} if custom_labels is not None else None
        self._countable = {label.casefold() for label in countable_labels}

    def count(self, image: bytes, labels: Collection[str]) -> list[ProductCount]:
        """One ProductCount per distinct requested label, in the order asked."""
        wanted = list(dict.fromkeys(labels))
        if not wanted:
            return []
        custom = [label for label in wanted if self._is_custom(label)]
        general = [label for label in wanted if label not in custom]
        counts: dict[str, ProductCount] = {}
        if custom:
            counts.update(self._count_custom(image, custom))
        if general:
            counts.update(self._count_general(image, general))
        return [counts[label] for label in wanted]

    def _is_custom(self, label: str) -> bool:
        return self.custom_model_arn is not None and (self._custom is None or label.casefold() in self._custom)

    def _count_general(self, image: bytes, wanted: list[str]) -> dict[str, ProductCount]:
        prepared = sendable(image, max_bytes=MAX_IMAGE_BYTES)
        response = (
            call(
                self._client,
                "detect_labels",
                Image={"Bytes": prepared.data},
                MinConfidence=self.min_confidence,
                Features=["GENERAL_LABELS"],
            )
            or {}
        )
        returned = response.get("Labels", [])
        by_name = {str(label.get("Name", "")).casefold(): label for label in returned}
        by_alias = {
            str(alias.get("Name", "")).casefold(): label for label in returned for alias in label.get("Aliases", [])
        }
        result = {}
        for label in wanted:
            key = label.casefold()
            # An alias names the same thing (never a parent), so it is a fallback for the catalog's wording.
            found = by_name.get(key) or by_alias.get(key)
            result[label] = self._general_count(label, found)
        logger.info("rekognition labels: %s", ", ".join(f"{c.label}={c.seen}" for c in result.values()))
        return result

    def _general_count(self, label: str, found: dict[str, Any] | None) -> ProductCount:
        if found is None:
            return ProductCount(label, 0 if label.casefold() in self._countable else None)
        instances = found.get("Instances", [])
        if not instances:
            return ProductCount(label, None, found.get("Confidence"))  # present, but not countable
        boxed = [i for i in instances if i.get("Confidence", 100.0) >= self.min_confidence]
        return ProductCount(label, len(boxed), found.get("Confidence"))

    def _count_custom(self, image: bytes, wanted: list[str]) -> dict[str, ProductCount]:
        prepared = sendable(image, max_bytes=MAX_CUSTOM_LABELS_IMAGE_BYTES)
        response = (
            call(
                self._client,
                "detect_custom_labels",
                ProjectVersionArn=self.custom_model_arn,
                Image={"Bytes": prepared.data},
                MinConfidence=self.min_confidence,
            )
            or {}
        )
        boxed: dict[str, list[float]] = {}
        present: set[str] = set()
        for item in response.get("CustomLabels", []):
            key = str(item.get("Name", "")).casefold()
            present.add(key)
            # Object-detection models give one entry with Geometry per object; classification
            # models give one entry without Geometry for the whole picture: presence, not a count.
            if item.get("Geometry", {}).get("BoundingBox"):
                boxed.setdefault(key, []).append(float(item.get("Confidence", 0.0)))
        result = {}
        for label in wanted:
            key = label.casefold()
            if key in boxed:
                result[label] = ProductCount(label, len(boxed[key]), min(boxed[key]))
            else:
                result[label] = ProductCount(label, None if key in present else 0)
        logger.info("rekognition custom labels: %s", ", ".join(f"{c.label}={c.seen}" for c in result.values()))
        return result
