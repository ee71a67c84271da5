"""Settings: one frozen, typed object loaded once from ``config.yaml``.

Invariants:
- every key is known (unknown keys are refused, so a typo never silently falls back
  to a default) and a bad file is refused at start with the dotted path of the bad key;
- the object is immutable and passed explicitly to whoever needs it (no globals);
- secrets come only from the environment (``XINYI_KEY_PASSPHRASE``,
  ``XINYI_DATABASE_URL``, ``XINYI_SECRET_KEY``, ``XINYI_METRICS_TOKEN``), never from
  the file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from common.errors import ConfigError

# ``grade``: the credit grade of JY 附件2, letters only (gateway/grades.py).
# ``monitor``: risk alerts about the enterprise while the grant is active (alerts/).
OPERATIONS: tuple[str, ...] = ("report", "verify", "score", "train", "grade", "monitor")
Operation = Literal["report", "verify", "score", "train", "grade", "monitor"]
VerifyOp = Literal[">=", "<=", "==", "!="]
FeatureType = Literal["integer", "amount", "number", "string", "enum", "date", "boolean"]

DEFAULT_CONFIG = Path(__file__).resolve().parent / "default_config.yaml"
"""The bundled default: it ships inside the package, so an installed wheel needs no checkout."""

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Department(_Frozen):
    id: Identifier
    name: str
    name_en: str


class Purpose(_Frozen):
    """A purpose of use and its limits."""

    name: str
    name_en: str
    max_days: int = Field(ge=1, le=3650)
    ops: tuple[Operation, ...]
    max_uses: int = Field(ge=1)


class Feature(_Frozen):
    """One feature of a category. ``bands`` are ascending boundaries in the feature's
    unit; a banded report names the half-open interval a value falls in."""

    type: FeatureType
    unit: str | None = None
    description: str
    description_en: str
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None
    verify_ops: tuple[VerifyOp, ...] = ()
    bands: tuple[float, ...] | None = None
    verify_budget: int | None = Field(default=None, ge=1)
    # grades: a personal identifier stored only as HMAC-SHA256 under the key store's
    # pseudonym key (records/pseudonyms.py); the import file holds the raw value, the
    # store the hash, and no answer or page ever shows it.
    keyed_hash: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum feature needs 'values'")
        if self.bands is not None:
            if self.type not in ("integer", "amount", "number"):
                raise ValueError("only numeric features can have 'bands'")
            if len(self.bands) < 2 or list(self.bands) != sorted(set(self.bands)):
                raise ValueError("'bands' must be at least two strictly ascending numbers")
        if self.keyed_hash and (self.type != "string" or self.verify_ops or self.bands):
            raise ValueError("a keyed-hash feature is a string with no verification or bands")
        ordering = {">=", "<="} & set(self.verify_ops)
        if ordering and self.type not in ("integer", "amount", "number", "date"):
            raise ValueError("'>=' and '<=' need a numeric or date feature")
        if self.type == "amount" and (self.min is None or self.min < 0):
            # Amounts are never negative; make the floor explicit.
            object.__setattr__(self, "min", 0.0)
        return self


class Category(_Frozen):
    department: Identifier
    # "restricted": personal information used only inside a computation the platform
    # makes (the legal representative's credit inside the grade); never reported,
    # banded, verified, scored or trained on.
    visibility: Literal["public", "non_public", "restricted"]
    name: str
    name_en: str
    features: Mapping[Identifier, Feature]


class Server(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8600, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    # gunicorn gthread threads per worker: requests in flight per process (they share
    # one audit batch while they wait for their log indices).
    threads: int = Field(default=8, ge=1, le=64)
    # The externally visible base URL; the token endpoint URL (the ``aud`` of client
    # assertions), the access tokens' audience and the grants' issuer are derived from
    # it. Unset: ``http://HOST:PORT`` of this very section (``derived_public_url``).
    public_url: str

    @model_validator(mode="before")
    @classmethod
    def _derive_public_url(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("public_url") is None:
            host = data.get("host", "127.0.0.1")
            port = data.get("port", 8600)
            if isinstance(host, str) and isinstance(port, int):
                data = {**data, "public_url": derived_public_url(host, port)}
        return data

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("public_url must be an http(s) URL with a host")
        if parts.query or parts.fragment or any(ch.isspace() for ch in v):
            raise ValueError("public_url must have no query, fragment or whitespace")
        return v.rstrip("/")

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")


def derived_public_url(host: str, port: int) -> str:
    """The base URL a client on this machine reaches ``host:port`` at. A wildcard bind
    (``0.0.0.0``, ``::``) names loopback: set ``public_url`` for anything else."""
    if host in ("", "0.0.0.0"):  # noqa: S104 -- naming the wildcard, not binding to it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Tokens(_Frozen):
    access_token_seconds: int = Field(default=300, ge=30, le=3600)
    client_assertion_max_seconds: int = Field(default=300, ge=30, le=3600)
    session_seconds: int = Field(default=1800, ge=60, le=86400)


class Consent(_Frozen):
    pending_days: int = Field(default=14, ge=1, le=90)
    default_verify_budget: int = Field(default=5, ge=1, le=100)
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)
    webhook_backoff_seconds: float = Field(default=2.0, gt=0)
    # How long a worker owns an event it is sending; a worker that dies mid-delivery
    # holds its institution's events back this long (then another sends, at least once).
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    # Each phase of one delivery (connect, send, wait for the answer) is bounded by this;
    # deliveries of different institutions run side by side, so a slow or dead receiver
    # delays only its own institution's events.
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Webhook URLs must be https; None: required unless the gateway's own public_url is
    # plain http on loopback (a developer's machine). See common/webhook_address.py.
    webhook_require_https: bool | None = None
    # UNSAFE, tests and laptop demos only: let webhooks reach loopback and private
    # addresses (inside the platform's network). Warns on every use.
    unsafe_webhook_private_addresses: bool = False


class Audit(_Frozen):
    origin: str = "xinyi.gateway/audit"
    checkpoint_interval_seconds: float = Field(default=3.0, gt=0)
    batch_max: int = Field(default=2048, ge=1)
    integrate_wait_seconds: float = Field(default=5.0, gt=0)


class Limits(_Frozen):
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_context_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_ciphertext_bytes: int = Field(default=512 * 1024, ge=1024)
    max_batch: int = Field(default=4096, ge=1)
    requests_per_minute: int = Field(default=6000, ge=1)


class HEParams(_Frozen):
    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 60)
    global_scale_bits: int = 40


class Training(_Frozen):
    """Federated training sessions (``gateway/api/train.py``, ``docs/leakage.md``)."""

    max_rows: int = Field(default=50_000, ge=2)
    max_bank_features: int = Field(default=64, ge=1, le=1024)
    max_gateway_features: int = Field(default=64, ge=1, le=1024)
    max_epochs: int = Field(default=100, ge=1, le=1000)
    max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    session_hours: float = Field(default=24.0, gt=0)
    clip: float = Field(default=3.0, gt=0)
    flood_sigma: float = Field(default=0.0625, gt=0, le=1)
    round_bits: int = Field(default=20, ge=8, le=40)
    max_restarts: int = Field(default=3, ge=0, le=100)
    # Model governance (issue 12): a session below either minimum is refused, so one
    # served linear functional never rests on a handful of rows or a single feature.
    min_enterprises: int = Field(default=200, ge=2)
    min_gateway_features: int = Field(default=4, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _retired_mask_bits(cls, data: Any) -> Any:
        # ``mask_bits`` sized the additive masks of the first training protocol; the
        # sum-only protocol pads with one-time pads uniform mod q0 (docs/leakage.md) and
        # has no use for it. A config.yaml copied from an older default still names it:
        # it loads, with a warning, rather than failing on an unknown key.
        if isinstance(data, Mapping) and "mask_bits" in data:
            warnings.warn(
                "config.yaml: training.mask_bits is no longer used (sum-only training "
                "protocol, docs/leakage.md) and is ignored; remove it",
                UserWarning,
                stacklevel=2,
            )
            data = {k: v for k, v in data.items() if k != "mask_bits"}
        return data


class Scoring(_Frozen):
    """The score-extraction bound (``gateway/api/score.py``, ``docs/leakage.md``)."""

    # Distinct models (id@version) one institution may score one enterprise with
    # within the period of a grant.
    max_models_per_enterprise: int = Field(default=2, ge=1, le=100)
    # The gateway's share of a logit is rounded to a multiple of this (logit units).
    share_precision: float = Field(default=0.5, gt=0, le=4)


class Region(_Frozen):
    """An administrative division (GB/T 2260) named in USCC digits 3–8."""

    name: str
    name_en: str


GradeMetric = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
Division = Annotated[str, Field(pattern=r"^[0-9]{2}$")]


class ScoreItem(_Frozen):
    """One standard value of the 100-point method (JY 附件2 三.3): ``points`` earned
    in full at ``standard`` and none at ``floor``, linearly between (a ``standard``
    below the ``floor`` means lower is better). ``metric`` names a value the grading
    engine derives (docs/grading.md lists them)."""

    metric: GradeMetric
    points: float = Field(gt=0)
    floor: float
    standard: float

    @model_validator(mode="after")
    def _distinct(self) -> ScoreItem:
        if self.floor == self.standard:
            raise ValueError("'floor' and 'standard' must differ")
        return self


class GradeBonus(_Frozen):
    """加分项 (JY 附件2 三.1(3), last paragraph): points per honour; reaching
    ``threshold`` raises the indicator method's grade by one step."""

    threshold: float = Field(default=3.0, gt=0)
    points: Mapping[GradeMetric, float] = Field(default_factory=dict)


class GradeCombine(_Frozen):
    """How the three methods of JY 附件2 三 combine (docs/grading.md "Combining")."""

    # "score_when_declared": the 100-point method decides for an enterprise whose
    # self-declared statements are on file and add up (三.3 "将采用"), the indicator
    # method for the others; "indicator": always the indicator method.
    primary: Literal["score_when_declared", "indicator"] = "score_when_declared"
    # "raise": the direct method (三.2) gives its grade when that is better; "off".
    direct: Literal["raise", "off"] = "raise"
    # The standards of 二.2 cap every method: any dishonesty record caps at 一级, one
    # not repaired within two years at 备选.
    standards_cap: bool = True


class Grading(_Frozen):
    """Credit grades by JY 附件2 (``grading/``, docs/grading.md)."""

    # Fewer ranked enterprises than this in a division: rank in its section, then city.
    min_group: int = Field(default=10, ge=5)
    # ⑪ by GB/T 4754 division; a division in neither list is 一般发展 (B).
    encouraged_divisions: tuple[Division, ...] = ()
    restricted_divisions: tuple[Division, ...] = ()
    bonus: GradeBonus = GradeBonus()
    score_items: tuple[ScoreItem, ...] = ()
    combine: GradeCombine = GradeCombine()
    # Self-declared statements must balance to within this many CNY.
    statements_tolerance: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Grading:
        both = set(self.encouraged_divisions) & set(self.restricted_divisions)
        if both:
            raise ValueError(f"divisions both encouraged and restricted: {sorted(both)}")
        if self.score_items and abs(sum(i.points for i in self.score_items) - 100) > 1e-9:
            raise ValueError("the points of 'score_items' must add up to 100")
        return self


class CalendarNotice(_Frozen):
    """One year's State Council holiday notice: rest days and make-up working days."""

    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()


class Calendar(_Frozen):
    """The official working-day calendar (``common/workdays.py``): notices for years
    the installed ``chinese-calendar`` package does not know yet (a year listed here is
    known in full), or corrections to a year it does."""

    notices: Mapping[int, CalendarNotice] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Calendar:
        for year, notice in self.notices.items():
            if set(notice.holidays) & set(notice.workdays):
                raise ValueError(f"notices.{year}: a day is both a holiday and a working day")
            if any(d.year != year for d in (*notice.holidays, *notice.workdays)):
                raise ValueError(f"notices.{year}: every day must fall in {year}")
        return self


class Casework(_Frozen):
    """Objections and credit repair (``casework``, docs/objections.md)."""

    # JS 14: an objection is forwarded (here: decided by the owning department) within
    # 2 working days.
    objection_working_days: int = Field(default=2, ge=1, le=30)
    max_claim_chars: int = Field(default=2000, ge=10, le=20000)
    # Institutions that received an answer using a corrected feature this many days
    # back are told of the correction (data.corrected).
    notify_days: int = Field(default=90, ge=1, le=3650)
    # YX 四(四)四: credit repair is handled within 5 working days.
    repair_working_days: int = Field(default=5, ge=1, le=60)
    # The dishonesty and penalty records an enterprise may apply to repair (feature ids
    # of the catalog).
    repairable: tuple[str, ...] = ()
    # --- alerts ---: an objection's optional attachment (PDF, PNG or JPEG), at most this
    # many bytes (base64 in a JSON body: keep 4/3 of it under limits.max_request_bytes).
    max_attachment_bytes: int = Field(default=2_097_152, ge=1024, le=3_000_000)


# --- alerts ---
class AlertRule(_Frozen):
    """One change lenders care about (``alerts.rules``, docs/alerts.md): ``increase``
    (a count rose), ``becomes`` (the value became one of ``values``: an enum value or
    ``true``/``false``) or ``reaches`` (a numeric value rose to ``threshold`` or above
    from below it). A numeric rule is reported in bands: the catalog's, or ``bands``
    here for a feature the catalog does not band; a threshold is one of the boundaries,
    so an alert's ``from`` and ``to`` bands always differ."""

    kind: Identifier
    feature: str
    when: Literal["increase", "becomes", "reaches"]
    values: tuple[str, ...] = ()
    threshold: float | None = None
    bands: tuple[float, ...] | None = None


class Alerts(_Frozen):
    """Risk alerts to institutions holding an active ``monitor`` grant (``alerts``)."""

    rules: tuple[AlertRule, ...] = ()
    grade_down: bool = True  # a monthly grade worse than the month before
    page: int = Field(default=500, ge=1, le=5000)  # alerts per GET /v1/alerts
    # How often each worker turns recorded alerts into webhook events (seconds).
    publish_interval_seconds: float = Field(default=1.0, gt=0, le=60)


def _check_alert_rule(rule: AlertRule, categories: Mapping[str, Category]) -> None:
    category, _, name = rule.feature.partition(".")
    spec = getattr(categories.get(category), "features", {}).get(name)
    where = f"alerts.rules.{rule.kind}"
    if spec is None:
        raise ValueError(f"{where}: unknown feature {rule.feature!r}")
    if categories[category].visibility == "restricted":
        raise ValueError(f"{where}: {rule.feature} is restricted personal information")
    numeric = spec.type in ("integer", "amount", "number")
    if rule.when == "becomes":
        allowed = spec.values if spec.type == "enum" else ("true", "false")
        if spec.type not in ("enum", "boolean") or not rule.values:
            raise ValueError(f"{where}: 'becomes' needs an enum or boolean feature and values")
        if not set(rule.values) <= set(allowed or ()):
            raise ValueError(f"{where}: values must be among {list(allowed or ())}")
        return
    edges = rule.bands or spec.bands
    if not numeric or not edges:
        raise ValueError(f"{where}: '{rule.when}' needs a numeric feature with bands")
    if rule.bands is not None and list(rule.bands) != sorted(set(rule.bands)):
        raise ValueError(f"{where}: bands must be strictly ascending")
    if rule.when == "reaches" and (rule.threshold is None or rule.threshold not in edges):
        raise ValueError(f"{where}: 'reaches' needs a threshold that is a band boundary")


class MarketTargets(_Frozen):
    """JY 二(一): the shares of the market entities in the registration data that are
    to register, to verify their real name and to authorize (fractions)."""

    registered: float = Field(default=0.5, ge=0, le=1)
    real_name: float = Field(default=0.3, ge=0, le=1)
    authorizing: float = Field(default=0.3, ge=0, le=1)


class Financing(_Frozen):
    """The financing loop (``financing``, docs/financing.md): products, applications,
    outcomes and the month's statistics."""

    # Product kinds a product may declare (YX 四(一)一 金融产品超市).
    product_kinds: tuple[Identifier, ...] = (
        "credit",
        "guarantee",
        "pledge",
        "mortgage",
        "supply_chain",
        "policy",
    )
    # The standard reasons a declined application names (DL 三(一)3 loan feedback).
    decline_reasons: tuple[Identifier, ...] = (
        "insufficient_credit",
        "insufficient_repayment_capacity",
        "incomplete_materials",
        "outside_policy",
        "amount_exceeds_limit",
        "withdrawn_by_bank_review",
        "other",
    )
    # Repayment states an approved loan reports later.
    repayment_statuses: tuple[Identifier, ...] = (
        "normal",
        "overdue",
        "settled",
        "written_off",
    )
    amount_max: int = Field(default=100_000_000_000, ge=1)  # CNY: the largest amount taken
    rate_max: float = Field(default=36.0, gt=0, le=100)  # % a year
    term_months_max: int = Field(default=360, ge=1, le=1200)
    consent_days: int = Field(default=90, ge=1, le=3650)  # the application's consent period
    consent_max_uses: int = Field(default=20, ge=1)
    max_text_chars: int = Field(default=500, ge=10, le=20000)
    # The shares of the market entities against which the statistics are shown are
    # ``accounts.market_targets`` (JY: 50 / 30 / 30 %).


class Accounts(_Frozen):
    """Enterprise sign-up and real name (``gateway.api.accounts``, docs/accounts.md)."""

    sign_up_per_minute: int = Field(default=10, ge=1)  # per client address and worker
    sign_in_per_minute: int = Field(default=60, ge=1)  # per client address and worker
    real_name_attempts: int = Field(default=5, ge=1, le=100)  # per administrator account
    invitation_hours: int = Field(default=72, ge=1, le=24 * 90)
    market_targets: MarketTargets = MarketTargets()


class Nodes(_Frozen):
    """The node network (``nodes``, docs/network.md)."""

    assertion_max_seconds: int = Field(default=120, ge=10, le=600)
    relay_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Durable outbox to peers: exponential backoff from base up to cap, batch size.
    backoff_seconds: float = Field(default=1.0, gt=0, le=600)
    backoff_cap_seconds: float = Field(default=30.0, gt=0, le=3600)
    batch_max: int = Field(default=500, ge=1, le=500)
    delivery_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    # How often overdue objections are looked for and forwarded to the parent (JS 14).
    forward_interval_seconds: float = Field(default=60.0, gt=0, le=86400)
    # Catalog departments named for the parent: the only ones its data sent down may
    # load as (all or nothing, provenance node:<parent>/<message id>).
    parent_departments: tuple[str, ...] = ()


class Database(_Frozen):
    # None means the embedded default: SQLite in the instance folder.
    url: str | None = None


class ConfigFile(_Frozen):
    """The shape of ``config.yaml``."""

    database: Database = Database()
    server: Server = Server.model_validate({})
    tokens: Tokens = Tokens()
    consent: Consent = Consent()
    audit: Audit = Audit()
    limits: Limits = Limits()
    he: HEParams = HEParams()
    training: Training = Training()
    scoring: Scoring = Scoring()
    grading: Grading = Grading()
    accounts: Accounts = Accounts()  # enterprise sign-up and real name (docs/accounts.md)
    regions: Mapping[Annotated[str, Field(pattern=r"^[0-9]{6}$")], Region] = Field(
        default_factory=dict
    )
    calendar: Calendar = Calendar()
    casework: Casework = Casework()
    alerts: Alerts = Alerts()  # --- alerts ---
    financing: Financing = Financing()  # the financing loop (docs/financing.md)
    nodes: Nodes = Nodes()  # the node network (issue 18)
    departments: tuple[Department, ...]
    purposes: Mapping[Identifier, Purpose]
    categories: Mapping[Identifier, Category]

    @field_validator("departments")
    @classmethod
    def _unique_departments(cls, v: tuple[Department, ...]) -> tuple[Department, ...]:
        ids = [d.id for d in v]
        if len(ids) != len(set(ids)):
            raise ValueError("department ids must be unique")
        return v

    @model_validator(mode="after")
    def _references(self) -> ConfigFile:
        known = {d.id for d in self.departments}
        for name, cat in self.categories.items():
            if cat.department not in known:
                raise ValueError(
                    f"categories.{name}.department: unknown department {cat.department!r}"
                )
        for record in self.casework.repairable:
            category, _, feature = record.partition(".")
            if feature not in getattr(self.categories.get(category), "features", {}):
                raise ValueError(f"casework.repairable: unknown feature {record!r}")
        kinds = [rule.kind for rule in self.alerts.rules]
        if len(kinds) != len(set(kinds)) or "grade_down" in kinds:
            raise ValueError("alerts.rules: kinds must be unique (grade_down is built in)")
        for rule in self.alerts.rules:
            _check_alert_rule(rule, self.categories)
        return self


class Settings(_Frozen):
    """Everything the running system is configured with, secrets included."""

    home: Path
    database_url: str
    config: ConfigFile
    key_passphrase: SecretStr | None
    secret_key: SecretStr | None
    # The bearer token a Prometheus scraper presents at ``/metrics`` (None: operators'
    # sessions only).
    metrics_token: SecretStr | None = None

    # Convenience views over the catalog -------------------------------------------------
    def feature(self, feature_id: str) -> tuple[str, Category, Feature]:
        """Look up ``category.feature``; raises KeyError when unknown."""
        cat_name, _, feat_name = feature_id.partition(".")
        cat = self.config.categories[cat_name]
        return cat_name, cat, cat.features[feat_name]

    def department_categories(self, department: str) -> dict[str, Category]:
        return {n: c for n, c in self.config.categories.items() if c.department == department}

    @property
    def token_endpoint(self) -> str:
        return self.config.server.public_url.rstrip("/") + "/oauth/token"

    def purpose_max(self, purpose: str) -> timedelta:
        return timedelta(days=self.config.purposes[purpose].max_days)


def _format_location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def parse_config(raw: Any, *, source: str = "config.yaml") -> ConfigFile:
    """Validate a parsed YAML document; on failure name the dotted path of the bad key."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping", path="")
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = _format_location(tuple(first["loc"])) or "(top level)"
        raise ConfigError(f"{source}: {where}: {first['msg']}", path=where) from e


def load_settings(
    config_path: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load ``config.yaml`` once. ``env`` defaults to ``os.environ``; ``overrides`` are
    deep-merged into the file (tests use them instead of editing files; ``xinyi serve``
    its ``--host``, ``--port`` and ``--public-url``). ``server.public_url`` comes from,
    first to last: ``overrides``, ``$XINYI_PUBLIC_URL``, the file, ``http://HOST:PORT``."""
    env = os.environ if env is None else env
    path = Path(config_path or env.get("XINYI_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        given = (
            "--config"
            if config_path
            else "XINYI_CONFIG"
            if env.get("XINYI_CONFIG")
            else "the bundled default"
        )
        raise ConfigError(
            f"{path}: no such file (from {given}); point XINYI_CONFIG (or --config) at "
            "the instance's config.yaml",
            path="",
        ) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}", path="") from e
    public_url = env.get("XINYI_PUBLIC_URL")
    if public_url:
        raw = _deep_merge(
            raw if isinstance(raw, dict) else {}, {"server": {"public_url": public_url}}
        )
    if overrides:
        raw = _deep_merge(raw if isinstance(raw, dict) else {}, overrides)
    config = parse_config(raw, source=str(path))
    home = Path(env.get("XINYI_HOME", "instance")).resolve()
    url = env.get("XINYI_DATABASE_URL") or config.database.url or f"sqlite:///{home / 'xinyi.db'}"
    passphrase = env.get("XINYI_KEY_PASSPHRASE")
    secret = env.get("XINYI_SECRET_KEY")
    metrics_token = env.get("XINYI_METRICS_TOKEN")
    return Settings(
        home=home,
        database_url=url,
        config=config,
        key_passphrase=SecretStr(passphrase) if passphrase else None,
        secret_key=SecretStr(secret) if secret else None,
        metrics_token=SecretStr(metrics_token) if metrics_token else None,
    )


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
