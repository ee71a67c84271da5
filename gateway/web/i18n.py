"""The words of the console pages: one catalog, Simplified Chinese first, English beside.

Invariants:
- every message exists in both languages: the catalog is one table of
  ``key: (Simplified Chinese, English)`` pairs, so a language cannot miss a key;
- templates and page code hold no user-visible text of their own, only catalog keys
  (a test scans them for CJK characters and for keys the catalog lacks); names from the
  data catalog (departments, purposes, categories, features) come from ``config.yaml``
  in the page's language (``name`` / ``name_en``);
- a missing key renders as ``⟦key⟧`` (never silently as nothing), so a test walking
  every page in both languages finds it;
- the default language is ``zh-CN``; ``?lang=en`` on any page switches (kept in a
  cookie, which survives signing in and out).

A plain dict rather than gettext/Flask-Babel: two languages, a few hundred messages, and
a structure in which the two texts of a message sit side by side and cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from common.settings import Settings

LANGS: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
MISSING = "⟦{}⟧"

# key: (zh-CN, en). Placeholders in {braces} are filled by ``translate``.
MESSAGES: dict[str, tuple[str, str]] = {
    # Frame
    "app.name": ("信易贷数据网关", "Xinyi Credit Data Gateway"),
    "nav.skip": ("跳到主要内容", "Skip to main content"),
    "nav.label": ("主导航", "Main navigation"),
    "nav.signed_in_as": ("当前用户", "Signed in as"),
    "nav.logout": ("退出登录", "Sign out"),
    "nav.requests": ("待处理请求", "Pending requests"),
    "nav.grants": ("我的授权", "My authorizations"),
    "nav.accesses": ("数据使用记录", "Accesses to my data"),
    "nav.data": ("我的数据", "My data"),
    "nav.dep_accesses": ("数据访问记录", "Accesses to our data"),
    "nav.imports": ("数据导入", "Data imports"),
    "nav.witness": ("见证状态", "Witness status"),
    "nav.stats": ("统计", "Statistics"),
    "nav.institutions": ("接入机构", "Institutions"),
    "nav.departments": ("数据提供单位", "Departments"),
    "nav.keys": ("签名密钥", "Signing keys"),
    "nav.models": ("联合模型", "Joint models"),
    "lang.other": ("English", "简体中文"),
    "footer.text": (
        "非公开数据不出网关：机构只获得计算结果；每一次访问都记入可验证的审计日志。",
        "Non-public data never leaves the gateway: institutions get computed answers only; "
        "every access is recorded in a verifiable audit log.",
    ),
    "sep.list": ("、", ", "),
    "sep.label": ("：", ": "),
    # Roles
    "role.enterprise": ("企业", "Enterprise"),
    "role.department": ("数据提供单位", "Data-providing department"),
    "role.operator": ("平台运营", "Platform operator"),
    "role.institution": ("接入机构", "Institution"),
    # Sign-in
    "title.login": ("登录", "Sign in"),
    "login.intro": (
        "企业、数据提供单位和平台运营人员使用同一登录入口。",
        "Enterprises, departments and the platform operator sign in here.",
    ),
    "login.login": ("账号", "Login"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.bad_credentials": ("账号或密码错误。", "Wrong login or password."),
    "login.throttled": (
        "登录失败次数过多，请 {seconds} 秒后再试。",
        "Too many failed sign-ins; try again in {seconds} seconds.",
    ),
    "login.form_expired": (
        "登录表单已过期，请重新输入。",
        "The sign-in form expired; please enter your details again.",
    ),
    "login.roles_title": ("谁可以登录", "Who signs in here"),
    "login.role_enterprise": (
        "审阅授权请求、管理授权、查看每一次数据使用并自行验证、免费下载本企业数据。",
        "review authorization requests, manage authorizations, see and verify every access, "
        "download your own data free of charge.",
    ),
    "login.role_department": (
        "查看对本单位数据的每一次访问、导出记录、查看导入历史和审计日志见证状态。",
        "see and export every access to your data, import history and the audit log's "
        "witness status.",
    ),
    "login.role_operator": (
        "管理接入机构和数据提供单位、查看密钥和模型、查看统计。",
        "manage institutions and departments, see keys and models, see statistics.",
    ),
    # Notices
    "notice.signed_out": ("您已退出登录。", "You have signed out."),
    "notice.session_expired": (
        "登录已过期，请重新登录。",
        "Your session has expired; please sign in again.",
    ),
    "notice.approved": (
        "已同意授权：{institution} 现在可以在授权范围内使用您的数据。",
        "Authorization approved: {institution} may now use your data within its terms.",
    ),
    "notice.rejected": (
        "已拒绝 {institution} 的授权请求。",
        "You rejected {institution}'s request.",
    ),
    "notice.paused": (
        "已暂停：{institution} 的下一次请求起将被拒绝。",
        "Paused: {institution}'s requests are refused from the next one on.",
    ),
    "notice.resumed": (
        "已恢复：{institution} 可以继续使用该授权。",
        "Resumed: {institution} may use the authorization again.",
    ),
    "notice.revoked": (
        "已撤销：{institution} 的下一次请求起将被拒绝，且无法恢复。",
        "Revoked: {institution}'s requests are refused from the next one on, for good.",
    ),
    "notice.institution_suspend": (
        "已暂停接入机构 {party}：其所有请求将被拒绝。",
        "Institution {party} suspended: all its requests are refused.",
    ),
    "notice.institution_resume": (
        "已恢复接入机构 {party}。",
        "Institution {party} resumed.",
    ),
    "notice.department_suspend": (
        "已暂停数据提供单位 {party}：其人员无法登录。",
        "Department {party} suspended: its people cannot sign in.",
    ),
    "notice.department_resume": ("已恢复数据提供单位 {party}。", "Department {party} resumed."),
    "notice.institution_added": ("已登记接入机构 {party}。", "Institution {party} registered."),
    "notice.department_added": (
        "已登记数据提供单位 {party}。",
        "Department {party} registered.",
    ),
    "notice.rotated": (
        "已为 {purpose} 生成新签名密钥 {kid}；旧密钥继续公布至其签名内容过期。",
        "New {purpose} signing key {kid}; the old key stays published until what it "
        "signed has expired.",
    ),
    # Errors
    "title.error": ("无法完成", "Cannot do that"),
    "error.code": ("错误代码", "Error code"),
    "error.back": ("返回", "Go back"),
    "error.not_found": ("没有找到该内容，或您无权查看。", "Not found, or not yours to see."),
    "error.wrong_role": (
        "该页面属于其他角色，您的账号无法访问。",
        "This page belongs to another role; your account cannot open it.",
    ),
    "error.csrf_failed": (
        "表单已过期或来源不明，未执行任何操作。请返回并重试。",
        "The form expired or did not come from this site; nothing was done. Go back and try again.",
    ),
    "error.forbidden": ("该操作被拒绝。", "That was refused."),
    "error.invalid": ("输入有误：{message}", "Invalid input: {message}"),
    "error.conflict": (
        "当前状态不允许该操作（可能已被更改），请刷新后重试。",
        "The current state does not allow that (it may have changed); reload and try again.",
    ),
    "error.unavailable": (
        "服务暂时不可用，未执行任何操作。",
        "The service is unavailable right now; nothing was done.",
    ),
    "error.accept_required": (
        "请先阅读授权书并勾选同意。",
        "Please read the authorization letter and tick the box first.",
    ),
    "error.unknown_action": ("未知的操作。", "Unknown action."),
    # Status names
    "status.pending": ("待处理", "Pending"),
    "status.active": ("有效", "Active"),
    "status.paused": ("已暂停", "Paused"),
    "status.revoked": ("已撤销", "Revoked"),
    "status.expired": ("已过期", "Expired"),
    "status.rejected": ("已拒绝", "Rejected"),
    "status.suspended": ("已暂停", "Suspended"),
    # Operations
    "op.report": ("查询报告", "Report"),
    "op.verify": ("条件核验", "Verification"),
    "op.score": ("联合评分", "Joint score"),
    "op.train": ("联合建模", "Joint training"),
    "op.monitor": ("风险预警", "Risk alert"),
    "op.grade": ("查询信用等级", "Credit grade"),
    "op.whitelist": ("白名单推荐", "Whitelist listing"),
    "op.model.approve": ("审核通过模型", "Model approved"),
    "op.model.reject": ("拒绝模型", "Model rejected"),
    "op.consent.request": ("提出授权请求", "Consent requested"),
    "op.consent.approve": ("同意授权", "Consent approved"),
    "op.consent.reject": ("拒绝授权", "Consent rejected"),
    "op.consent.pause": ("暂停授权", "Consent paused"),
    "op.consent.resume": ("恢复授权", "Consent resumed"),
    "op.consent.revoke": ("撤销授权", "Consent revoked"),
    "op_desc.report": (
        "查询分级报告，非公开数据仅以区间呈现",
        "banded report; non-public data only as ranges",
    ),
    "op_desc.verify": (
        "核验是否满足某一条件，仅返回是或否",
        "checks one condition; answers only yes or no",
    ),
    "op_desc.score": (
        "同态加密联合模型评分，机构只得到评分",
        "joint-model score under homomorphic encryption; the institution gets the score only",
    ),
    "op_desc.train": (
        "联合建模训练，数据不出平台",
        "joint model training; the data stays in the gateway",
    ),
    "op_desc.monitor": (
        "贷后风险监测：约定的变化发生时推送预警，仅含变化类型与区间，每条预警均记入审计日志",
        "post-loan monitoring: an alert when an agreed change happens, kinds and bands "
        "only, each alert logged",
    ),
    # Actions
    "action.approve": ("同意授权", "Approve"),
    "action.reject": ("拒绝", "Reject"),
    "action.pause": ("暂停", "Pause"),
    "action.resume": ("恢复", "Resume"),
    "action.revoke": ("撤销", "Revoke"),
    "action.details": ("详情", "Details"),
    "action.suspend": ("暂停接入", "Suspend"),
    # Decisions (audit) and refusal reasons (CONTRACT.md codes)
    "decision.allowed": ("已允许", "Allowed"),
    "decision.refused": ("已拒绝", "Refused"),
    "decision.refused_any": ("已拒绝（任何原因）", "Refused (any reason)"),
    "decision.grant_missing": ("未提供授权", "No authorization given"),
    "decision.grant_invalid": ("授权无效", "Invalid authorization"),
    "decision.grant_wrong_audience": ("授权不属于该机构", "Authorization for another institution"),
    "decision.grant_expired": ("授权已过期", "Authorization expired"),
    "decision.grant_not_yet_valid": ("授权尚未生效", "Authorization not yet valid"),
    "decision.grant_revoked": ("授权已撤销", "Authorization revoked"),
    "decision.grant_paused": ("授权已暂停", "Authorization paused"),
    "decision.scope_operation": ("操作超出授权范围", "Operation outside the authorization"),
    "decision.scope_category": ("数据类别超出授权范围", "Data category outside the authorization"),
    "decision.grant_uses_exhausted": ("授权次数已用完", "Authorization uses exhausted"),
    "decision.institution_suspended": ("机构已被暂停", "Institution suspended"),
    "decision.verify_budget_exhausted": ("核验次数已用完", "Verification budget spent"),
    "decision.score_model_limit": (
        "该企业在授权期内评分所用模型数已达上限",
        "Models per enterprise in the authorization's period reached",
    ),
    # Visibility, units, keys
    "visibility.public": ("公开", "Public"),
    "visibility.non_public": ("非公开", "Non-public"),
    "visibility.restricted": ("受限（仅用于信用等级）", "Restricted (used only inside the grade)"),
    "unit.days": ("{n} 天", "{n} days"),
    "unit.cny": ("元", "CNY"),
    "unit.count": ("次", "times"),
    "unit.persons": ("人", "persons"),
    "unit.months": ("个月", "months"),
    "unit.kwh": ("千瓦时", "kWh"),
    "keypurpose.grants": ("授权签名", "Grants"),
    "keypurpose.tokens": ("访问令牌", "Access tokens"),
    "keypurpose.checkpoints": ("审计检查点", "Audit checkpoints"),
    "keypurpose.events": ("事件通知签名", "Webhook events"),
    "keypurpose.nodes": ("节点间认证签名", "Node assertions"),
    "keystate.signing": ("正在签名", "Signing"),
    "keystate.published": ("已轮换，仍公布", "Rotated, still published"),
    "keystate.unpublished": ("已停止公布", "No longer published"),
    # Table columns
    "col.action": ("操作", "Action"),
    "col.answer_by": ("答复期限", "Answer by"),
    "col.budget": ("核验额度", "Budget"),
    "col.budgets": ("核验额度（剩余/总数）", "Verification budgets (left/total)"),
    "col.catalog_name": ("目录名称", "Catalog name"),
    "col.categories": ("数据类别", "Data categories"),
    "col.category": ("数据类别", "Category"),
    "col.count": ("数量", "Count"),
    "col.created_at": ("创建时间", "Created"),
    "col.day": ("日期", "Day"),
    "col.decision": ("结果", "Decision"),
    "col.department": ("数据提供单位", "Department"),
    "col.enterprise": ("企业（统一社会信用代码）", "Enterprise (USCC)"),
    "col.expires": ("到期时间", "Expires"),
    "col.feature": ("数据项", "Feature"),
    "col.features": ("数据项", "Features"),
    "col.id": ("标识", "Id"),
    "col.index": ("序号", "Index"),
    "col.institution": ("机构", "Institution"),
    "col.key": ("公钥类型", "Public key"),
    "col.key_state": ("状态", "State"),
    "col.kid": ("密钥标识", "Key id"),
    "col.left": ("剩余", "Left"),
    "col.max_uses": ("次数上限", "Max uses"),
    "col.measure": ("指标", "Measure"),
    "col.name": ("名称", "Name"),
    "col.operation": ("操作", "Operation"),
    "col.operations": ("授权操作", "Operations"),
    "col.period": ("授权期限", "Period"),
    "col.proof": ("存证验证", "Proof"),
    "col.published_until": ("公布至", "Published until"),
    "col.purpose": ("用途", "Purpose"),
    "col.purpose_key": ("用途", "Purpose"),
    "col.reason": ("原因", "Reason"),
    "col.registered_at": ("登记时间", "Registered"),
    "col.requested_at": ("请求时间", "Requested"),
    "col.retired_at": ("轮换时间", "Rotated"),
    "col.status": ("状态", "Status"),
    "col.status_changed_at": ("状态变更时间", "Status changed"),
    "col.time": ("时间（北京时间）", "Time (UTC+8)"),
    "col.total": ("合计", "Total"),
    "col.used": ("已用", "Used"),
    "col.uses": ("使用次数", "Uses"),
    "col.uses_left": ("剩余次数", "Uses left"),
    "col.value": ("数值", "Value"),
    "col.visibility": ("公开性", "Visibility"),
    "col.webhook": ("事件通知地址", "Webhook URL"),
    "col.file": ("文件", "File"),
    "col.rows": ("行数", "Rows"),
    "col.loaded": ("已导入", "Loaded"),
    "col.rejected": ("被拒行数", "Rejected"),
    "col.line": ("行号", "Line"),
    "col.size": ("日志条数", "Log size"),
    "col.root": ("根哈希", "Root hash"),
    "col.witness": ("见证方", "Witness"),
    "col.model": ("模型", "Model"),
    "col.version": ("版本", "Version"),
    "col.gateway_features": ("网关特征", "Gateway features"),
    "col.bank_features": ("机构特征", "Institution features"),
    # Confirmation pages
    "confirm.what_stops": ("确认后停止的内容", "What stops"),
    "confirm.what_stays": ("不受影响的内容", "What stays"),
    "confirm.cancel": ("取消", "Cancel"),
    "title.confirm": ("请确认", "Please confirm"),
    "confirm.pause.heading": (
        "暂停对 {institution} 的授权？",
        "Pause the authorization for {institution}?",
    ),
    "confirm.pause.button": ("确认暂停", "Pause it"),
    "confirm.pause.stop1": (
        "从下一次请求起，{institution} 使用此授权的报告、核验、评分和训练请求都会被拒绝"
        "（原因：授权已暂停）。",
        "From the very next request, every report, verification, score or training request "
        "by {institution} under this authorization is refused (reason: authorization paused).",
    ),
    "confirm.pause.stop2": (
        "暂停期间不消耗使用次数。",
        "No uses are taken while it is paused.",
    ),
    "confirm.pause.stay1": (
        "您可以随时恢复；授权到期时间不变（{expires}）。",
        "You can resume it at any time; it still expires on {expires}.",
    ),
    "confirm.pause.stay2": (
        "已发生的访问记录保留在审计日志中。",
        "Accesses already made stay in the audit log.",
    ),
    "confirm.revoke.heading": (
        "撤销对 {institution} 的授权？",
        "Revoke the authorization for {institution}?",
    ),
    "confirm.revoke.button": ("确认撤销", "Revoke it"),
    "confirm.revoke.stop1": (
        "从下一次请求起，{institution} 使用此授权的所有请求都会被拒绝（原因：授权已撤销），"
        "在所有网关节点上立即生效。",
        "From the very next request, every request by {institution} under this authorization "
        "is refused (reason: authorization revoked), on every gateway worker at once.",
    ),
    "confirm.revoke.stop2": (
        "撤销不可恢复；如需再次授权，机构须重新提出请求。",
        "Revocation cannot be undone; to authorize again the institution must ask anew.",
    ),
    "confirm.revoke.stop3": (
        "剩余的 {left} 次使用和全部核验额度作废。",
        "The {left} remaining uses and all verification budgets lapse.",
    ),
    "confirm.revoke.stay1": (
        "机构会收到签名的状态变更通知；已发生的访问记录保留在审计日志中。",
        "The institution receives a signed status event; accesses already made stay in "
        "the audit log.",
    ),
    "confirm.resume.heading": (
        "恢复对 {institution} 的授权？",
        "Resume the authorization for {institution}?",
    ),
    "confirm.resume.button": ("确认恢复", "Resume it"),
    "confirm.resume.p1": (
        "恢复后，{institution} 可在原授权范围内继续使用：剩余 {left} 次，至 {expires} 为止。",
        "Once resumed, {institution} may use it again within its terms: {left} uses left, "
        "until {expires}.",
    ),
    "confirm.institution.suspend.heading": (
        "暂停接入机构 {party}？",
        "Suspend the institution {party}?",
    ),
    "confirm.institution.suspend.button": ("确认暂停接入", "Suspend it"),
    "confirm.institution.suspend.stop1": (
        "从下一次请求起，该机构的所有请求（令牌、授权请求、查询、核验、评分、训练）都会被拒绝"
        "（原因：机构已被暂停）。",
        "From the next request on, everything the institution asks (tokens, consent requests, "
        "reports, verifications, scores, training) is refused (reason: institution suspended).",
    ),
    "confirm.institution.suspend.stay1": (
        "机构的登记信息、公钥和企业授权都保留（有进有出，可随时恢复）。",
        "Its registration, public key and the enterprises' authorizations are kept "
        "(it can be resumed at any time).",
    ),
    "confirm.institution.resume.heading": (
        "恢复接入机构 {party}？",
        "Resume the institution {party}?",
    ),
    "confirm.institution.resume.button": ("确认恢复", "Resume it"),
    "confirm.institution.resume.p1": (
        "恢复后，该机构可在企业有效授权的范围内再次发起请求。",
        "Once resumed, the institution may ask again within the enterprises' valid authorizations.",
    ),
    "confirm.department.suspend.heading": (
        "暂停数据提供单位 {party}？",
        "Suspend the department {party}?",
    ),
    "confirm.department.suspend.button": ("确认暂停", "Suspend it"),
    "confirm.department.suspend.stop1": (
        "该单位人员无法再登录页面和会话接口。",
        "Its people can no longer sign in to the pages or the session API.",
    ),
    "confirm.department.suspend.stay1": (
        "已导入的数据和审计日志不受影响。",
        "Data already imported and the audit log are not affected.",
    ),
    "confirm.department.resume.heading": (
        "恢复数据提供单位 {party}？",
        "Resume the department {party}?",
    ),
    "confirm.department.resume.button": ("确认恢复", "Resume it"),
    "confirm.department.resume.p1": (
        "恢复后，该单位人员可以再次登录。",
        "Once resumed, its people can sign in again.",
    ),
    "confirm.rotate.heading": ("轮换{purpose}密钥？", "Rotate the {purpose} key?"),
    "confirm.rotate.button": ("确认轮换", "Rotate it"),
    "confirm.rotate.p1": (
        "将生成新的签名密钥并立即用于签名。旧密钥停止签名，但继续在 JWKS 中公布，"
        "直到它签过的内容全部过期（审计检查点密钥永久公布）。",
        "A new signing key is generated and signs from now on. The old key stops signing but "
        "stays in the JWKS until everything it signed has expired (checkpoint keys stay "
        "published for good).",
    ),
    # Enterprise pages
    "title.ent.requests": ("待处理的授权请求", "Pending authorization requests"),
    "ent.requests.intro": (
        "以下机构请求使用本企业的涉企信用信息。请阅读完整的授权书后再决定是否同意。",
        "These institutions ask to use your enterprise's credit information. Read the full "
        "authorization letter before you decide.",
    ),
    "ent.requests.caption": ("待处理请求（{n} 项）", "Pending requests ({n})"),
    "ent.requests.none": ("目前没有待处理的请求。", "There are no pending requests."),
    "ent.requests.read": ("阅读授权书并决定", "Read the letter and decide"),
    "title.ent.consent": ("授权详情", "Authorization details"),
    "ent.consent.terms": ("授权条款", "Terms"),
    "ent.consent.until": ("至 {date}", "until {date}"),
    "ent.consent.uses": (
        "已用 {used} 次，上限 {max} 次，剩余 {left} 次",
        "{used} used of {max}, {left} left",
    ),
    "ent.consent.budgets": ("核验额度（每个数据项）", "Verification budgets (per feature)"),
    "ent.consent.letter": ("授权书全文", "Full authorization letter"),
    "ent.consent.letter_language": (
        "授权书以中文为准，下面是您将同意的原文。",
        "The letter is binding in Chinese; below is the exact text you would accept.",
    ),
    "ent.consent.letter_hash": ("授权书摘要（写入授权凭证）", "Letter digest (in the grant)"),
    "ent.consent.decide": ("您的决定", "Your decision"),
    "ent.consent.accept": (
        "我已阅读并同意上述授权书的全部内容。",
        "I have read the authorization letter above and accept it in full.",
    ),
    "ent.consent.reject_hint": (
        "不同意？拒绝后该机构不能使用本企业数据，如需授权须重新提出请求。",
        "Do not agree? Once rejected the institution cannot use your data; it must ask again.",
    ),
    "ent.consent.change": ("更改授权", "Change this authorization"),
    "ent.consent.back": ("返回我的授权", "Back to my authorizations"),
    "title.ent.grants": ("我的授权", "My authorizations"),
    "ent.grants.intro": (
        "您给予各机构的授权：状态、到期时间、剩余次数和核验额度。暂停或撤销从下一次请求起生效。",
        "Your authorizations: status, expiry, uses left and verification budgets. Pausing "
        "or revoking takes effect from the next request.",
    ),
    "ent.grants.caption": ("授权（{n} 项）", "Authorizations ({n})"),
    "ent.grants.none": ("您还没有给予任何授权。", "You have not authorized anyone yet."),
    "title.ent.accesses": ("对本企业数据的每一次使用", "Every access to my data"),
    "ent.accesses.intro": (
        "以下记录来自不可篡改的审计日志：哪个机构、何时、做了什么、结果如何。点击“验证”，"
        "浏览器会自行重新计算默克尔证明，确认该记录确实在已签名的日志中。",
        "These records come from the tamper-evident audit log: which institution, when, "
        "what, and the decision. Press Verify and your browser recomputes the Merkle proof "
        "itself to confirm the record is in the signed log.",
    ),
    "ent.accesses.caption": ("审计记录（{n} 条）", "Audit records ({n})"),
    "ent.accesses.none": ("目前没有涉及本企业的记录。", "No records about your enterprise yet."),
    "ent.accesses.how": (
        "验证方法（RFC 9162）：叶哈希 = SHA-256(0x00‖记录的规范 JSON)，沿包含证明逐层计算，"
        "与检查点中的根哈希比较，并用日志公钥核对检查点签名。",
        "How it checks (RFC 9162): leaf = SHA-256(0x00 || canonical JSON of the record), "
        "hashed up the inclusion proof, compared with the checkpoint's root, and the "
        "checkpoint's signature checked with the log's public key.",
    ),
    "verify.button": ("验证", "Verify"),
    "verify.checking": ("正在浏览器中验证……", "Checking in your browser…"),
    "verify.ok": (
        "已验证：第 {index} 条记录包含在 {size} 条记录的日志中，"
        "浏览器重新计算的根哈希与检查点一致。",
        "Verified: record {index} is in the log of {size} records; the root your browser "
        "recomputed matches the checkpoint.",
    ),
    "verify.ok_signed": (
        "已验证：第 {index} 条记录包含在 {size} 条记录的日志中，"
        "浏览器重新计算的根哈希与检查点一致，检查点签名有效。",
        "Verified: record {index} is in the log of {size} records; the root your browser "
        "recomputed matches the checkpoint, and the checkpoint's signature is valid.",
    ),
    "verify.no_signature_check": (
        "（此浏览器不支持 Ed25519，未核对检查点签名。）",
        "(This browser has no Ed25519, so the checkpoint signature was not checked.)",
    ),
    "verify.bad_root": (
        "验证失败：重新计算的根哈希与检查点不一致！请联系数据提供单位。",
        "Verification FAILED: the recomputed root does not match the checkpoint! Tell the "
        "departments.",
    ),
    "verify.bad_leaf": (
        "验证失败：记录内容与日志中的叶哈希不一致！",
        "Verification FAILED: the record does not match its leaf hash in the log!",
    ),
    "verify.bad_signature": (
        "验证失败：检查点签名无效！",
        "Verification FAILED: the checkpoint signature is invalid!",
    ),
    "verify.not_yet": (
        "该记录尚未进入最新检查点（当前 {size} 条），请几秒后再试。",
        "This record is not in the newest checkpoint yet (size {size}); try again in a few "
        "seconds.",
    ),
    "verify.failed": ("无法完成验证", "Could not verify"),
    "title.ent.data": ("本企业在网关中的数据", "My data held by the gateway"),
    "ent.data.intro": (
        "网关持有的本企业全部数据（含非公开数据）。企业查询本企业信息免费。机构永远看不到非公开数据的原值。",
        "Everything the gateway holds about your enterprise, non-public data included. "
        "Enterprises query their own information free of charge. Institutions never see "
        "non-public values.",
    ),
    "ent.data.download_csv": ("下载 CSV", "Download CSV"),
    "ent.data.download_json": ("下载 JSON", "Download JSON"),
    "ent.data.caption": ("数据项（{n} 项）", "Features ({n})"),
    "ent.data.none": ("网关目前没有本企业的数据。", "The gateway holds no data about you yet."),
    # Department pages
    "title.dep.accesses": ("对本单位数据的访问", "Accesses to our data"),
    "dep.accesses.intro": (
        "审计日志中涉及{department}数据的每一条记录。只显示本单位的数据项，从不显示数据值。",
        "Every audit record that touched data of the {department}. Only your own features "
        "are shown, never values.",
    ),
    "dep.filter.title": ("筛选", "Filter"),
    "filter.all": ("全部", "All"),
    "filter.from": ("开始日期", "From"),
    "filter.to": ("结束日期", "To"),
    "filter.apply": ("筛选", "Apply"),
    "filter.reset": ("清除筛选", "Clear"),
    "filter.uscc_hint": ("18 位统一社会信用代码", "18-character USCC"),
    "dep.accesses.export": ("导出 CSV（当前筛选）", "Export CSV (this filter)"),
    "dep.accesses.counts": ("各机构访问次数", "Accesses per institution"),
    "dep.accesses.older": (
        "页面只统计最新的 {n} 条相关记录；更早的记录请用 CSV 导出。",
        "This page counts the newest {n} records only; export CSV for older ones.",
    ),
    "dep.accesses.none": ("没有符合条件的记录。", "No records match."),
    "dep.accesses.rows": ("访问记录（{n} 条）", "Access records ({n})"),
    "dep.accesses.truncated": (
        "仅显示最新的 {shown} 条，共 {total} 条；导出 CSV 可获得全部。",
        "Showing the newest {shown} of {total}; the CSV export has them all.",
    ),
    "title.dep.imports": ("数据导入历史", "Import history"),
    "dep.imports.intro": (
        "本单位每一次数据导入：全部成功或全部不导入；每一个错误行都有行号和原因。",
        "Every import of your data: all or nothing; every bad row with its line number and reason.",
    ),
    "dep.imports.none": ("还没有导入记录。", "No imports yet."),
    "dep.imports.rejects": ("被拒的行", "Rejected rows"),
    "dep.imports.caption": ("导入（{n} 次）", "Imports ({n})"),
    "dep.imports.loaded": ("已导入", "Loaded"),
    "dep.imports.refused": ("未导入", "Not loaded"),
    "title.dep.witness": ("审计日志见证状态", "Audit log witness status"),
    "dep.witness.intro": (
        "本单位作为见证方，核对日志的每个新检查点与上次见证的检查点一致（一致性证明）后联署。",
        "As a witness, your department checks each new checkpoint against the last one it "
        "cosigned (consistency proof) and then cosigns.",
    ),
    "dep.witness.alarm_title": (
        "警告：审计日志未通过一致性检查！",
        "WARNING: the audit log FAILED a consistency check!",
    ),
    "dep.witness.alarm_body": (
        "检查点 {size} 与本单位上次联署的检查点不一致，日志可能被改写或分叉。"
        "请立即上报，并保存两份检查点作为证据。",
        "Checkpoint {size} is not consistent with the one your department last cosigned: the "
        "log may have been rewritten or forked. Report it at once and keep both checkpoints "
        "as evidence.",
    ),
    "dep.witness.last": ("最近一次联署", "Last cosigned checkpoint"),
    "dep.witness.never": (
        "本单位尚未联署任何检查点。运行 xinyi audit witness 开始见证。",
        "Your department has not cosigned any checkpoint yet. Run xinyi audit witness to start.",
    ),
    "dep.witness.current": ("日志当前检查点", "The log's current checkpoint"),
    "dep.witness.behind": (
        "最近联署落后当前日志 {n} 条记录。",
        "The last cosignature is {n} records behind the log.",
    ),
    "dep.witness.failures": ("一致性检查失败记录", "Failed consistency checks"),
    "dep.witness.cosigned_at": ("联署时间", "Cosigned at"),
    # Operator pages
    "title.opr.institutions": ("接入机构", "Institutions"),
    "opr.institutions.intro": (
        "银行、担保、保险等接入机构。暂停后其所有请求立即被拒绝（有进有出）。",
        "Banks, guarantors and insurers. A suspended institution is refused everything from "
        "its next request on.",
    ),
    "opr.institutions.caption": ("已登记机构（{n} 家）", "Registered institutions ({n})"),
    "opr.institutions.none": ("还没有登记机构。", "No institutions yet."),
    "opr.institutions.add": ("登记新机构", "Register an institution"),
    "opr.institutions.add_submit": ("登记机构", "Register"),
    "opr.institutions.jwk": (
        "机构公钥（JWK，JSON 格式）",
        "The institution's public key (JWK, as JSON)",
    ),
    "opr.institutions.jwk_hint": (
        "Ed25519（OKP）或 P-256（EC）公钥，用于 private_key_jwt 客户端认证；不要粘贴私钥。",
        "An Ed25519 (OKP) or P-256 (EC) public key for private_key_jwt client "
        "authentication; never paste a private key.",
    ),
    "opr.institutions.id_hint": (
        "即 OAuth 客户端 ID：2–48 个小写字母、数字、下划线或连字符（-），以字母开头。",
        "The OAuth client id: 2–48 lowercase letters, digits, underscores or hyphens (-), "
        "starting with a letter.",
    ),
    "form.optional": ("可选", "optional"),
    "title.opr.departments": ("数据提供单位", "Data-providing departments"),
    "opr.departments.intro": (
        "提供数据的政府部门和单位。暂停后其人员无法登录。",
        "The government departments that supply data. A suspended department's people "
        "cannot sign in.",
    ),
    "opr.departments.caption": ("已登记单位（{n} 个）", "Registered departments ({n})"),
    "opr.departments.none": ("还没有登记单位。", "No departments yet."),
    "opr.departments.add": ("登记数据提供单位", "Register a department"),
    "opr.departments.add_submit": ("登记单位", "Register"),
    "opr.departments.id_hint": (
        "数据目录（config.yaml）中的单位标识。",
        "A department id from the data catalog (config.yaml).",
    ),
    "title.opr.keys": ("签名密钥", "Signing keys"),
    "opr.keys.intro": (
        "网关的 Ed25519 签名密钥：授权凭证、访问令牌和审计检查点各用一把。"
        "轮换后旧密钥继续公布，直至其签名内容过期。",
        "The gateway's Ed25519 signing keys, one per purpose: grants, access tokens and "
        "audit checkpoints. A rotated key stays published until what it signed has expired.",
    ),
    "opr.keys.caption": ("密钥（{n} 把）", "Keys ({n})"),
    "opr.keys.forever": ("永久", "for good"),
    "opr.keys.rotate": ("轮换密钥", "Rotate a key"),
    "opr.keys.rotate_intro": (
        "轮换会生成新密钥并立即用于签名，已签发的凭证仍然有效。",
        "Rotation makes a new key that signs from now on; what was already signed stays valid.",
    ),
    "opr.keys.rotate_one": ("轮换{purpose}密钥", "Rotate the {purpose} key"),
    "title.opr.models": ("联合模型", "Joint models"),
    "opr.models.intro": (
        "已登记的联合风控模型。网关只保存网关侧参数；机构侧特征由机构加密后提交。",
        "The registered joint risk models. Institutions submit their features encrypted; "
        "the gateway computes on ciphertexts only.",
    ),
    "opr.models.none": ("还没有登记模型。", "No models registered yet."),
    "opr.models.caption": ("模型（{n} 个）", "Models ({n})"),
    "opr.models.review_intro": (
        "机构训练的模型先处于待审核状态，运营方审核通过后才能用于评分。点击模型查看审核页。",
        "A model an institution trains is pending until the operator approves it; only "
        "approved models score. Open a model to review it.",
    ),
    "title.opr.model": ("模型审核", "Model review"),
    "opr.model.back": ("返回模型列表", "Back to the models"),
    "opr.model.registered_by": ("登记来源", "Registered by"),
    "opr.model.training_size": ("训练企业数", "Enterprises trained on"),
    "opr.model.not_trained": (
        "运营方导入，非联合训练",
        "Imported by the operator, not trained here",
    ),
    "opr.model.departments": ("使用哪些部门的数据", "Departments whose data it uses"),
    "opr.model.weights": ("权重摘要", "Weight summary"),
    "opr.model.weights_intro": (
        "网关侧权重决定一次零输入评分能透露多少：单个权重占比过大时，评分接近单个特征。",
        "The gateway weights decide what a zero-input score reveals: when one weight "
        "dominates, a score is close to a single feature.",
    ),
    "opr.model.gateway_l2": ("网关权重 L2 范数", "Gateway weights, L2 norm"),
    "opr.model.gateway_l1": ("网关权重 L1 范数", "Gateway weights, L1 norm"),
    "opr.model.bank_l2": ("机构权重 L2 范数", "Institution weights, L2 norm"),
    "opr.model.intercept": ("截距", "Intercept"),
    "opr.model.share_bound": ("网关分值的最大幅度", "Largest gateway share"),
    "opr.model.dominant": ("最大权重占比", "Share of the largest weight"),
    "opr.model.largest": ("绝对值最大的网关权重", "The largest gateway weights"),
    "opr.model.weight": ("权重", "Weight"),
    "opr.model.decide": ("审核决定", "Decision"),
    "opr.model.decide_intro": (
        "通过后，机构即可用该模型评分；拒绝后该版本永不使用。决定写入审计日志，不可更改。",
        "Once approved, institutions can score with this version; a rejected version is "
        "never used. The decision is written to the audit log and cannot be changed.",
    ),
    "opr.model.approve": ("通过，允许评分", "Approve for scoring"),
    "opr.model.reject": ("拒绝", "Reject"),
    "modelstatus.pending": ("待审核", "Pending review"),
    "modelstatus.approved": ("已通过", "Approved"),
    "modelstatus.rejected": ("已拒绝", "Rejected"),
    "col.owner": ("所有者", "Owner"),
    "notice.model_approved": (
        "模型 {model} 已通过审核（审计日志第 {index} 条）。",
        "Model {model} is approved (audit log entry {index}).",
    ),
    "notice.model_rejected": (
        "模型 {model} 已被拒绝（审计日志第 {index} 条）。",
        "Model {model} is rejected (audit log entry {index}).",
    ),
    "title.opr.stats": ("统计", "Statistics"),
    "opr.stats.intro": (
        "最近 {days} 天（{first} 至 {last}，北京时间）。图表下方可展开数据表。",
        "The last {days} days ({first} to {last}, UTC+8). Each chart has a data table below it.",
    ),
    "opr.stats.coverage": ("注册企业与授权企业", "Registered and authorizing enterprises"),
    "opr.stats.with_data": ("网关有数据的企业", "Enterprises with data held"),
    "opr.stats.registered": ("已注册企业", "Registered enterprises"),
    "opr.stats.authorizing": ("有有效授权的企业", "Enterprises with a grant in force"),
    "opr.stats.grants": ("各状态授权数量变化", "Grants by status over time"),
    "opr.stats.grants_caption": (
        "每天结束时处于各状态的授权数量",
        "Number of consents in each state at the end of each day",
    ),
    "opr.stats.accesses": ("数据访问", "Data accesses"),
    "opr.stats.accesses_caption": (
        "每天各数据提供单位被允许的数据访问次数",
        "Allowed data accesses per department and day",
    ),
    "opr.stats.accesses_total": (
        "各数据提供单位的访问总数（统计期内）",
        "Accesses per department (whole period)",
    ),
    "opr.stats.refusals": ("拒绝原因", "Refusals by reason"),
    "opr.stats.refusals_caption": (
        "审计日志中被拒绝请求的原因分布",
        "Reasons of refused requests in the audit log",
    ),
    # Objections (异议, JS 14)
    "nav.ent_objections": ("我的异议", "My objections"),
    "nav.dep_objections": ("异议处理", "Objections"),
    "nav.opr_objections": ("异议督办", "Objections and repairs"),
    "title.ent.objections": ("本企业提出的异议", "My objections"),
    "title.ent.objection_new": ("对本企业数据提出异议", "Object to my data"),
    "title.dep.objections": ("对本单位数据的异议", "Objections to our data"),
    "title.opr.objections": ("全部异议与信用修复申请", "All objections and repair applications"),
    "ent.objections.intro": (
        "认为网关中本企业的某项数据有误时，可以提出异议。异议转交提供该数据的单位，"
        "在规定的工作日内处理（更正或驳回并说明理由）。",
        "If a value the gateway holds about your enterprise is wrong, object to it. The "
        "objection goes to the department that supplies the value, which decides it within "
        "the set working days (corrects it, or rejects the objection with a reason).",
    ),
    "ent.objections.new": ("提出异议", "File an objection"),
    "ent.objections.caption": ("异议（{n} 件）", "Objections ({n})"),
    "ent.objections.none": ("尚未提出异议。", "You have filed no objection."),
    "ent.objection_new.intro": (
        "请选择有误的数据项并说明理由。提供该数据的单位将在 {days} 个工作日内处理"
        "（按国务院公布的节假日和调休安排计算，提交当日不计）。处理期间，使用该数据项的"
        "每一个答复都会标注“有异议”。",
        "Choose the wrong feature and say why. The department that supplies it decides "
        "within {days} working days (on the State Council's holiday and make-up working "
        "day calendar; the day you file does not count). Meanwhile every answer that uses "
        "the feature is marked as disputed.",
    ),
    "ent.objection_new.claim": ("异议理由", "Your claim"),
    "ent.objection_new.attachment": (
        "证明材料（可选，PDF、PNG 或 JPEG，不超过 {mb} MB）",
        "Evidence (optional: PDF, PNG or JPEG, at most {mb} MB)",
    ),
    "objection.attachment": ("附件", "Attachment"),
    "ent.objection_new.submit": ("提交异议", "Submit the objection"),
    "ent.data.object": ("提出异议", "Object"),
    "ent.data.disputed": ("异议处理中", "Under objection"),
    "col.objection": ("异议", "Objection"),
    "objection.cancel": ("取消", "Cancel"),
    "objection.overdue": ("已逾期", "Overdue"),
    "objstatus.open": ("处理中", "Open"),
    "objstatus.corrected": ("已更正", "Corrected"),
    "objstatus.rejected": ("已驳回", "Rejected"),
    "col.filed_at": ("提出时间", "Filed"),
    "col.claim": ("异议理由", "Claim"),
    "col.due": ("处理期限", "Due"),
    "col.resolution": ("处理结果", "Resolution"),
    "dep.objections.intro": (
        "企业对本单位提供的数据提出的异议，按处理期限排列。更正时填写正确的值：它作为该数据项"
        "的新版本保存，来源注明该异议；曾使用旧值的机构会收到更正通知（不含数值）。驳回时请"
        "说明理由。",
        "Objections to the data your department supplies, earliest due first. To correct, "
        "enter the right value: it is stored as a new version of the feature whose "
        "provenance names the objection, and institutions that used the old value are told "
        "(never the value). To reject, give the reason.",
    ),
    "dep.objections.open_caption": ("待处理的异议（{n} 件）", "Open objections ({n})"),
    "dep.objections.decided_caption": ("已处理的异议（{n} 件）", "Decided objections ({n})"),
    "dep.objections.none_open": ("没有待处理的异议。", "No open objection."),
    "dep.objections.value": ("更正后的值（仅更正时填写）", "Corrected value (a correction only)"),
    "dep.objections.decide": ("提交处理结果", "Submit the decision"),
    "opr.objections.intro": (
        "平台上的全部异议。逾期未处理的排在最前并标注。",
        "Every objection on the platform. Overdue open ones come first, flagged.",
    ),
    "opr.objections.caption": ("异议（{n} 件）", "Objections ({n})"),
    "opr.objections.overdue_open": (
        "{n} 件异议已超过处理期限仍未处理。",
        "{n} objections are past their due date and still open.",
    ),
    "opr.objections.none": ("平台上还没有异议。", "No objection on the platform yet."),
    "opr.repairs.caption": ("信用修复申请（{n} 件）", "Credit repair applications ({n})"),
    "notice.objection_filed": (
        "异议已提交，处理期限为 {due}。",
        "Objection filed; it is due by {due}.",
    ),
    "notice.objection_corrected": (
        "已更正：新值已作为新版本保存，并已通知曾使用旧值的机构。",
        "Corrected: the new value is stored as a new version and the institutions that used "
        "the old value are told.",
    ),
    "notice.objection_rejected": ("已驳回该异议。", "Objection rejected."),
    # Credit repair (信用修复; AH 10, YX 四(四)四)
    "nav.ent_repairs": ("信用修复", "Credit repair"),
    "nav.dep_repairs": ("信用修复申请", "Repair applications"),
    "title.ent.repairs": ("信用修复", "Credit repair"),
    "title.dep.repairs": ("信用修复申请", "Credit repair applications"),
    "ent.repairs.intro": (
        "已改正失信或违法行为的企业，可以申请修复相应的失信或行政处罚记录。申请转交提供该记录的"
        "单位，在 {days} 个工作日内处理。修复后，该记录在报告中标注“已修复”，并通知持有本企业"
        "有效授权的机构。",
        "An enterprise that has put right a dishonesty or an offence may apply to repair "
        "the record. The application goes to the department that supplies it, which decides "
        "within {days} working days. A repaired record shows as repaired in reports, and the "
        "institutions holding an active authorization from you are told.",
    ),
    "ent.repairs.reminder": (
        "信用修复提醒：“{record}”有记录，可申请信用修复。",
        "Credit repair reminder: “{record}” holds a record you may apply to repair.",
    ),
    "ent.repairs.reason": ("申请理由", "Grounds"),
    "ent.repairs.submit": ("提交修复申请", "Apply for repair"),
    "ent.repairs.caption": ("修复申请（{n} 件）", "Repair applications ({n})"),
    "ent.repairs.none": ("尚未申请信用修复。", "You have made no repair application."),
    "col.record": ("记录", "Record"),
    "repstatus.open": ("处理中", "Open"),
    "repstatus.repaired": ("已修复", "Repaired"),
    "repstatus.rejected": ("不予修复", "Rejected"),
    "dep.repairs.intro": (
        "企业对本单位提供的失信或处罚记录提出的信用修复申请，按处理期限排列。",
        "Applications to repair the dishonesty and penalty records your department "
        "supplies, earliest due first.",
    ),
    "dep.repairs.open_caption": ("待处理的申请（{n} 件）", "Open applications ({n})"),
    "dep.repairs.decided_caption": ("已处理的申请（{n} 件）", "Decided applications ({n})"),
    "dep.repairs.none_open": ("没有待处理的修复申请。", "No open application."),
    "notice.repair_filed": (
        "修复申请已提交，处理期限为 {due}。",
        "Application filed; it is due by {due}.",
    ),
    "notice.repair_repaired": (
        "已修复：该记录标注为已修复，并已通知持有有效授权的机构。",
        "Repaired: the record is marked repaired and institutions with an active "
        "authorization are told.",
    ),
    "notice.repair_rejected": ("已决定不予修复。", "Application rejected."),
    "stats.as_table": ("以表格查看数据", "Show the numbers as a table"),
    # --- accounts: sign-up, real name, invitations ---
    "login.signup": ("还没有账号？企业注册", "No account yet? Enterprise sign-up"),
    "nav.account": ("账号与实名", "Account and real name"),
    "title.signup": ("企业注册", "Enterprise sign-up"),
    "title.signed_up": ("注册完成", "Signed up"),
    "title.invite": ("加入企业账号", "Join your enterprise"),
    "title.account": ("账号与实名认证", "Account and real-name verification"),
    "signup.intro": (
        "注册本企业的管理员账号。填写与市场监管登记一致的法定代表人姓名和身份证号即可完成实名认证；"
        "身份证号只用于比对，不会保存。"
        "每个统一社会信用代码只能自助注册一个管理员账号，其他同事由管理员邀请。",
        "Register your enterprise's administrator account. The legal representative's name "
        "and id number as registered with market regulation verify the real name; the id "
        "number is only compared, never kept. Each USCC has one self-registered "
        "administrator; colleagues are invited by it.",
    ),
    "signup.uscc": ("统一社会信用代码", "Unified social credit code (USCC)"),
    "signup.legal_representative": ("法定代表人姓名", "Legal representative's name"),
    "signup.legal_representative_id": ("法定代表人身份证号", "Legal representative's id number"),
    "signup.id_hint": (
        "18位居民身份证号码，末位可为X。",
        "The 18-character resident identity number; the last may be X.",
    ),
    "signup.password2": ("再次输入密码", "Password again"),
    "signup.submit": ("注册", "Sign up"),
    "signup.have_account": ("已有账号？登录", "Have an account? Sign in"),
    "signup.password_mismatch": ("两次输入的密码不一致。", "The two passwords differ."),
    "signup.already_registered": (
        "该企业已有管理员账号，请联系管理员邀请您加入。",
        "This enterprise already has an administrator account; ask it to invite you.",
    ),
    "signup.login_taken": ("该账号名已被使用，请换一个。", "That login is taken; choose another."),
    "signup.rate_limited": (
        "来自您网络地址的注册过于频繁，请稍后再试。",
        "Too many sign-ups from your address; try again later.",
    ),
    "signup.bad_id": (
        "身份证号格式不正确（应为18位，校验位正确）。",
        "The id number is not valid (18 characters with a correct check character).",
    ),
    "signup.bad_uscc": (
        "统一社会信用代码不正确（GB 32100-2015）。",
        "The USCC is not valid (GB 32100-2015).",
    ),
    "signup.done": ("账号 {login} 已注册。", "Account {login} is registered."),
    "signup.real_name_yes": (
        "实名认证已通过：可以授权机构使用本企业数据。",
        "Real name verified: you can authorize institutions.",
    ),
    "signup.real_name_no": (
        "实名认证未通过：法定代表人信息与登记不一致。"
        "您可以浏览，但授权前请登录后在“账号与实名”中重新认证。",
        "Real name not verified: the legal representative does not match the registration. "
        "You can browse; to authorize, sign in and verify again under Account and real name.",
    ),
    "invite.intro": (
        "您被邀请加入企业账号。请设置您的账号名和密码。",
        "You are invited to your enterprise's account. Choose your login and password.",
    ),
    "invite.submit": ("加入", "Join"),
    "invite.unusable": (
        "该邀请已使用或已过期，请向管理员索取新的邀请。",
        "This invitation was used or has expired; ask the administrator for a new one.",
    ),
    "account.real_name": ("实名认证", "Real name"),
    "account.status": ("状态", "Status"),
    "account.verified": ("已实名", "Verified"),
    "account.unverified": ("未实名", "Not verified"),
    "account.unverified_intro": (
        "未实名的账号可以浏览公开信息，但不能查看本企业数据，也不能授权。",
        "An account without a verified real name can browse public pages, but neither "
        "sees the enterprise's data nor authorizes.",
    ),
    "account.attempts_left": ("还可尝试 {n} 次。", "{n} attempts left."),
    "account.verify": ("重新认证", "Verify again"),
    "account.exhausted": (
        "实名认证尝试次数已用完，请联系平台运营方线下核验。",
        "No real-name attempts left; ask the platform operator to verify offline.",
    ),
    "account.not_admin": (
        "实名认证由本企业的管理员账号完成。",
        "The enterprise's administrator verifies the real name.",
    ),
    "account.colleagues": ("邀请同事", "Invite colleagues"),
    "account.invite_intro": (
        "生成一次性邀请链接发给同事，链接有效期内只能使用一次。",
        "Create a single-use link for a colleague; it works once, until it expires.",
    ),
    "account.invite": ("生成邀请链接", "Create an invitation link"),
    "account.new_link": ("邀请链接（仅显示这一次）：", "Invitation link (shown this once):"),
    "account.created": ("创建时间", "Created"),
    "account.expires": ("有效期至", "Expires"),
    "account.used_by": ("使用者", "Used by"),
    "notice.real_name_required": (
        "请先完成实名认证。",
        "Verify your real name first.",
    ),
    "notice.real_name_verified": ("实名认证已通过。", "Real name verified."),
    "notice.real_name_mismatch": (
        "法定代表人信息与登记不一致，认证未通过。",
        "The legal representative does not match the registration; not verified.",
    ),
    "error.real_name_required": (
        "未实名的账号不能进行此操作，请先完成实名认证。",
        "An account without a verified real name cannot do this; verify it first.",
    ),
    "opr.stats.market": ("市场主体（登记数据）", "Market entities (registration data)"),
    "opr.stats.real_name": ("已实名企业", "Real-name enterprises"),
    "opr.stats.share_of_market": (
        "{measure}占市场主体比例",
        "{measure} as a share of market entities",
    ),
    "opr.stats.target": ("目标 {target}%", "target {target}%"),
    "opr.stats.targets_note": (
        "目标：平台注册、实名认证、授权查询企业占全市注册企业数（含个体户）"
        "分别达到50%、30%、30%（江阴方案 二(一)）。",
        "Targets: registered, real-name and authorizing enterprises reach 50 %, 30 % and "
        "30 % of the city's registered enterprises, sole proprietors included (Jiangyin "
        "plan, section 2(1)).",
    ),
    "opr.stats.caliber": (
        "口径同月度统计（{month}）：截至月末（北京时间，不含次月1日0时）。",
        "Same caliber as the month's statistics ({month}): as of the month's end "
        "(China Standard Time, before 00:00 on the 1st of the next month).",
    ),
    # --- financing: product supermarket, applications, bank console, month's figures ---
    "title.bank.inbox": ("融资申请", "Applications"),
    "title.bank.application": ("融资申请详情", "Application"),
    "title.bank.products": ("金融产品管理", "Products"),
    "title.fin.products": ("金融产品超市", "Financial product supermarket"),
    "title.fin.apply": ("申请融资", "Apply"),
    "title.fin.applications": ("我的融资申请", "My applications"),
    "title.opr.financing": ("融资统计（月度）", "Financing statistics (monthly)"),
    "nav.bank_inbox": ("融资申请", "Applications"),
    "nav.bank_products": ("产品管理", "Products"),
    "nav.bank_needs": ("融资需求", "Financing needs"),
    "title.bank.needs": ("企业融资需求", "Financing needs"),
    "bank.needs.intro": (
        "企业发布的融资需求。以本机构的产品回应后，将生成一笔待企业授权的申请。",
        "Needs enterprises published. Answering with one of this institution's products "
        "opens an application awaiting the enterprise's consent.",
    ),
    "bank.needs.none": ("暂无待回应的融资需求。", "No open financing need."),
    "bank.needs.answer": ("以该产品回应", "Answer with this product"),
    "bank.needs.no_products": (
        "本机构没有在架产品，无法回应。",
        "This institution has no active product to answer with.",
    ),
    "bank.need.answered": (
        "已回应：申请待企业授权。",
        "Answered: the application awaits the enterprise's consent.",
    ),
    "bank.need.refused": ("未能回应：{message}", "Not answered: {message}"),
    "fin.need.title": ("发布融资需求", "Publish a financing need"),
    "fin.need.intro": (
        "说明金额、期限和用途，金融机构可以用其产品回应；回应后仍需您同意授权。",
        "State the amount, term and use; institutions may answer with a product, which "
        "still needs your consent.",
    ),
    "fin.need.use": ("资金用途", "Use of funds"),
    "fin.need.publish": ("发布", "Publish"),
    "fin.need.published": ("融资需求已发布。", "The financing need is published."),
    "fin.need.refused": ("未能发布：{message}", "Not published: {message}"),
    "fin.need.mine": ("我发布的融资需求", "My financing needs"),
    "fin.need.status.open": ("待回应", "Open"),
    "fin.need.status.closed": ("已回应", "Answered"),
    "nav.fin_products": ("金融产品超市", "Product supermarket"),
    "nav.fin_applications": ("我的融资申请", "My applications"),
    "nav.opr_financing": ("融资统计", "Financing statistics"),
    "bank.inbox.intro": (
        "向本机构产品提出的融资申请。企业同意授权后申请才会提交，"
        "报告只能在该申请的授权范围内读取。",
        "Applications to this institution's products. An application is submitted once the "
        "enterprise approves its consent; its report is read only under that consent.",
    ),
    "bank.inbox.caption": ("共 {n} 笔申请", "{n} applications"),
    "bank.inbox.none": ("暂无融资申请。", "No applications yet."),
    "bank.app.terms": ("申请信息", "Application"),
    "bank.report.title": ("授权报告（分档）", "Banded report under the grant"),
    "bank.report.hint": (
        "读取报告会使用该申请授权的一次次数，并以您的登录名记入审计日志；只显示分档，不显示原始数据。",
        "Reading the report takes one use of this application's grant and is logged in the "
        "audit log under your login; bands only, never raw values.",
    ),
    "bank.report.no_grade": (
        "该产品的授权不含“信用等级”操作，因此不显示信用等级。",
        "This product's consent does not name the grade operation: no credit grade is shown.",
    ),
    "bank.report.indicators": ("各指标等级", "Indicator letters"),
    "bank.report.grade_refused": (
        "信用等级未能读取：{code}",
        "The credit grade could not be read: {code}",
    ),
    "bank.report.read": ("读取授权报告", "Read the report"),
    "bank.report.caption": ("审计日志第 {index} 条", "Audit log entry #{index}"),
    "bank.report.band": ("区间", "Band"),
    "bank.report.disputed": ("异议处理中", "Under objection"),
    "bank.report.empty": ("暂无可显示的分档数据。", "No banded data to show."),
    "bank.report.awaiting": (
        "企业尚未同意授权。",
        "The enterprise has not approved the consent yet.",
    ),
    "bank.report.refused": ("报告读取被拒绝：{code}", "The report was refused: {code}"),
    "bank.outcome.title": ("审批结果", "Outcome"),
    "bank.outcome.decision": ("审批结论", "Decision"),
    "bank.outcome.record": ("提交审批结果", "Record the outcome"),
    "bank.outcome.recorded": ("审批结果已记录。", "The outcome is recorded."),
    "bank.outcome.refused": ("未能记录：{message}", "Not recorded: {message}"),
    "bank.repayment.report": ("报送还款状态", "Report repayment status"),
    "bank.products.intro": (
        "本机构在金融产品超市发布的产品。下架后不再展示，已有申请仍保留。",
        "This institution's products in the supermarket. A withdrawn product is no longer "
        "listed; past applications keep it.",
    ),
    "bank.products.publish": ("发布产品", "Publish a product"),
    "bank.products.publish_button": ("发布", "Publish"),
    "bank.product.published": ("产品已发布。", "The product is published."),
    "bank.product.withdrawn": ("产品已下架。", "The product is withdrawn."),
    "bank.product.refused": ("未能保存：{message}", "Not saved: {message}"),
    "fin.all": ("全部", "All"),
    "fin.any_grade": ("不限", "Any"),
    "fin.grade.top": ("高级", "Top grade"),
    "fin.grade.first": ("一级", "First grade"),
    "fin.grade.candidate": ("备选", "Candidate grade"),
    "fin.yes": ("是", "Yes"),
    "fin.no": ("否", "No"),
    "fin.apply": ("申请", "Apply"),
    "fin.withdraw": ("下架", "Withdraw"),
    "fin.withdrawn": ("已下架", "Withdrawn"),
    "fin.filter.invalid": ("筛选条件有误，已显示全部产品。", "Invalid filter: all products shown."),
    "fin.products.intro": (
        "各金融机构发布的融资产品。按额度、期限、利率和信用等级筛选；"
        "申请时需阅读并同意产品所需的授权书。",
        "Financing products published by institutions. Filter by amount, term, rate and "
        "grade; applying means reading and accepting the authorization the product needs.",
    ),
    "fin.products.caption": ("共 {n} 个产品", "{n} products"),
    "fin.products.none": ("没有符合条件的产品。", "No product matches."),
    "fin.apply.hint": (
        "提交后将生成授权申请，请阅读授权书并同意，申请才会提交给该机构。",
        "Submitting creates a consent request: read the authorization letter and approve "
        "it to submit the application to the institution.",
    ),
    "fin.apply.submit": ("提交申请", "Apply"),
    "fin.apply.letter": (
        "申请已创建：请阅读下面的授权书并同意，申请才会提交。",
        "Application created: read the authorization letter below and approve it to submit.",
    ),
    "fin.apply.refused": ("未能申请：{message}", "Not applied: {message}"),
    "fin.applications.intro": (
        "您向金融机构提出的融资申请及其进度。",
        "Your applications and where they stand.",
    ),
    "fin.applications.to_products": ("前往金融产品超市", "Go to the product supermarket"),
    "fin.applications.letter": ("查看授权书", "Authorization letter"),
    "fin.applications.none": ("您还没有融资申请。", "You have no application yet."),
    "fin.col.application": ("申请编号", "Application"),
    "fin.col.product": ("产品", "Product"),
    "fin.col.kind": ("产品类型", "Kind"),
    "fin.col.amount": ("金额（元）", "Amount (CNY)"),
    "fin.col.amount_min": ("最低额度（元）", "Minimum amount (CNY)"),
    "fin.col.amount_max": ("最高额度（元）", "Maximum amount (CNY)"),
    "fin.col.amount_range": ("额度（元）", "Amount (CNY)"),
    "fin.col.rate": ("年利率（%）", "Rate (% a year)"),
    "fin.col.rate_min": ("最低年利率（%）", "Lowest rate (% a year)"),
    "fin.col.rate_max": ("最高年利率（%）", "Highest rate (% a year)"),
    "fin.col.rate_range": ("年利率（%）", "Rate (% a year)"),
    "fin.col.term": ("期限（月）", "Term (months)"),
    "fin.col.term_max": ("最长期限（月）", "Longest term (months)"),
    "fin.col.grade": ("信用等级", "Credit grade"),
    "fin.col.min_grade": ("最低信用等级", "Minimum grade"),
    "fin.col.action": ("操作", "Action"),
    "fin.col.consent": ("授权", "Consent"),
    "fin.col.credit_line": ("授信额度（元）", "Credit line (CNY)"),
    "fin.col.disbursed": ("放款金额（元）", "Disbursed (CNY)"),
    "fin.col.credit_loan": ("信用贷款", "Credit loan"),
    "fin.col.first_loan": ("首贷", "First loan"),
    "fin.col.reason": ("拒绝原因", "Decline reason"),
    "fin.col.repayment": ("还款状态", "Repayment"),
    "fin.status.awaiting_consent": ("待企业授权", "Awaiting consent"),
    "fin.status.submitted": ("已提交", "Submitted"),
    "fin.status.approved": ("已获批", "Approved"),
    "fin.status.declined": ("未获批", "Declined"),
    "fin.status.withdrawn": ("已撤回", "Withdrawn"),
    # --- polish: withdrawing an application, the operator's all-applications view ---
    "fin.withdraw.button": ("撤回申请", "Withdraw the application"),
    "fin.withdraw.hint": (
        "撤回后机构不再处理本申请；授权书请在“我的授权”中另行撤销。",
        "The institution no longer handles it; revoke the authorization itself under "
        "My authorizations.",
    ),
    "fin.withdraw.done": ("申请已撤回。", "The application was withdrawn."),
    "fin.withdraw.refused": ("未能撤回：{message}", "Not withdrawn: {message}"),
    "title.opr.applications": ("全部融资申请", "All applications"),
    "nav.opr_applications": ("融资申请", "Applications"),
    "opr.apps.intro": (
        "平台上的全部融资申请，按月份、状态、机构、地区（统一社会信用代码第3–8位）筛选。",
        "Every application on the platform, filtered by month, status, institution and "
        "region (USCC digits 3-8).",
    ),
    "opr.fin.authorized_in_month": ("当月授权企业", "Enterprises authorizing it this month"),
    "opr.apps.month": ("申请月份", "Month filed"),
    "opr.apps.region": ("地区代码", "Region code"),
    "opr.apps.caption": ("第 {page} 页，{n} 条", "Page {page}, {n} shown"),
    "opr.apps.none": ("没有符合条件的申请。", "No application matches."),
    "opr.apps.pages": ("翻页", "Pages"),
    "opr.apps.prev": ("上一页", "Previous page"),
    "opr.apps.next": ("下一页", "Next page"),
    "fin.kind.credit": ("信用贷款", "Credit loan"),
    "fin.kind.guarantee": ("担保贷款", "Guaranteed loan"),
    "fin.kind.pledge": ("质押贷款", "Pledge loan"),
    "fin.kind.mortgage": ("抵押贷款", "Mortgage loan"),
    "fin.kind.supply_chain": ("供应链金融", "Supply-chain finance"),
    "fin.kind.policy": ("政策性贷款", "Policy loan"),
    "fin.reason.insufficient_credit": ("信用状况不足", "Insufficient credit"),
    "fin.reason.insufficient_repayment_capacity": (
        "还款能力不足",
        "Insufficient repayment capacity",
    ),
    "fin.reason.incomplete_materials": ("材料不全", "Incomplete materials"),
    "fin.reason.outside_policy": ("不符合信贷政策", "Outside the credit policy"),
    "fin.reason.amount_exceeds_limit": ("申请金额超出可批额度", "Amount exceeds the limit"),
    "fin.reason.withdrawn_by_bank_review": ("复核未通过", "Failed the bank's review"),
    "fin.reason.other": ("其他", "Other"),
    "fin.repayment.normal": ("正常", "Normal"),
    "fin.repayment.overdue": ("逾期", "Overdue"),
    "fin.repayment.settled": ("已结清", "Settled"),
    "fin.repayment.written_off": ("已核销", "Written off"),
    "opr.fin.month": ("月份", "Month"),
    "opr.fin.caliber": (
        "按国家和省“信易贷”统计口径（江阴方案 三(三)3）：存量指标截至月末，"
        "流量指标为当月；均由记录实时汇总。",
        "National caliber (Jiangyin plan, section 3(3)3): stock figures as of the month's "
        "end, flow figures of the month; all aggregated from the records on each view.",
    ),
    "opr.fin.figures": ("{month} 融资统计", "Financing in {month}"),
    "opr.fin.registered": ("注册企业", "Registered enterprises"),
    "opr.fin.real_name": ("实名认证企业", "Real-name enterprises"),
    "opr.fin.authorizing": ("授权企业", "Authorizing enterprises"),
    "opr.fin.market_entities": ("市场主体", "Market entities"),
    "opr.fin.applications": ("融资申请（笔）", "Applications"),
    "opr.fin.approved": ("获批（笔）", "Approved"),
    "opr.fin.credit_lines": ("授信额度（元）", "Credit lines (CNY)"),
    "opr.fin.disbursed": ("放贷金额（元）", "Disbursed (CNY)"),
    "opr.fin.credit_loan_disbursed": ("信用贷款放款（元）", "Credit loans disbursed (CNY)"),
    "opr.fin.credit_loan_share": ("信用贷款占比", "Credit-loan share"),
    "opr.fin.first_loans": ("首贷户", "First-loan borrowers"),
    "opr.fin.weighted_rate": ("加权平均利率（%）", "Weighted average rate (%)"),
    "opr.fin.shares": ("占市场主体比例（%）", "Share of market entities (%)"),
    "opr.fin.share.registered": ("注册企业占比", "Registered share"),
    "opr.fin.share.real_name": ("实名认证企业占比", "Real-name share"),
    "opr.fin.share.authorizing": ("授权企业占比", "Authorizing share"),
    "opr.fin.disbursed_by_region": ("各地区放贷金额（元）", "Disbursed by division (CNY)"),
    "opr.fin.region": ("行政区划代码", "Division code"),
    "opr.fin.by_institution": ("各金融机构", "By institution"),
    "opr.fin.efficacy": ("数据使用成效", "What each department's data achieved"),
    "opr.fin.efficacy_hint": (
        "当月获批贷款中，审批时在该申请授权下使用了该单位数据的笔数与金额（江阴方案 三(二)2）。",
        "Loans approved this month whose decision used the department's data under the "
        "application's grant, and their amount (Jiangyin plan, section 3(2)2).",
    ),
    "opr.fin.loans": ("贷款笔数", "Loans"),
    # Credit grades (信用等级, JY 附件2; gateway/web/grades.py)
    "op_desc.grade": (
        "查询信用等级（高级、一级或备选）与各指标字母，不含任何数值",
        "the credit grade (senior, first or alternate) and each indicator's letter, no values",
    ),
    "nav.ent_grade": ("信用等级", "Credit grade"),
    "title.ent.grade": ("本企业的信用等级", "My credit grade"),
    "ent.grade.intro": (
        "平台每月按《江阴市企业信用评价指引》附件2评定企业信用等级。本页免费显示本企业的等级、"
        "每项指标的评定结果与理由，以及如何提升。金融机构只有在您授权“查询信用等级”后才能看到"
        "等级和各指标字母，看不到任何数值。",
        "Each month the platform grades every enterprise by the Jiangyin guide (Annex 2). "
        "This page shows your grade free of charge, each indicator's letter and why, and how "
        "to raise it. An institution sees the grade and the letters only after you authorize "
        "it to read your grade, and never any value.",
    ),
    "ent.grade.heading": ("{month} 信用等级", "Credit grade for {month}"),
    "ent.grade.method": ("评定方法：{method}", "method: {method}"),
    "ent.grade.disputed": (
        "本等级使用的 {n} 项数据有尚未处理的异议。",
        "{n} data items this grade used are under an open objection.",
    ),
    "ent.grade.caption": ("各项指标的评定", "Each indicator"),
    "ent.grade.no_letter": ("不参与评价", "not used"),
    "ent.grade.raise_heading": ("如何提升信用等级", "How to raise the grade"),
    "ent.grade.raise_none": ("已是最高等级。", "This is already the highest grade."),
    "ent.grade.missing.grades_not_computed": (
        "尚未评定信用等级：平台按月评定，请下月再查看。",
        "No grade has been computed yet: the platform grades monthly; please check next month.",
    ),
    "ent.grade.missing.enterprise_not_graded": (
        "本企业在该月未参与评定（平台尚无本企业的登记信息）。",
        "Your enterprise was not graded that month (the platform holds no registration for it).",
    ),
    "ent.grade.missing.invalid_month": (
        "月份格式应为 YYYY-MM。",
        "The month must be written YYYY-MM.",
    ),
    "ent.grade.recommend_heading": ("白名单推荐", "Whitelist recommendation"),
    "ent.grade.recommend_intro": (
        "同意后，本企业评为高级或一级的月份将列入向金融机构推荐的白名单（名称、等级、行业、"
        "地区）；每次被机构查看都会记入您的数据使用记录。可随时取消。",
        "When you agree, each month you are graded senior or first you are listed on the "
        "whitelist recommended to institutions (name, grade, industry, region); every "
        "institution that reads it is recorded in your access log. You may withdraw at any "
        "time.",
    ),
    "ent.grade.recommended_since": ("已同意推荐（{at}）。", "Recommended since {at}."),
    "ent.grade.not_recommended_since": ("已取消推荐（{at}）。", "Not recommended since {at}."),
    "ent.grade.never_chosen": ("尚未同意推荐。", "You have not agreed to be recommended."),
    "ent.grade.recommend_on": ("同意列入白名单推荐", "Agree to be recommended"),
    "ent.grade.recommend_off": ("取消白名单推荐", "Withdraw from the whitelist"),
    "notice.grade_recommended": ("已同意白名单推荐。", "You are now recommended."),
    "notice.grade_not_recommended": ("已取消白名单推荐。", "You are no longer recommended."),
    "col.indicator": ("指标", "Indicator"),
    "col.letter": ("结果", "Letter"),
    "grade.高级": ("高级", "Senior"),
    "grade.一级": ("一级", "First"),
    "grade.备选": ("备选", "Alternate"),
    "grade.不予认证": ("不予认证", "Not certified"),
    "grade.不在认证范围": ("不在认证范围", "Out of scope"),
    "grade_method.indicator": ("指标评定法", "indicator method"),
    "grade_method.direct": ("直接认定法", "direct method"),
    "grade_method.score": ("百分制评分法", "100-point method"),
    "grade_method.filter": ("严重失信筛除", "serious dishonesty filter"),
}

_INDEX = {lang: i for i, lang in enumerate(LANGS)}


def normalize_lang(value: str | None) -> str | None:
    """``zh-CN``/``zh``/``en`` (any case) → a supported language, else None."""
    if not value:
        return None
    v = value.strip().lower()
    if v in ("zh", "zh-cn", "zh_cn", "zh-hans"):
        return "zh-CN"
    if v in ("en", "en-us", "en-gb"):
        return "en"
    return None


def translate(lang: str, key: str, **params: object) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        return MISSING.format(key)
    text = pair[_INDEX.get(lang, 0)]
    return text.format(**params) if params else text


def has(key: str) -> bool:
    return key in MESSAGES


@dataclass(frozen=True)
class Names:
    """Names of catalog things and parties in one language, for the templates."""

    settings: Settings
    lang: str
    institutions: Mapping[str, str] = field(default_factory=dict)

    @property
    def _en(self) -> bool:
        return self.lang == "en"

    def t(self, key: str, **params: object) -> str:
        return translate(self.lang, key, **params)

    def department(self, dept_id: str) -> str:
        for d in self.settings.config.departments:
            if d.id == dept_id:
                return d.name_en if self._en else d.name
        return dept_id

    def purpose(self, code: str) -> str:
        p = self.settings.config.purposes.get(code)
        if p is None:
            return code
        return p.name_en if self._en else p.name

    def category(self, code: str) -> str:
        c = self.settings.config.categories.get(code)
        if c is None:
            return code
        return c.name_en if self._en else c.name

    def category_department(self, code: str) -> str:
        c = self.settings.config.categories.get(code)
        return self.department(c.department) if c else ""

    def feature(self, feature_id: str) -> str:
        try:
            _, _, f = self.settings.feature(feature_id)
        except KeyError:
            return feature_id
        return f.description_en if self._en else f.description

    def unit(self, unit: str) -> str:
        key = "unit." + unit.lower()
        return self.t(key) if has(key) else unit

    def institution(self, inst_id: str) -> str:
        return self.institutions.get(inst_id, inst_id)

    def _join(self, items: Iterable[str]) -> str:
        return self.t("sep.list").join(items)

    def ops(self, ops: Iterable[str]) -> str:
        return self._join(label(self.lang, "op", o) for o in ops)

    def categories(self, cats: Iterable[str]) -> str:
        return self._join(self.category(c) for c in cats)

    def features(self, feats: Iterable[str]) -> str:
        return self._join(self.feature(f) for f in feats)


def label(lang: str, kind: str, code: str) -> str:
    """The catalog's word for a code (an operation, a decision), or the code itself when
    the catalog has none (a code added later still shows, just untranslated)."""
    key = f"{kind}.{code}"
    return translate(lang, key) if has(key) else code
