"""Demo step for enterprise sign-up (wired into ``xinyi demo`` by ``cli/demo/steps.py``).

``step_signup``: an enterprise of the city that has no account signs up on its own
(``POST /v1/enterprises/register``): first with a mistyped id number (refused: not a
resident id), then with its legal representative's name and id as registered with
market regulation (real name verified); a second sign-up for the same USCC is 409.

Market regulation's record holds the legal representative's id only as a keyed hash
(``records.pseudonyms.legal_rep_id_hash`` under the key store's pseudonym key); the step
stores such a record for its enterprise with a made-up id, as the registration import
would (the city's raw ids are only in its import files). Reads ``story.password``;
writes ``accounts`` (role ``enterprise_signup``).
"""

from __future__ import annotations

import hashlib
import json
import time

from cli.demo.story import Story, say, step
from common.db import make_engine
from keys import KeyRing
from records import identity
from records import store as records
from records.importer import Checked
from records.pseudonyms import legal_rep_id_hash
from registry import Registry

# A made-up resident id (valid shape and check character, no real person's).
DEMO_ID_BODY = "32028119850612007"


def _pick(story: Story, registry: Registry) -> tuple[str, str] | None:
    """An enterprise of the registration data without an account, and its legal
    representative's name as registered."""
    engine = registry.engine
    with_accounts = set(registry.enterprise_usccs())
    for uscc in records.enterprises(engine, "market_regulation"):
        if uscc in with_accounts:
            continue
        name = records.current_values(engine, uscc, [identity.NAME_FEATURE]).get(
            identity.NAME_FEATURE
        )
        if isinstance(name, str) and name:
            return uscc, name
    return None


def step_signup(story: Story) -> None:
    step("An enterprise signs up on its own, with its real name")
    engine = make_engine(story.settings.database_url)
    try:
        registry = Registry(engine)
        found = _pick(story, registry)
        if found is None:
            say("no enterprise without an account in the registration data: skipped")
            return
        uscc, name = found
        raw_id = DEMO_ID_BODY + identity.resident_id_check(DEMO_ID_BODY)
        key = KeyRing(story.settings).pseudonym_key(identity.ID_FEATURE)
        row = json.dumps([legal_rep_id_hash(key, raw_id)])
        records.save_loaded(
            engine,
            Checked(
                "market_regulation",
                (identity.ID_FEATURE,),
                [(uscc, row)],
                [],
                1,
                hashlib.sha256(row.encode()).hexdigest(),
            ),
            file_name="registration-legal-representative.csv",
            actor="demo",
            now=int(time.time()),
        )
        say(
            f"market regulation's record of {uscc}: legal representative {name}, id kept "
            "only as a keyed hash"
        )
    finally:
        engine.dispose()

    login = f"signup_{uscc[-6:].lower()}"
    body = {
        "uscc": uscc,
        "login": login,
        "password": story.password,
        "legal_representative": name,
        "legal_representative_id": raw_id[:-1] + ("0" if raw_id[-1] != "0" else "1"),
    }
    resp = story.http.post("/v1/enterprises/register", json=body)
    say(f"a mistyped id number: {resp.status_code} {resp.json().get('error')}")
    resp = story.http.post(
        "/v1/enterprises/register", json={**body, "legal_representative_id": raw_id}
    )
    if resp.status_code != 201:
        say(f"sign-up refused: {resp.status_code} {resp.json().get('error')}")
        return
    say(f"signed up: {resp.json()}  (real name verified: may authorize institutions)")
    again = story.http.post(
        "/v1/enterprises/register",
        json={**body, "login": login + "_2", "legal_representative_id": raw_id},
    )
    say(
        f"a second sign-up for {uscc}: {again.status_code} {again.json().get('error')} "
        "(colleagues are invited by the administrator)"
    )
    story.accounts.append(("enterprise_signup", login, story.password))
