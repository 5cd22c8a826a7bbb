"""RFM and predictive scores per customer, ML (clustering) segments, their model versions and
clusters, and the churn / value models. Loaded by segments.models, so their app is `segments`.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from crm.jobs import Job
from customers.models import Customer
from segments.ml.reasons import reasons_words


class RfmClass(models.TextChoices):
    CHAMPIONS = "Champions", "Champions"
    LOYAL = "Loyal", "Loyal"
    POTENTIAL_LOYALIST = "Potential loyalist", "Potential loyalist"
    NEW = "New", "New"
    PROMISING = "Promising", "Promising"
    NEEDS_ATTENTION = "Needs attention", "Needs attention"
    ABOUT_TO_SLEEP = "About to sleep", "About to sleep"
    AT_RISK = "At risk", "At risk"
    CANNOT_LOSE_THEM = "Cannot lose them", "Cannot lose them"
    HIBERNATING = "Hibernating", "Hibernating"
    LOST = "Lost", "Lost"


class CustomerScore(models.Model):
    """RFM values, scores and class, and the predictive scores of one customer.

    Written in bulk by the RFM run and the predictive scoring run; a customer without a row (or
    with empty values) has no score, which the rule language treats as empty.
    """

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="score"
    )
    rfm_recency = models.IntegerField(null=True, blank=True, help_text="Days since last purchase")
    rfm_frequency = models.IntegerField(null=True, blank=True, help_text="Purchases in the window")
    rfm_monetary = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    r_score = models.PositiveSmallIntegerField(null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="R, F and M scores as a three-digit code, e.g. 545"
    )
    rfm_class = models.CharField(max_length=32, choices=RfmClass.choices, blank=True)
    previous_rfm_class = models.CharField(max_length=32, choices=RfmClass.choices, blank=True)
    rfm_computed_at = models.DateTimeField(null=True, blank=True)
    churn_risk = models.FloatField(null=True, blank=True)
    predicted_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # The reasons of churn_risk and predicted_value as numbers (segments/ml/reasons.py): per
    # slot a feature code, that feature's value and its effect; `reasons` puts them into words.
    reason_features = ArrayField(models.SmallIntegerField(), default=list, blank=True)
    reason_values = ArrayField(models.FloatField(), default=list, blank=True)
    reason_effects = ArrayField(models.FloatField(), default=list, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    expected_purchases = models.FloatField(
        null=True, blank=True, help_text="BG/NBD: expected purchases over the lifetime horizon"
    )
    p_alive = models.FloatField(
        null=True, blank=True, help_text="BG/NBD: probability that the customer is still active"
    )
    lifetime_value = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="BG/NBD x Gamma-Gamma: discounted spend over the lifetime horizon",
    )
    lifetime_computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "segments"
        indexes = [
            models.Index(fields=["rfm_class"], name="score_rfm_class_idx"),
            models.Index(fields=["r_score", "f_score"], name="score_rf_idx"),
            # No index on churn_risk, predicted_value, lifetime_value or p_alive: every scoring
            # run rewrites them for every customer, and maintaining four indexes of random
            # values made that write five times slower (docs/ml.md, "Benchmark"), while a rule
            # on them scans this narrow table in about a second at a million customers.
        ]

    def __str__(self) -> str:
        return f"scores of {self.customer_id}"

    @property
    def reasons(self) -> dict[str, list[dict]]:
        """{"churn": [...], "value": [...]}: each reason's feature, words and effect."""
        return reasons_words(self.reason_features, self.reason_values, self.reason_effects)


class RfmRun(Job):
    """One RFM computation: its parameters, size, duration and how many customers changed class."""

    reference_date = models.DateField()
    window_days = models.PositiveIntegerField(default=730)
    trigger = models.CharField(max_length=16, default="manual")
    customers = models.PositiveIntegerField(default=0)
    moved = models.PositiveIntegerField(default=0, help_text="Customers whose class changed")
    moves = models.JSONField(default=list, blank=True, help_text="[from, to, count] rows")
    thresholds = models.JSONField(default=dict, blank=True)
    duration = models.DurationField(null=True, blank=True)
    backtest = models.BooleanField(
        default=False, help_text="As of a past day: current scores untouched, classes kept here"
    )
    classes = models.JSONField(default=dict, blank=True, help_text="Customers per class")

    class Meta:
        app_label = "segments"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"RFM run {self.pk} ({self.status})"


class MLSegment(models.Model):
    """A segment the machine finds: customers clustered on chosen features."""

    class Scaling(models.TextChoices):
        LOG_STANDARD = "log_standard", "Log, then standardise"
        STANDARD = "standard", "Standardise"

    class Algorithm(models.TextChoices):
        KMEANS = "kmeans", "KMeans"
        MINIBATCH = "minibatch_kmeans", "MiniBatchKMeans (large data)"
        GAUSSIAN_MIXTURE = "gaussian_mixture", "Gaussian mixture"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    features = models.JSONField(default=list, help_text="Feature groups, e.g. ['rfm', 'aov']")
    attribute_keys = models.JSONField(
        default=list, blank=True, help_text="Numeric custom attributes"
    )
    scaling = models.CharField(max_length=16, choices=Scaling.choices, default=Scaling.LOG_STANDARD)
    algorithm = models.CharField(max_length=24, choices=Algorithm.choices, default=Algorithm.KMEANS)
    k = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty: chosen by silhouette"
    )
    k_min = models.PositiveSmallIntegerField(default=2)
    k_max = models.PositiveSmallIntegerField(default=8)
    seed = models.IntegerField(default=0)
    window_days = models.PositiveIntegerField(default=730)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ml_segments",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    current_version = models.ForeignKey(
        "segments.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "segments"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One trained model of an ML segment: pipeline, metrics, profiles, stability."""

    ml_segment = models.ForeignKey(MLSegment, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    trained_at = models.DateTimeField()
    features = models.JSONField(default=list, help_text="Column names the pipeline expects")
    algorithm = models.CharField(max_length=24)
    k = models.PositiveSmallIntegerField()
    customers = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    profiles = models.JSONField(default=list, blank=True)
    projection = models.JSONField(default=dict, blank=True, help_text="PCA sample for the scatter")
    stability_ari = models.FloatField(null=True, blank=True)
    pipeline = models.BinaryField(help_text="joblib dump of the fitted pipeline")
    duration = models.DurationField(null=True, blank=True)

    class Meta:
        app_label = "segments"
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["ml_segment", "version"], name="model_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.ml_segment} v{self.version}"


class Cluster(models.Model):
    """A cluster of an ML segment, materialised as a static segment usable in rules and campaigns."""

    ml_segment = models.ForeignKey(MLSegment, on_delete=models.CASCADE, related_name="clusters")
    label = models.PositiveSmallIntegerField(help_text="The label the current model gives it")
    segment = models.OneToOneField(
        "segments.Segment", on_delete=models.PROTECT, related_name="ml_cluster"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    renamed = models.BooleanField(default=False, help_text="Named by a person: kept on re-training")
    size = models.PositiveIntegerField(default=0)
    profile = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        app_label = "segments"
        ordering = ["ml_segment", "label", "id"]
        indexes = [models.Index(fields=["ml_segment", "label"], name="cluster_label_idx")]

    def __str__(self) -> str:
        return self.name


class ClusterAssignment(models.Model):
    """The cluster label a customer got from an ML segment's current model."""

    ml_segment = models.ForeignKey(
        MLSegment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="cluster_assignments", db_index=False
    )
    label = models.PositiveSmallIntegerField()
    assigned_at = models.DateTimeField()

    class Meta:
        app_label = "segments"
        constraints = [
            models.UniqueConstraint(
                fields=["ml_segment", "customer"], name="cluster_assignment_unique"
            )
        ]
        indexes = [models.Index(fields=["customer"], name="cluster_assign_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} -> {self.label}"


class MLJob(Job):
    """A long ML job (training, assignment, churn model) whose progress the page polls."""

    class Kind(models.TextChoices):
        TRAIN = "train", "Train ML segment"
        ASSIGN = "assign", "Assign customers"
        PREDICTIVE = "predictive", "Train churn and value models"
        SCORE = "score", "Score customers"
        LIFETIME = "lifetime", "Fit lifetime value (BG/NBD x Gamma-Gamma)"
        RFM = "rfm", "RFM"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    ml_segment = models.ForeignKey(
        MLSegment, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    progress = models.PositiveSmallIntegerField(default=0)
    step = models.CharField(max_length=200, blank=True)
    options = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        app_label = "segments"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk} ({self.status})"


class PredictiveModel(models.Model):
    """The churn-risk classifier and the expected-value regressor, trained together."""

    trained_at = models.DateTimeField()
    horizon_days = models.PositiveIntegerField(default=90)
    cutoff = models.DateField(help_text="Features as of this day; labels from the horizon after it")
    features = models.JSONField(default=list)
    buyers = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    churn_pipeline = models.BinaryField()
    value_pipeline = models.BinaryField()
    active = models.BooleanField(default=True)
    as_of = models.DateField(null=True, blank=True, help_text="The reference date of the training")
    backtest = models.BooleanField(
        default=False, help_text="Trained as of a past date: never active, scores in its report"
    )
    lifetime = models.JSONField(
        default=dict, blank=True, help_text="BG/NBD and Gamma-Gamma parameters used as features"
    )

    class Meta:
        app_label = "segments"
        ordering = ["-trained_at", "-id"]

    def __str__(self) -> str:
        return f"predictive model {self.pk} ({self.trained_at:%Y-%m-%d})"


class LifetimeModel(models.Model):
    """BG/NBD (purchases, P(alive)) and Gamma-Gamma (spend per purchase) fitted as of a date.

    A fit as of today is the "current" one and writes every customer's lifetime value; a fit as
    of a past date is a back-test: its scores stay in BacktestScore, never in CustomerScore,
    and its report compares them with what customers did since.
    """

    trained_at = models.DateTimeField()
    as_of = models.DateField(help_text="Purchases before the end of this day")
    horizon_days = models.PositiveIntegerField(default=365)
    annual_discount = models.FloatField(default=0.1)
    bgnbd = models.JSONField(default=dict, help_text="r, alpha (days), a, b")
    gamma_gamma = models.JSONField(default=dict, help_text="p, q, gamma")
    customers = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    backtest = models.BooleanField(default=False)
    active = models.BooleanField(default=False)

    class Meta:
        app_label = "segments"
        ordering = ["-trained_at", "-id"]

    def __str__(self) -> str:
        return f"lifetime model {self.pk} as of {self.as_of}"


class BacktestScore(models.Model):
    """A customer's score in a back-test (a model trained as of a past date): kept with the
    model's report, apart from the current scores that nightly runs rewrite."""

    lifetime_model = models.ForeignKey(
        LifetimeModel, null=True, blank=True, on_delete=models.CASCADE, related_name="scores"
    )
    predictive_model = models.ForeignKey(
        PredictiveModel, null=True, blank=True, on_delete=models.CASCADE, related_name="scores"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    churn_risk = models.FloatField(null=True, blank=True)
    predicted_value = models.FloatField(null=True, blank=True)
    expected_purchases = models.FloatField(null=True, blank=True)
    p_alive = models.FloatField(null=True, blank=True)
    lifetime_value = models.FloatField(null=True, blank=True)

    class Meta:
        app_label = "segments"
        indexes = [models.Index(fields=["customer"], name="backtest_score_customer_idx")]

    def __str__(self) -> str:
        return f"back-test score of {self.customer_id}"
