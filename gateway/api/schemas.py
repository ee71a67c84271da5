"""The bodies of the JSON API (CONTRACT.md), one model per call: what each route takes
(:class:`~gateway.contract.Body`, :class:`~gateway.contract.Query`) and answers
(:class:`~gateway.contract.Answer`). ``/openapi.json`` is generated from them.

A request model checks shape and types only. What needs the catalog, the settings or
the store (a feature exists, a list is within the configured limit, a ciphertext
parses) stays with the route and the domain, which raise their own stable codes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from common.uscc import is_valid as is_valid_uscc
from gateway.contract import Answer, Body, OpenAnswer, Query

MAX_INDEX = 2**63 - 1
"""Sizes and indices are 64-bit in the store: a larger number is bad input."""

USCC_PATTERN = "^[0-9A-HJ-NP-RTUWXY]{18}$"
_DECIMAL = re.compile(r"-?[0-9]{1,19}")


def _decimal(value: Any) -> Any:
    """A query-string integer: plain decimal digits only (no ``5.0``, ``5_0``, ``1e3``)."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    return value


def _uscc(value: str) -> str:
    if not is_valid_uscc(value):
        raise ValueError("not a valid USCC (GB 32100-2015)")
    return value


QueryInt = Annotated[int, BeforeValidator(_decimal)]
RelayAuditIndex = Annotated[
    int | None,
    Field(
        description="when an institution's node relayed the call to the node holding the "
        "enterprise (docs/network.md): the relaying node's audit index; ``audit_index`` is "
        "the holding node's"
    ),
]
Index = Annotated[int, Field(ge=0, le=MAX_INDEX)]
Uscc = Annotated[str, Field(pattern=USCC_PATTERN, description="统一社会信用代码 (GB 32100-2015)")]
Base64 = Annotated[str, Field(min_length=1, json_schema_extra={"contentEncoding": "base64"})]
Ref = Annotated[str, Field(min_length=1)]


class StrictQuery(Query):
    """Query parameters whose values are checked strictly after reading numbers."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


# Sign-in, keys, catalog, health ------------------------------------------------------


class SignIn(Body):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
    login: str
    password: str


class SignedIn(Answer):
    login: str
    role: Literal["enterprise", "department", "operator", "institution"]
    uscc: str | None
    department: str | None
    csrf_token: str | None
    institution: str | None = None  # role institution: the bank the staff member works for
    real_name: bool | None = None  # role enterprise: whether the real name is verified


class Webhook(Body):
    """``{"url": null}`` (or no url) removes the webhook."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
    url: str | None = None


class WebhookView(Answer):
    url: str | None


class Jwks(OpenAnswer):
    keys: list[dict[str, Any]]


class CatalogFeature(OpenAnswer):
    category: str
    department: str
    visibility: Literal["public", "non_public", "restricted"]
    type: str
    unit: str | None
    description: str | None
    description_en: str | None
    values: list[Any] | None
    verify_ops: list[str]
    bands: list[Any] | None


class CatalogCategory(OpenAnswer):
    department: str
    visibility: Literal["public", "non_public", "restricted"]
    name: str
    name_en: str | None
    features: list[str]


class CatalogView(Answer):
    departments: list[dict[str, Any]]
    purposes: dict[str, dict[str, Any]]
    categories: dict[str, CatalogCategory]
    features: dict[str, CatalogFeature]


class Health(Answer):
    status: Literal["ok"]


class Readiness(Answer):
    status: Literal["ready", "unavailable"]
    database: bool
    audit_log_size: int | None = None
    audit_queue_depth: int | None = None
    audit_queue_lag_seconds: float | None = None
    reason: str | None = None
    """Why not ready, when the login lacks privileges."""


class TokenForm(Body):
    """``application/x-www-form-urlencoded`` (RFC 6749 §4.4, RFC 7523 §2.2)."""

    grant_type: Literal["client_credentials"]
    client_assertion_type: Literal["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    client_assertion: str


class OAuthError(OpenAnswer):
    """RFC 6749 §5.2."""

    error: str
    error_description: str | None = None


class Token(Answer):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


# Consent ------------------------------------------------------------------------------


class ConsentRequest(Body):
    """What the consent policy then checks against the catalog and the purpose's
    limits (``consent.policy.parse_request``)."""

    CODE: ClassVar[str] = "invalid_consent_request"
    enterprise: Annotated[str, Field(description="统一社会信用代码 (GB 32100-2015)")]
    purpose: str
    ops: Annotated[list[str], Field(min_length=1)]
    categories: Annotated[list[str], Field(min_length=1)]
    duration_days: Annotated[int, Field(ge=1)]
    max_uses: Annotated[int, Field(ge=1)]


class ConsentView(Answer):
    relay_audit_index: RelayAuditIndex = None  # nodes: set when relayed
    id: str
    status: str
    enterprise: str
    institution: str
    purpose: str
    ops: list[str]
    categories: list[str]
    duration_days: int
    created_at: int
    expires_at: int | None
    uses: int
    max_uses: int
    grant: str | None = Field(description="the signed grant JWT once approved")
    letter: str
    letter_hash: str
    audit_index: int | None = None
    verification_budget: dict[str, Any] | None = None


class ConsentList(Answer):
    consents: list[ConsentView]


class ConsentFilter(Query):
    status: str | None = None


ConsentAction = Literal["approve", "reject", "pause", "resume", "revoke"]


# Audit log ----------------------------------------------------------------------------


class CheckpointQuery(StrictQuery):
    size: Annotated[QueryInt, Field(ge=0, le=MAX_INDEX)] | None = None


class EntriesQuery(StrictQuery):
    after: Annotated[QueryInt, Field(ge=-1, le=MAX_INDEX)] = -1
    limit: Annotated[QueryInt, Field(ge=1, le=MAX_INDEX)] = 100


class InclusionQuery(StrictQuery):
    index: Annotated[QueryInt, Field(ge=0, le=MAX_INDEX)]
    size: Annotated[QueryInt, Field(ge=0, le=MAX_INDEX)] | None = None


class ConsistencyQuery(StrictQuery):
    first: Annotated[QueryInt, Field(ge=0, le=MAX_INDEX)]
    second: Annotated[QueryInt, Field(ge=0, le=MAX_INDEX)]


class LeavesQuery(StrictQuery):
    start: Annotated[QueryInt, Field(ge=0, le=MAX_INDEX)]
    end: Annotated[QueryInt, Field(ge=0, le=MAX_INDEX)]


class Cosignature(Body):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
    size: Index
    cosignature: Annotated[
        str, Field(max_length=1000, description="one C2SP tlog-cosignature line")
    ]


class Cosigned(Answer):
    size: int
    department: str


class KeyTransitions(Answer):
    transitions: list[str] = Field(description="signed notes, oldest first")


class Witness(Answer):
    department: str
    name: str
    vkey: str


class Witnesses(Answer):
    witnesses: list[Witness]


class Entry(Answer):
    index: int
    entry: dict[str, Any]
    leaf_hash: str


class Entries(Answer):
    entries: list[Entry]
    next: int | None


class InclusionProof(Answer):
    index: int
    size: int
    hashes: list[str]


class ConsistencyProof(Answer):
    first: int
    second: int
    hashes: list[str]


# Data services ------------------------------------------------------------------------


class ReportQuery(Query):
    grant: str | None = None


class Band(Answer):
    band: str
    band_en: str
    lower: float | None
    upper: float | None
    unit: str | None = None


class Report(Answer):
    relay_audit_index: RelayAuditIndex = None  # nodes: set when relayed
    enterprise: str
    public: dict[str, Any]
    banded: dict[str, Band]
    disputed: list[str] = Field(
        default_factory=list,
        description="features this answer used that are under an open objection (JS 14)",
    )
    repaired: list[str] = Field(
        default_factory=list, description="public records marked repaired (信用修复)"
    )
    audit_index: int


class Verification(Body):
    CODES: ClassVar[dict[str, str]] = {"op": "op_not_allowed", "value": "invalid_value"}
    grant: str | None = None
    feature: Annotated[str, Field(description="a feature id such as tax.paid_12m")]
    op: Literal[">=", "<=", "==", "!="]
    value: bool | int | float | str


class Verified(Answer):
    relay_audit_index: RelayAuditIndex = None  # nodes: set when relayed
    result: bool
    disputed: list[str] = Field(
        default_factory=list,
        description="features this answer used that are under an open objection (JS 14)",
    )
    audit_index: int


class ImportUpload(Body):
    """A multipart form with the CSV as its ``file`` field."""

    file: Annotated[bytes, Field(json_schema_extra={"format": "binary"})]


class ImportName(Query):
    file_name: str | None = None


class ImportHistoryQuery(StrictQuery):
    limit: Annotated[QueryInt, Field(ge=1, le=500)] = 50


class ImportRecord(Answer):
    id: int
    department: str
    version: int | None
    status: Literal["loaded", "rejected"]
    file_name: str
    sha256: str
    rows: int
    features: list[str]
    reject_count: int
    bad_rows: int
    imported_at: int
    imported_by: str


class ImportHistory(Answer):
    imports: list[ImportRecord]


# HE scoring ---------------------------------------------------------------------------


class ContextParams(Answer):
    poly_modulus_degree: int
    coeff_mod_bit_sizes: list[int]
    global_scale_bits: int


class ContextRegistration(Body):
    context: Annotated[Base64, Field(description="a TenSEAL CKKS public context")]


class RegisteredContext(Answer):
    id: str
    context_params: ContextParams


class ContextItem(Answer):
    id: str
    context_params: ContextParams
    created_at: int


class Contexts(Answer):
    contexts: list[ContextItem]


class ModelView(Answer):
    id: str
    version: int
    gateway_features: list[str]
    gateway_categories: list[str]
    grant_categories: list[str]
    bank_features: list[str]
    context_params: ContextParams
    bank_standardization: dict[str, Any] | None
    created_at: int | None
    owner: str | None = Field(description="the institution whose prefix names the model")
    status: str | None = Field(description="review status: pending, approved or rejected")
    description: str | None = None


class Models(Answer):
    models: list[ModelView]


class ScoreRequest(Body):
    grant: str | None = None
    model: Annotated[Ref, Field(description="'id' (the newest version) or 'id@version'")]
    context: Annotated[Ref, Field(description="the id POST /v1/contexts returned")]
    ciphertext: Annotated[Base64, Field(description="the model's bank features in slots 0…k−1")]


class Scored(Answer):
    relay_audit_index: RelayAuditIndex = None  # nodes: set when relayed
    ciphertext: Base64
    audit_index: int
    model: str
    disputed: list[str] = Field(
        default_factory=list,
        description="features this answer used that are under an open objection (JS 14)",
    )


class BatchRequest(Body):
    CODES: ClassVar[dict[str, str]] = {"ciphertexts": "invalid_ciphertext"}
    grants: Annotated[list[str], Field(min_length=1)]
    model: Ref
    context: Ref
    ciphertexts: Annotated[
        list[Base64],
        Field(description="per chunk of slots enterprises, one ciphertext per bank feature"),
    ]


class Refused(Answer):
    index: int
    error: str
    message: str
    audit_index: int | None


class BatchScored(Answer):
    relay_audit_index: RelayAuditIndex = None  # nodes: set when relayed
    ciphertexts: list[Base64]
    audit_indexes: list[int | None]
    refused: list[Refused]
    model: str
    disputed: list[list[str]] = Field(
        default_factory=list,
        description="per enterprise (as grants): the features used under an open objection",
    )


# Federated training -------------------------------------------------------------------

_PLAN = "training_plan"


class TrainingEnterprise(Body):
    uscc: Annotated[Uscc, AfterValidator(_uscc)]
    grant: Annotated[str, Field(min_length=1, max_length=8192)]
    validation: bool = False


class PlanOptions(Body):
    epochs: Annotated[int, Field(ge=1)] = 16
    batch_size: Annotated[int, Field(ge=1)] | None = None
    learning_rate: float = 0.1
    l2: float = 1e-4
    seed: int | None = None


class OpenSession(Body):
    CODES: ClassVar[dict[str, str]] = {
        "enterprises.uscc": "invalid_uscc",
        **{f"plan.{name}": _PLAN for name in PlanOptions.model_fields},
    }
    enterprises: Annotated[list[TrainingEnterprise], Field(min_length=1)]
    gateway_features: Annotated[
        list[str],
        Field(
            min_length=1,
            description="category.feature, log1p(category.feature) or category.feature=VALUE",
        ),
    ]
    bank_features: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1)
    ]
    context: Annotated[Base64, Field(description="the bank's public CKKS training context")]
    plan: PlanOptions | None = None
    model_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class TrainingRefusal(Answer):
    uscc: str
    error: str
    message: str
    audit_index: int | None


class OpenedSession(Answer):
    id: str
    plan: dict[str, Any]
    gateway_features: list[str]
    train: list[str]
    validation: list[str]
    refused: list[TrainingRefusal]
    message: str


class ModelRef(Answer):
    id: str
    version: int | None
    status: str | None = Field(default=None, description="review status of the version")


class SessionItem(Answer):
    id: str
    status: str
    next_epoch: int
    next_batch: int
    model: ModelRef | None
    created_at: int


class Sessions(Answer):
    sessions: list[SessionItem]


class TrainingSession(Answer):
    id: str
    status: str
    state: str
    plan: dict[str, Any]
    gateway_features: list[str]
    bank_features: list[str]
    rows: dict[str, int]
    refused: int
    next_epoch: int
    next_batch: int
    last_seq: int
    training_finished: bool
    model: ModelRef | None
    created_at: int
    updated_at: int
    refused_enterprises: list[TrainingRefusal]


class BankHalf(Body):
    bank_features: list[str]
    bank_weights: list[float]
    intercept: float


class Finish(Body):
    model_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    serve: bool = Field(
        default=False, alias="register", description="register the joint model for serving"
    )
    bank_half: Annotated[BankHalf | None, Field(description="weights on raw bank features")] = None
    description: str | None = None


class Finished(Answer):
    id: str
    registered: bool
    message: str | None = None
    model: ModelRef | None = None


# Objections (异议, JS 14) --------------------------------------------------------------


class ObjectionFiling(Body):
    feature: Annotated[str, Field(min_length=1, description="a feature id such as tax.paid_12m")]
    claim: Annotated[str, Field(description="why the value is wrong (plain text)")]
    attachment: AttachmentUpload | None = None  # --- alerts ---


class ObjectionDecision(Body):
    """``value`` only with ``corrected`` (the new value, typed as the feature is)."""

    CODES: ClassVar[dict[str, str]] = {"value": "invalid_value"}
    decision: Literal["corrected", "rejected"]
    value: bool | int | float | str | None = None
    reason: str


class ObjectionQuery(Query):
    status: Literal["open", "corrected", "rejected"] | None = None


class ObjectionResolution(Answer):
    decision: Literal["corrected", "rejected"]
    reason: str
    by: str
    at: int
    version: int | None = Field(description="the records snapshot holding a corrected value")


class ObjectionView(Answer):
    id: str
    enterprise: str
    feature: str
    department: str
    claim: str
    status: Literal["open", "corrected", "rejected"]
    filed_at: int
    due: Annotated[str, Field(description="YYYY-MM-DD, China Standard Time")]
    overdue: bool
    resolution: ObjectionResolution | None
    attachment: AttachmentInfo | None = None  # --- alerts ---: download at .../attachment


class Objections(Answer):
    objections: list[ObjectionView]


class RepairApplication(Body):
    record: Annotated[
        str, Field(min_length=1, description="a repairable record such as admin_penalty.dishonest")
    ]
    reason: Annotated[str, Field(description="why the record should be repaired")]


class RepairDecision(Body):
    decision: Literal["repaired", "rejected"]
    reason: str


class RepairQuery(Query):
    status: Literal["open", "repaired", "rejected"] | None = None


class RepairResolution(Answer):
    decision: Literal["repaired", "rejected"]
    reason: str
    by: str
    at: int


class RepairView(Answer):
    id: str
    enterprise: str
    record: str
    department: str
    reason: str
    status: Literal["open", "repaired", "rejected"]
    filed_at: int
    due: Annotated[str, Field(description="YYYY-MM-DD, China Standard Time")]
    overdue: bool
    resolution: RepairResolution | None


class Repairs(Answer):
    repairs: list[RepairView]


# --- alerts ---


class AlertsQuery(Query):
    after: Annotated[
        int, Field(ge=0, description="the `next` of the previous page (0: from the start)")
    ] = 0


class AlertView(Answer):
    id: Annotated[int, Field(description="the alert's place among this institution's alerts")]
    enterprise: str
    kind: Annotated[str, Field(description="a rule of `alerts.rules`, or grade_down")]
    from_: Annotated[
        str | None,
        Field(alias="from", description="band (or grade) before; null: no earlier value"),
    ]
    to: Annotated[str, Field(description="band (or grade) after; never a value")]
    at: int
    audit_index: int

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Alerts(Answer):
    alerts: list[AlertView]
    next: Annotated[int, Field(description="pass as `after` for the following page")]


class AttachmentUpload(Body):
    """An objection's evidence: PDF, PNG or JPEG (checked by its bytes), at most
    ``casework.max_attachment_bytes``."""

    file_name: Annotated[str, Field(min_length=1, max_length=255)]
    content_base64: Annotated[str, Field(min_length=1, description="the file, base64")]


class AttachmentInfo(Answer):
    file_name: str
    content_type: Literal["application/pdf", "image/png", "image/jpeg"]
    size: int
    sha256: str


# --- financing (products, applications, outcomes, needs, statistics) ---

Amount = Annotated[int, Field(ge=0, le=MAX_INDEX, description="CNY yuan")]
Rate = Annotated[float, Field(ge=0, le=100, description="% a year")]
Months = Annotated[int, Field(ge=0, le=100_000, description="months")]


class ProductPublication(Body):
    """A product of the supermarket (金融产品超市, YX 四(一)一); the ranges and the
    consent terms are checked by ``financing.products.new_product``."""

    CODE: ClassVar[str] = "invalid_product"
    name: Annotated[str, Field(min_length=1)]
    kind: str
    amount_min: Amount
    amount_max: Amount
    rate_min: Rate
    rate_max: Rate
    term_months_max: Months
    purpose: str
    ops: Annotated[list[str], Field(min_length=1)]
    categories: Annotated[list[str], Field(min_length=1)]
    min_grade: Literal["高级", "一级", "备选"] | None = None


class ProductView(Answer):
    id: str
    institution: str
    name: str
    kind: str
    amount_min: int
    amount_max: int
    rate_min: float
    rate_max: float
    term_months_max: int
    purpose: str
    ops: list[str]
    categories: list[str]
    min_grade: str | None
    status: str
    created_at: int


class Products(Answer):
    products: list[ProductView]


class ProductQuery(Query):
    CODE: ClassVar[str] = "invalid_query"
    kind: str | None = None
    amount: Annotated[QueryInt, Field(ge=0, le=MAX_INDEX)] | None = None
    term: Annotated[QueryInt, Field(ge=0, le=100_000)] | None = None
    rate: Annotated[float, Field(ge=0, le=100)] | None = None
    grade: Literal["高级", "一级", "备选"] | None = None
    institution: str | None = None
    limit: Annotated[QueryInt, Field(ge=1, le=200)] = 50
    offset: Annotated[QueryInt, Field(ge=0, le=100_000)] = 0


class ApplicationFiling(Body):
    CODE: ClassVar[str] = "invalid_application"
    product: Ref
    amount: Amount
    term_months: Months


class OutcomeView(Answer):
    decision: Literal["approved", "declined"]
    reason: str | None
    credit_line: int | None
    disbursed: int | None
    rate: float | None
    term_months: int | None
    credit_loan: bool
    first_loan: bool
    decided_at: int
    repayment: str | None


class ApplicationView(Answer):
    id: str
    product: str
    institution: str
    enterprise: str
    amount: int
    term_months: int
    status: Literal["awaiting_consent", "submitted", "approved", "declined", "withdrawn"]
    consent: str
    need: str | None
    created_at: int
    submitted_at: int | None
    outcome: OutcomeView | None
    audit_index: int | None = None
    consent_request: ConsentView | None = None


class ApplicationOpened(Answer):
    """201 of an application: the consent request the enterprise approves as any other."""

    id: str
    status: Literal["awaiting_consent"]
    consent: ConsentView
    application: ApplicationView
    audit_index: int


class Applications(Answer):
    applications: list[ApplicationView]


class ApplicationQuery(Query):
    status: Literal["awaiting_consent", "submitted", "approved", "declined", "withdrawn"] | None = (
        None
    )


class OutcomeFiling(Body):
    CODE: ClassVar[str] = "invalid_outcome"
    decision: Literal["approved", "declined"]
    reason: str | None = None
    credit_line: Amount | None = None
    disbursed: Amount | None = None
    rate: Rate | None = None
    term_months: Months | None = None
    credit_loan: bool = False
    first_loan: bool = False


class RepaymentFiling(Body):
    CODE: ClassVar[str] = "invalid_outcome"
    status: str


class NeedFiling(Body):
    CODE: ClassVar[str] = "invalid_need"
    amount: Amount
    term_months: Months
    use: Annotated[str, Field(min_length=1)]


class NeedView(Answer):
    id: str
    enterprise: str
    amount: int
    term_months: int
    use: str
    status: Literal["open", "closed"]
    created_at: int


class Needs(Answer):
    needs: list[NeedView]


class NeedAnswer(Body):
    CODE: ClassVar[str] = "invalid_application"
    product: Ref


class StatisticsQuery(Query):
    CODE: ClassVar[str] = "invalid_query"
    month: Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    region: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None


class _Flow(Answer):
    applications: int
    approved: int
    credit_lines: int
    disbursed: int
    credit_loan_disbursed: int
    credit_loan_share: float | None
    first_loans: int
    weighted_rate: float | None


class _Figures(_Flow):
    registered: int
    real_name: int
    authorizing: int
    market_entities: int
    shares: dict[str, float | None]
    targets: dict[str, float]


class RegionFigures(_Figures):
    region: str
    node: str | None = Field(
        default=None,
        description="nodes: the node whose figures these are (a parent lists its "
        "children's pushed figures too); absent when this instance is no node",
    )


class InstitutionFigures(_Flow):
    institution: str
    authorized_in_month: int = Field(
        description="distinct enterprises that approved a consent for the institution "
        "in the month (docs/financing.md)"
    )


class Statistics(_Figures):
    """The month's figures by the national caliber (JY 三(三)3); docs/financing.md."""

    month: str
    by_region: list[RegionFigures]
    by_institution: list[InstitutionFigures]


class Efficacy(Answer):
    """成效 (JY 三(二)2): the month's approved loans whose decisions used the department's
    data, and what they disbursed."""

    month: str
    departments: dict[str, dict[str, int]]


# --- accounts: enterprise sign-up, real name, invitations ---
class EnterpriseRegistration(Body):
    uscc: Annotated[str, Field(max_length=64, description="统一社会信用代码 (GB 32100-2015)")]
    login: Annotated[str, Field(max_length=100)]
    password: Annotated[str, Field(max_length=1024)]
    legal_representative: Annotated[
        str, Field(max_length=100, description="法定代表人姓名, as registered")
    ]
    legal_representative_id: Annotated[
        str,
        Field(
            max_length=64,
            description="法定代表人居民身份证号 (18 characters, GB 11643-1999); compared as a "
            "keyed hash, never stored",
        ),
    ]


class EnterpriseRegistered(Answer):
    login: str
    real_name: bool


class RealNameCheck(Body):
    legal_representative: Annotated[str, Field(max_length=100)]
    legal_representative_id: Annotated[str, Field(max_length=64)]


class RealNameStatus(Answer):
    login: str
    real_name: bool
    attempts_left: Annotated[int, Field(ge=0, description="real-name checks this account has left")]


class InvitationCreated(Answer):
    token: Annotated[str, Field(description="shown once; the link carries it")]
    url: str
    expires_at: int


class InvitationView(Answer):
    created_at: int
    expires_at: int
    used_at: int | None
    used_by: str | None


class InvitationList(Answer):
    invitations: list[InvitationView]


class InvitationAcceptance(Body):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    login: Annotated[str, Field(max_length=100)]
    password: Annotated[str, Field(max_length=1024)]


# --- grades (JY 附件2; gateway/grades.py) ---

GradeName = Literal["高级", "一级", "备选", "不予认证", "不在认证范围"]
Letter = Literal["A", "B", "C"]
MonthText = Annotated[str, Field(description="YYYY-MM")]


class GradeQuery(Query):
    grant: str | None = Field(
        default=None, description="institutions: the grant JWT (op grade); enterprises: none"
    )
    month: MonthText | None = Field(default=None, description="default: the newest computed")


class GradeExplanation(Answer):
    """Why one indicator got its letter (the enterprise's own values: never sent to an
    institution)."""

    name: str
    name_en: str
    letter: Letter | None
    reason: str
    reason_en: str
    value: float | None = None
    rank: int | None = None
    of: int | None = None
    group: str | None = None


class GradeHint(Answer):
    indicator: str
    hint: str
    hint_en: str


class Grade(Answer):
    enterprise: str
    month: MonthText
    grade: GradeName
    method: Literal["indicator", "direct", "score", "filter"]
    indicators: dict[str, Letter | None] = Field(
        description="letters of ①…⑫ (null: not applicable); to an institution never ⑦, "
        "which is the legal representative's personal credit"
    )
    disputed: list[str] = Field(
        default_factory=list,
        description="features the grade used that are under an open objection (JS 14)",
    )
    audit_index: int | None = Field(
        default=None, description="the audit entry of an institution's reading"
    )
    relay_audit_index: RelayAuditIndex = None  # nodes: set when relayed
    explanation: dict[str, GradeExplanation] | None = Field(
        default=None, description="the enterprise itself only: why each letter"
    )
    how_to_raise: list[GradeHint] | None = Field(
        default=None, description="the enterprise itself only: what would raise the grade"
    )
    recommended: bool | None = Field(
        default=None, description="the enterprise itself only: opted in to the whitelist"
    )


class WhitelistQuery(Query):
    month: MonthText | None = Field(default=None, description="default: the newest computed")


class WhitelistEntry(Answer):
    uscc: str
    name: str | None
    grade: Literal["高级", "一级"]
    industry: str | None = Field(description="GB/T 4754-2017 division (two digits)")
    region: str = Field(description="the 6-digit administrative division in the USCC")
    audit_index: int = Field(description="the access entry the listing wrote about it")


class Whitelist(Answer):
    month: MonthText
    enterprises: list[WhitelistEntry]


class RecommendationChoice(Body):
    recommended: bool


class RecommendationState(Answer):
    enterprise: str
    recommended: bool
    changed_at: int | None


# --- nodes (issue 18) ---
class NodeMessage(Body):
    id: Annotated[str, Field(max_length=80, description="<sender>:<sequence>, unique")]
    kind: Literal["statistics", "objection_overdue", "data_import", "note", "webhook"]
    payload: dict[str, Any]
    created_at: Annotated[int, Field(ge=0)]


class NodeBatch(Body):
    """A peer's batch of outbox messages, in the sender's order."""

    CODE: ClassVar[str] = "node_message_invalid"
    messages: Annotated[list[NodeMessage], Field(min_length=1, max_length=500)]


class NodeBatchAccepted(Answer):
    """A peer's batch of messages taken: each id acted upon once (``duplicates`` were
    acted upon before and had no second effect)."""

    accepted: int
    duplicates: int


class RelayedAnswer(OpenAnswer):
    """Whatever the relayed call answers at the holding node (its own model)."""
