"""Validate and score classification predictions (the ``classification`` task type).

Predictions: ``probabilities`` ``[N, K]``, one row of class probabilities per object, columns in
the order of the task's ``simulation.params["classes"]`` (K names). Every value finite and >= 0,
every row summing to 1 within 1e-3; validated rows are renormalised to sum exactly 1, so a
float32 softmax scores as its float64 normalisation.

Truth: the catalog's integer ``label`` (0..K-1, the index into ``classes``). Metrics (see
:mod:`galbench.metrics.classification`): ``accuracy``, ``macro_f1``, ``log_loss``, ``ece`` and
``recall/<class>`` for each class.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from galbench.errors import PredictionError, TaskSpecError
from galbench.metrics.classification import ClassifiedObjects, classification_statistics
from galbench.scoring.base import (
    Predictions,
    Scores,
    TaskScorer,
    align_catalog,
    single_numeric_field,
    assemble_scores,
)
from galbench.tasks import TaskSpec

PROBABILITIES_FIELD = "probabilities"
#: Largest accepted |row sum - 1| of the probabilities (float32 softmax outputs pass easily).
ROW_SUM_TOLERANCE = 1e-3
LABEL_COLUMN = "label"
#: Resamples are evaluated in batches of about this many (resample x object) weights, ~32 MB of
#: float64: large splits take smaller batches. Results do not depend on the batch size (see
#: bootstrap_samples).
BOOTSTRAP_BATCH_CELLS = 4_000_000


def class_names(task: TaskSpec) -> tuple[str, ...]:
    """The task's class names; catalog ``label == k`` and probability column k are ``names[k]``."""
    classes = task.simulation.params.get("classes", ())
    # A table {name: settings} lists its classes in file order, as a list does.
    names = tuple(classes.keys() if isinstance(classes, Mapping) else classes)
    if (
        len(names) < 2
        or not all(isinstance(c, str) and c for c in names)
        or len(set(names)) != len(names)
    ):
        raise TaskSpecError(
            f"{task.id}: simulation.params.classes must be at least two distinct non-empty names, "
            f"got {classes!r}"
        )
    return names


def expected_format(task: TaskSpec) -> str:
    names = class_names(task)
    columns = ", ".join(f"{k} {name}" for k, name in enumerate(names))
    return (
        f"{task.id} expects predictions keyed by object_id: one field 'probabilities', a float "
        f"array [N, {len(names)}] with one row of class probabilities per object, columns in "
        f"class order ({columns}), the column index being the catalog's label. Every value "
        f"finite and >= 0, every row summing to 1 within {ROW_SUM_TOLERANCE:g} (rows are "
        "renormalised; apply a softmax to logits). A model's predict() may return that array "
        "bare."
    )


def validate(task: TaskSpec, predictions: Predictions, source: str) -> Predictions:
    ids = predictions.object_ids
    n, k = len(ids), len(class_names(task))
    name, array = single_numeric_field(predictions, PROBABILITIES_FIELD, source, expected_format(task), "floating point class probabilities")
    if array.shape != (n, k):
        hint = ""
        if array.shape in ((n,), (n, 1)):
            hint = (
                f": one value per object looks like class labels, but {k} class probabilities "
                "per object are expected"
            )
        raise PredictionError(
            f"{source}: '{name}' has shape {array.shape}; expected ({n}, {k}){hint}. "
            + expected_format(task)
        )
    p = array.astype(np.float64)

    def first_bad_row(bad: np.ndarray, problem: str, detail) -> None:
        if bad.any():
            row = int(np.argmax(bad))
            raise PredictionError(
                f"{source}: '{name}' has {int(bad.sum())} row(s) {problem}, first at row {row} "
                f"(object_id {ids[row]}): {detail(row)}. " + expected_format(task)
            )

    first_bad_row(~np.isfinite(p).all(axis=1), "with non-finite values", lambda r: p[r].tolist())
    first_bad_row((p < 0).any(axis=1), "with negative values", lambda r: p[r].tolist())
    sums = p.sum(axis=1)
    first_bad_row(
        np.abs(sums - 1.0) > ROW_SUM_TOLERANCE,
        f"not summing to 1 within {ROW_SUM_TOLERANCE:g}",
        lambda r: f"sum {sums[r]:.6g}",
    )
    return Predictions(ids, {PROBABILITIES_FIELD: p / sums[:, None]})


def catalog_labels(task: TaskSpec, catalog: pd.DataFrame) -> np.ndarray:
    """The catalog's ``label`` ``[N]`` as ints in ``[0, K)``."""
    names = class_names(task)
    if LABEL_COLUMN not in catalog.columns:
        raise ValueError(
            f"{task.id}: the catalog has no {LABEL_COLUMN!r} column (columns: "
            f"{list(catalog.columns)})"
        )
    labels = catalog[LABEL_COLUMN].to_numpy()
    ids = catalog["object_id"].to_numpy()
    if labels.dtype.kind not in "biuf":
        raise ValueError(
            f"{task.id}: catalog {LABEL_COLUMN!r} has dtype {labels.dtype}; expected integers"
        )
    outside = ~((labels >= 0) & (labels < len(names)) & (labels == np.round(labels)))
    if outside.any():
        row = int(np.argmax(outside))
        raise ValueError(
            f"{task.id}: catalog {LABEL_COLUMN} of object_id {ids[row]} is {labels[row]}; "
            f"expected an integer in 0..{len(names) - 1} (classes {list(names)})"
        )
    return labels.astype(np.intp)


def score(task: TaskSpec, predictions: Predictions, catalog: pd.DataFrame) -> Scores:
    catalog = align_catalog(catalog, predictions.object_ids)
    names = class_names(task)
    # Per-object quantities once; the full set, every resample and every stratum bin are
    # weightings of them.
    objects = ClassifiedObjects.from_probabilities(
        predictions.values[PROBABILITIES_FIELD], catalog_labels(task, catalog)
    )
    n = len(objects.labels)

    def statistics(mask: np.ndarray | None) -> dict[str, np.ndarray]:
        return classification_statistics(names, objects.counts(mask))

    def resampled(indices: np.ndarray) -> dict[str, np.ndarray]:
        return classification_statistics(names, objects.resample_counts(indices))

    return assemble_scores(
        task, catalog, statistics, resampled, n,
        batch_size=max(1, min(50, BOOTSTRAP_BATCH_CELLS // max(1, n))),
    )  # fmt: skip

SCORER = TaskScorer(
    task_type="classification",
    expected_format=expected_format,
    validate=validate,
    score=score,
)
