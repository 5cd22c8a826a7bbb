"""ML segments: their definition, training (clustering), assignment of customers and cluster names."""

import datetime as dt
import re
from typing import Any

import pandas as pd
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from segments.ml import bulk, features
from segments.ml.churn import TrainingRefused
from segments.ml.models import Cluster, ClusterAssignment, MLJob, MLSegment, ModelVersion
from segments.ml.scoring import (
    cluster_assign,
    cluster_fit,
    match_labels,
    pipeline_dump,
    pipeline_load,
    stability,
)
from segments.ml.services.runs import _job_progress, _reference
from segments.models import Segment
from segments.services import segment_create, segment_delete, segment_update

ATTR_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")


ALGORITHMS = MLSegment.Algorithm.values


SCALINGS = MLSegment.Scaling.values


def _clean_definition(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out = dict(data)
    if "name" in data and not str(data["name"] or "").strip():
        errors["name"] = "required"
    if "features" in data:
        groups = data["features"]
        if not isinstance(groups, list) or not groups:
            errors["features"] = f"choose at least one of {', '.join(features.FEATURE_GROUPS)}"
        elif unknown := [g for g in groups if g not in features.FEATURE_GROUPS]:
            errors["features"] = (
                f"unknown feature group {unknown[0]!r}; expected {', '.join(features.FEATURE_GROUPS)}"
            )
        else:
            out["features"] = list(dict.fromkeys(groups))
    if "attribute_keys" in data:
        keys = data["attribute_keys"] or []
        if not isinstance(keys, list) or not all(
            isinstance(k, str) and ATTR_KEY.match(k) for k in keys
        ):
            errors["attribute_keys"] = "expected keys of 1 to 64 letters, digits or underscores"
    if "scaling" in data and data["scaling"] not in SCALINGS:
        errors["scaling"] = f"expected one of {', '.join(SCALINGS)}"
    if "algorithm" in data and data["algorithm"] not in ALGORITHMS:
        errors["algorithm"] = f"expected one of {', '.join(ALGORITHMS)}"
    if data.get("k") is not None and not (isinstance(data["k"], int) and 2 <= data["k"] <= 30):
        errors["k"] = "expected a whole number from 2 to 30, or empty to choose by silhouette"
    for key in ("k_min", "k_max"):
        if key in data and not (isinstance(data[key], int) and 2 <= data[key] <= 30):
            errors[key] = "expected a whole number from 2 to 30"
    if isinstance(data.get("k_min"), int) and isinstance(data.get("k_max"), int):
        if data["k_min"] > data["k_max"]:
            errors["k_max"] = "must be at least k_min"
    if "seed" in data and not (isinstance(data["seed"], int) and 0 <= data["seed"] < 2**31):
        errors["seed"] = "expected a whole number from 0 to 2147483647"
    if "window_days" in data and not (
        isinstance(data["window_days"], int) and 1 <= data["window_days"] <= 36500
    ):
        errors["window_days"] = "expected a whole number of days from 1 to 36500"
    if errors:
        raise ValidationError(errors)
    return out


def ml_segment_create(
    *,
    name: str,
    owner: AbstractBaseUser | None,
    features: list[str],
    scaling: str = MLSegment.Scaling.LOG_STANDARD,
    algorithm: str = MLSegment.Algorithm.KMEANS,
    k: int | None = None,
    k_min: int = 2,
    k_max: int = 8,
    seed: int = 0,
    window_days: int = 730,
    attribute_keys: list[str] | None = None,
    description: str = "",
) -> MLSegment:
    """Define an ML segment (it has no clusters until it is trained)."""
    data = _clean_definition(
        {
            "name": name,
            "features": features,
            "scaling": scaling,
            "algorithm": algorithm,
            "k": k,
            "k_min": k_min,
            "k_max": k_max,
            "seed": seed,
            "window_days": window_days,
            "attribute_keys": attribute_keys or [],
        }
    )
    return MLSegment.objects.create(
        **{**data, "name": name.strip()},
        description=description,
        owner=owner if owner is not None and owner.is_authenticated else None,
    )


_EDITABLE = (
    "name", "description", "features", "attribute_keys", "scaling", "algorithm", "k", "k_min",
    "k_max", "seed", "window_days",
)  # fmt: skip


def ml_segment_update(*, ml_segment: MLSegment, **changes: Any) -> MLSegment:
    """Change the definition; it takes effect at the next training."""
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise ValidationError({key: "cannot be changed" for key in unknown})
    merged = _clean_definition(
        {**{f: getattr(ml_segment, f) for f in _EDITABLE if f != "description"}, **changes}
    )
    for key in changes:
        setattr(ml_segment, key, merged.get(key, changes[key]))
    ml_segment.save(update_fields=[*changes, "updated_at"])
    return ml_segment


def ml_segment_delete(*, ml_segment: MLSegment) -> None:
    """Delete an ML segment and its cluster segments, unless a rule refers to one of them."""
    with transaction.atomic():
        clusters = list(ml_segment.clusters.select_related("segment"))
        segments = [c.segment for c in clusters]
        Cluster.objects.filter(pk__in=[c.pk for c in clusters]).delete()
        ClusterAssignment.objects.filter(ml_segment=ml_segment).delete()
        for segment in segments:
            segment_delete(segment=segment)  # refuses when another rule uses the cluster
        ml_segment.delete()


def _features_for(ml_segment: MLSegment, reference: dt.datetime) -> pd.DataFrame:
    return features.customer_features(
        groups=ml_segment.features,
        reference=reference,
        window_days=ml_segment.window_days,
        attribute_keys=ml_segment.attribute_keys,
    )


def _previous_labels(ml_segment: MLSegment) -> pd.Series:
    rows = ClusterAssignment.objects.filter(ml_segment=ml_segment).values_list(
        "customer_id", "label"
    )
    frame = pd.DataFrame(list(rows), columns=["customer_id", "label"])
    return frame.set_index("customer_id")["label"]


def _cluster_segment(ml_segment: MLSegment, name: str, description: str) -> Segment:
    return segment_create(
        name=f"{ml_segment.name}: {name}",
        owner=ml_segment.owner,
        kind=Segment.Kind.STATIC,
        description=description,
        min_size_warning=0,
    )


def ml_segment_train(*, ml_segment: MLSegment, job: MLJob | None = None) -> ModelVersion:
    """Fit a new model version, re-label every customer, keep each cluster's segment across
    versions (matched by shared customers), and measure stability against the previous model."""
    started = timezone.now()
    _job_progress(job, 5, "loading features")
    frame = _features_for(ml_segment, _reference(None))
    if len(frame) < max(10, (ml_segment.k or ml_segment.k_max) + 1):
        raise TrainingRefused(
            f"Too few customers to cluster: {len(frame)} (at least "
            f"{max(10, (ml_segment.k or ml_segment.k_max) + 1)} needed)."
        )
    previous = _previous_labels(ml_segment)
    result = cluster_fit(
        frame,
        scaling=ml_segment.scaling,
        algorithm=ml_segment.algorithm,
        k=ml_segment.k,
        seed=ml_segment.seed,
        k_min=ml_segment.k_min,
        k_max=ml_segment.k_max,
        progress=lambda pct, step: _job_progress(job, pct, step),
    )
    labels = pd.Series(result.labels, index=frame.index)
    ari = stability(previous, labels) if len(previous) else None
    mapping = match_labels(previous, labels) if len(previous) else {}
    _job_progress(job, 80, "saving the model and the clusters")
    with transaction.atomic():
        last = ml_segment.versions.aggregate(v=Max("version"))["v"] or 0
        version = ModelVersion.objects.create(
            ml_segment=ml_segment,
            version=last + 1,
            trained_at=timezone.now(),
            features=list(frame.columns),
            algorithm=ml_segment.algorithm,
            k=result.k,
            customers=len(frame),
            metrics=result.metrics,
            profiles=result.profiles,
            projection=result.projection,
            stability_ari=ari,
            pipeline=pipeline_dump(result.pipeline),
        )
        by_old_label = {c.label: c for c in ml_segment.clusters.filter(active=True)}
        kept: set[int] = set()
        for label in range(result.k):
            profile = result.profiles[label]
            name, description = result.names[label], result.descriptions[label]
            cluster = by_old_label.get(mapping.get(label, -1))
            if cluster is None:
                segment = _cluster_segment(ml_segment, name, description)
                cluster = Cluster(ml_segment=ml_segment, segment=segment, label=label)
            cluster.label, cluster.size, cluster.profile, cluster.active = (
                label, profile["size"], profile, True,
            )  # fmt: skip
            if not cluster.renamed:
                cluster.name, cluster.description = name, description
                if cluster.segment.name != f"{ml_segment.name}: {name}":
                    segment_update(segment=cluster.segment, name=f"{ml_segment.name}: {name}")
            cluster.save()
            kept.add(cluster.pk)
        ml_segment.clusters.exclude(pk__in=kept).update(active=False, size=0)
        ml_segment.current_version = version
        ml_segment.save(update_fields=["current_version", "updated_at"])
    _job_progress(job, 85, "writing cluster labels and segment members")
    _labels_write(ml_segment, labels)
    ModelVersion.objects.filter(pk=version.pk).update(duration=timezone.now() - started)
    version.refresh_from_db()
    return version


def _labels_write(ml_segment: MLSegment, labels: pd.Series) -> None:
    at = timezone.now()
    frame = pd.DataFrame({"customer_id": labels.index.astype("int64"), "label": labels.to_numpy()})
    bulk.assignments_write(ml_segment_id=ml_segment.pk, frame=frame, at=at)
    for cluster in ml_segment.clusters.select_related("segment"):
        bulk.cluster_members_sync(
            segment=cluster.segment,
            ml_segment_id=ml_segment.pk,
            label=cluster.label if cluster.active else None,
            at=at,
        )
    sizes = labels.value_counts()
    for cluster in ml_segment.clusters.filter(active=True):
        Cluster.objects.filter(pk=cluster.pk).update(size=int(sizes.get(cluster.label, 0)))
    MLSegment.objects.filter(pk=ml_segment.pk).update(last_assigned_at=at)


def ml_segment_assign(*, ml_segment: MLSegment, job: MLJob | None = None) -> int:
    """Re-label every customer (new and changed ones included) with the stored model."""
    version = ml_segment.current_version
    if version is None:
        return 0
    _job_progress(job, 10, "loading features")
    frame = _features_for(ml_segment, _reference(None)).reindex(
        columns=version.features, fill_value=0.0
    )
    if frame.empty:
        return 0
    _job_progress(job, 50, "assigning customers")
    labels = pd.Series(cluster_assign(pipeline_load(version.pipeline), frame), index=frame.index)
    _job_progress(job, 70, "writing cluster labels and segment members")
    _labels_write(ml_segment, labels)
    return len(labels)


def ml_segments_assign_all() -> int:
    """Re-assign the customers of every trained ML segment (the beat schedule runs this)."""
    return sum(
        ml_segment_assign(ml_segment=m)
        for m in MLSegment.objects.filter(current_version__isnull=False)
    )


def cluster_rename(*, cluster: Cluster, name: str) -> Cluster:
    """Give a cluster a person's name; re-training keeps it."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "required"})
    if len(name) > 150:
        raise ValidationError({"name": "expected at most 150 characters"})
    with transaction.atomic():
        cluster.name, cluster.renamed = name, True
        cluster.save(update_fields=["name", "renamed"])
        segment_update(segment=cluster.segment, name=f"{cluster.ml_segment.name}: {name}")
    return cluster
