"""What every task type's scorer provides, and the pieces they share."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from galbench.errors import PredictionError
from galbench.metrics.bootstrap import bootstrap_samples, percentile_interval
from galbench.tasks import StratumSpec, TaskSpec


@dataclass(frozen=True)
class Predictions:
    """Predictions keyed by object id: ``object_ids`` ``[N]`` and named arrays with N rows
    (``mean``/``std`` for regression, ``probabilities`` for classification, ...)."""

    object_ids: np.ndarray
    values: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Scores:
    """Metric values, their bootstrap 95% intervals, and per-stratum breakdowns."""

    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    strata: dict[str, list[dict]] = field(default_factory=dict)
    #: The main metric on every bootstrap resample, in resample order. Resamples depend only on
    #: the task's bootstrap seed and n, so entries on one split can be compared pairwise.
    bootstrap_main: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class TaskScorer:
    """A task type's scoring: the format it expects, its validation and its metrics.

    Image-valued predictions (segmentation maps, deblended images) are too large to keep with a
    receipt. Their task types reduce them first: ``per_object(task, predictions, truth,
    catalog)`` compares each object's prediction with its array-valued truth (``truth``: the
    split's target arrays named in ``truth_arrays``, memory-mapped) and returns per-object
    results keyed by object id (PSNR per source, true/false positive counts, ...). ``score``
    then works on those, and they are what the receipt stores and ``galbench verify``
    recomputes from. Task types whose predictions are small leave ``per_object`` unset and
    their predictions are stored as they are.
    """

    task_type: str
    expected_format: Callable[[TaskSpec], str]
    validate: Callable[[TaskSpec, Predictions, str], Predictions]
    score: Callable[[TaskSpec, Predictions, pd.DataFrame], Scores]
    truth_arrays: tuple[str, ...] = ()
    per_object: Callable[[TaskSpec, Predictions, Mapping, pd.DataFrame], Predictions] | None = None

    def reduce(self, task: TaskSpec, predictions: Predictions, split) -> Predictions:
        """What gets scored and stored: the per-object results of image-valued predictions on
        ``split`` (a :class:`~galbench.data.split.Split`), else the predictions themselves."""
        if self.per_object is None:
            return predictions
        truth = {name: split.target_array(name) for name in self.truth_arrays}
        return self.per_object(task, predictions, truth, split.catalog)


def catalog_positions(catalog: pd.DataFrame, object_ids: np.ndarray) -> np.ndarray:
    """Row positions of ``object_ids`` in the catalog (every id present once), to gather
    array-valued truth in the predictions' order."""
    ids = catalog["object_id"].to_numpy()
    if len(ids) == len(object_ids) and np.array_equal(ids, object_ids):
        return np.arange(len(ids))
    align_catalog(catalog, object_ids)  # raises with the missing / unknown ids
    return pd.Index(ids).get_indexer(object_ids)


def align_catalog(catalog: pd.DataFrame, object_ids: np.ndarray) -> pd.DataFrame:
    """The catalog rows of ``object_ids``, in that order: predictions are keyed by object id,
    never matched to truth by position."""
    ids = catalog["object_id"].to_numpy()
    if len(ids) == len(object_ids) and np.array_equal(ids, object_ids):
        return catalog
    position = pd.Index(ids).get_indexer(object_ids)
    if len(object_ids) != len(ids) or (position < 0).any() or len(np.unique(position)) != len(position):
        missing = np.setdiff1d(ids, object_ids)[:5].tolist()
        unknown = np.setdiff1d(object_ids, ids)[:5].tolist()
        raise PredictionError(
            f"predictions cover {len(object_ids)} objects, the split has {len(ids)}; "
            f"missing ids e.g. {missing}, unknown or duplicated ids e.g. {unknown}"
        )
    return catalog.iloc[position].reset_index(drop=True)


def stratum_masks(
    stratum: StratumSpec, catalog: pd.DataFrame
) -> Iterator[tuple[str, np.ndarray]]:
    """``(bin label, boolean mask)`` per bin; bins are half-open ``[lo, hi)`` except the last,
    which also holds its upper edge (a magnitude of exactly 24.0 belongs to ``[23, 24)``)."""
    values = catalog[stratum.column].to_numpy(dtype=np.float64)
    last = len(stratum.edges) - 2
    bins = zip(stratum.bin_labels(), stratum.edges[:-1], stratum.edges[1:])
    for k, (label, lo, hi) in enumerate(bins):
        mask = (values >= lo) & (values < hi)
        if k == last:
            mask |= values == hi
        yield label, mask


def strata_breakdown(
    task: TaskSpec,
    catalog: pd.DataFrame,
    statistics: Callable[[np.ndarray], Mapping[str, float | np.ndarray]],
) -> dict[str, list[dict]]:
    """Every stratum's rows ``{"bin", "n", "metrics"}``: ``statistics(mask)`` of the objects in
    each bin (``{}`` for an empty bin), keyed by the stratum's column."""
    strata = {}
    for stratum in task.strata:
        rows = []
        for label, mask in stratum_masks(stratum, catalog):
            count = int(mask.sum())
            values = {k: float(v) for k, v in statistics(mask).items()} if count else {}
            rows.append({"bin": label, "n": count, "metrics": values})
        strata[stratum.column] = rows
    return strata


def reject_bad_values(
    bad: np.ndarray, predictions: Predictions, source: str, name: str, what: str, fix: str
) -> None:
    """Raise :class:`PredictionError` when any of ``bad`` (``[N, ...]``, one row per object) is
    set: how many values are ``what``, the first row and its object id, then ``fix``."""
    if bad.any():
        row = int(np.argmax(bad.reshape(len(bad), -1).any(axis=1)))
        raise PredictionError(
            f"{source}: '{name}' has {int(bad.sum())} {what}, first in row {row} "
            f"(object_id {predictions.object_ids[row]}); {fix}"
        )


#: A model whose predict() returns a bare array has it delivered under this name by the runner
#: and the sandbox (they do not know the task type); task types with a single prediction field
#: take a lone field of this name as theirs.
BARE_ARRAY_FIELD = "mean"


def single_numeric_field(
    predictions: Predictions, field: str, source: str, expected: str, what: str = "numbers"
) -> tuple[str, np.ndarray]:
    """The one array of a single-field task type (``field``, or a bare array), numeric (int or
    float, never bool), with the name it came under; every problem raises
    :class:`PredictionError` ending with ``expected``."""
    fields = set(predictions.values)
    if field in fields:
        name = field
    elif fields == {BARE_ARRAY_FIELD}:
        name = BARE_ARRAY_FIELD
    else:
        raise PredictionError(f"{source}: '{field}' is missing (got field(s) {sorted(fields)}). " + expected)
    extra = fields - {name}
    if extra:
        raise PredictionError(f"{source}: unexpected prediction field(s) {sorted(extra)}. " + expected)
    array = np.asarray(predictions.values[name])
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise PredictionError(f"{source}: '{name}' has dtype {array.dtype}; expected {what}. " + expected)
    return name, array


def assemble_scores(
    task: TaskSpec,
    catalog: pd.DataFrame,
    statistics: Callable[[np.ndarray | None], Mapping[str, float | np.ndarray]],
    resampled: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    n: int,
    *,
    batch_size: int = 50,
) -> Scores:
    """The metrics (``statistics(None)``), their bootstrap intervals over the task's resamples
    (``resampled(indices [B, n])``), the main metric on every resample, and the strata
    (``statistics(mask)`` per bin): what every task type's scorer returns."""
    metrics = {k: float(v) for k, v in statistics(None).items()}
    samples = bootstrap_samples(
        resampled, n, n_resamples=task.bootstrap_resamples, seed=task.bootstrap_seed, batch_size=batch_size
    )
    return Scores(
        metrics=metrics,
        intervals={name: percentile_interval(v) for name, v in samples.items()},
        strata=strata_breakdown(task, catalog, statistics),
        bootstrap_main=samples[task.main_metric].tolist(),
    )

