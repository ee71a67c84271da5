"""Demo step of objections and risk alerts: the story's enterprise objects to a value,
the tax bureau corrects it within the two working days, and a bank that monitors the
enterprise (consent op ``monitor``) gets a signed ``risk.alert`` on its own local
receiver moments after the tax bureau's next import, with kinds and bands only.

Reads ``story.enterprise`` and ``story.engine`` (from ``data.step_city``); needs the demo
instance's loopback webhooks (``consent.unsafe_webhook_private_addresses``, set by the
demo runner).
"""

from __future__ import annotations

import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bank.client import GatewayClient
from cli.demo.data import account
from cli.demo.story import Story, say, step
from common.workdays import china_date
from keys.jwk import public_jwk
from registry import Registry

ALERT_WAIT_SECONDS = 30.0


class _Receiver:
    """The bank's webhook endpoint on a loopback port: it keeps what it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.bodies.append(body)
                    receiver.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/xinyi-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def step_objection_and_alert(story: Story) -> None:
    step("Objection corrected in time; a risk alert reaches a bank / 异议处理与风险预警")
    code = story.the_enterprise()
    enterprise = account(story, "enterprise", f"ent_{code[-6:].lower()}", uscc=code)
    tax = account(story, "department", "tax_bureau", department_id="tax")
    filed = enterprise.post(
        "/v1/objections",
        json={"feature": "tax.paid_12m", "claim": "本年度补缴税款未计入（完税证明附后）"},
    )
    filed.raise_for_status()
    objection = filed.json()
    say(
        f"{code} objects to tax.paid_12m: routed to {objection['department']}, "
        f"due {objection['due']} (2 working days on the official calendar)"
    )
    decided = tax.post(
        f"/v1/objections/{objection['id']}/resolve",
        json={"decision": "corrected", "value": 3_210_000, "reason": "核实补缴记录，予以更正"},
    )
    decided.raise_for_status()
    resolution = decided.json()["resolution"]
    on = china_date(resolution["at"])
    if on > date.fromisoformat(objection["due"]):  # the story would be a lie
        raise AssertionError("the correction came after its deadline")
    say(
        f"the tax bureau corrects it on {on.isoformat()} (deadline {objection['due']}): "
        f"snapshot v{resolution['version']}, provenance objection:{objection['id']}"
    )

    bank = _monitoring_bank(story)
    receiver = _Receiver()
    try:
        bank.call("PUT", "/v1/webhook", {"url": receiver.url})
        asked = bank.request_consent(
            code,
            purpose="post_loan_monitoring",
            ops=["monitor"],
            categories=["tax", "judicial", "admin_penalty"],
            duration_days=90,
            max_uses=1,
        )
        enterprise.post(f"/v1/consents/{asked['id']}/approve").raise_for_status()
        say(f"{bank.institution_id} monitors {code} (consent {asked['id']}, op monitor)")
        imported = tax.post(
            "/v1/departments/tax/imports?file_name=arrears.csv",
            content=f"uscc,tax.arrears\n{code},250000\n".encode(),
            headers={"Content-Type": "text/csv"},
        )
        imported.raise_for_status()
        committed = time.monotonic()
        say("the tax bureau imports new arrears for the enterprise (above the 10万 threshold)")
        event = _wait_for_alert(story, receiver, bank.institution_id)
        took = time.monotonic() - committed
        say(
            f"the bank's receiver got a signed risk.alert {took:.1f} s after the import: "
            f"{event['kind']} {event['from']} → {event['to']} "
            f"(audit entry #{event['audit_index']}); no value, only bands"
        )
        pulled = bank.call("GET", "/v1/alerts", params={"after": 0})["alerts"]
        say(f"GET /v1/alerts lists it too: {[(a['id'], a['kind']) for a in pulled]}")
    finally:
        receiver.close()


MONITOR_BANK = "hz_risk_desk"


def _monitoring_bank(story: Story) -> GatewayClient:
    """A second institution, the lender's post-loan risk desk: its own key, registered
    by the operator, with no earlier events waiting for its webhook."""
    key = Ed25519PrivateKey.generate()
    registry = Registry(story.engine) if story.engine is not None else None
    if registry is None:
        raise RuntimeError("no database yet: run step_city first")
    registry.add_institution(
        MONITOR_BANK, name="杭州示范银行贷后风险管理部", jwk=dict(public_jwk(key.public_key()))
    )
    say(f"operator: registers {MONITOR_BANK}, a bank's post-loan risk desk")
    return GatewayClient(story.base, MONITOR_BANK, key)


def _wait_for_alert(story: Story, receiver: _Receiver, audience: str) -> dict[str, Any]:
    """The first risk.alert the receiver gets, its signature checked with the
    gateway's published events key."""
    keys = story.http.get("/.well-known/jwks.json").json()["keys"]
    deadline = time.monotonic() + ALERT_WAIT_SECONDS
    seen = 0
    with receiver.arrived:
        while True:
            for body in receiver.bodies[seen:]:
                seen += 1
                token = body.decode()
                kid = jwt.get_unverified_header(token)["kid"]
                jwk = next(k for k in keys if k["kid"] == kid and k["xinyi_purpose"] == "events")
                claims: dict[str, Any] = jwt.decode(
                    token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience=audience
                )
                if claims.get("type") == "risk.alert":
                    return claims
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no risk.alert reached the bank's receiver")
            receiver.arrived.wait(left)
