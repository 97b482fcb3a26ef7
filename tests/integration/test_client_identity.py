"""Client identity through the intake API and the topics, on the real broker and
Redis: who is a returning client, what an intake may change about them, possible
duplicates, merges, and what each location may read."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.intake.app import build_app
from services.intake.docs import INTAKE_EXAMPLE
from shared.infra import Infra
from tests.support import TopicLog, in_process_service, intake_settings

BEAVERTON = {"Authorization": "Bearer demo-frontdesk-beaverton"}
BROOKLYN = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
ANA = {"Authorization": "Bearer demo-therapist-ana"}
ADMIN = {"Authorization": "Bearer demo-admin"}


@pytest.fixture(scope="module")
async def intake(infra: Infra, namespace: str) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_service(build_app, intake_settings(infra, namespace)) as http:
        yield http


def unique() -> str:
    return uuid.uuid4().hex[:8]


def phone() -> str:
    return f"+1503{uuid.uuid4().int % 10_000_000:07d}"


def document(location: str = "beaverton", **client: Any) -> dict[str, Any]:
    body = copy.deepcopy(INTAKE_EXAMPLE)
    body["location_id"] = location
    body["client"] = client
    return body


async def submit(
    http: httpx.AsyncClient, headers: dict[str, str], location: str = "beaverton", **client: Any
) -> dict[str, Any]:
    answer = await http.post("/v1/intakes", json=document(location, **client), headers=headers)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


async def client_in_event(topics: TopicLog, intake_id: str) -> dict[str, Any]:
    events = await topics.wait_for(
        lambda: topics.events(type="intake.submitted", correlationid=intake_id)
    )
    return dict(events[0]["data"]["client"])


async def test_a_family_sharing_a_phone_are_two_clients(
    intake: httpx.AsyncClient, topics: TopicLog
) -> None:
    shared = phone()
    family = f"Lopez {unique()}"
    mum = await submit(intake, BEAVERTON, name=f"Ana {family}", phone=shared)
    dad = await submit(intake, BEAVERTON, name=f"Ben {family}", phone=shared)
    assert dad["client_id"] != mum["client_id"]
    assert dad["possible_duplicate"] is True and mum["possible_duplicate"] is False
    assert dad["contact_change_id"] is None

    carried = await client_in_event(topics, dad["intake_id"])
    assert carried["client_id"] == dad["client_id"] and carried["name"] == f"Ben {family}"
    assert carried["possible_duplicate_of"] == [mum["client_id"]]
    mums = (await intake.get(f"/v1/clients/{mum['client_id']}", headers=BEAVERTON)).json()
    assert mums["client"]["name"] == f"Ana {family}" and len(mums["intakes"]) == 1
    assert mums["contact_changes"] == []

    # each returns as themselves; the other stays a flag, not a match
    again = await submit(intake, BEAVERTON, name=f"ben  {family.upper()}", phone=shared)
    assert again["client_id"] == dad["client_id"] and again["contact_change_id"] is None

    listed = await intake.get("/v1/clients/possible-duplicates", headers=BEAVERTON)
    assert listed.status_code == 200
    pairs = [{c["client_id"] for c in p["clients"]} for p in listed.json()]
    assert pairs.count({mum["client_id"], dad["client_id"]}) == 1
    pair = next(p for p in listed.json() if {c["client_id"] for c in p["clients"]} == pairs[-1])
    assert pair["shared"] == ["phone"] and pair["conflicts"] == ["another name"]
    elsewhere = (await intake.get("/v1/clients/possible-duplicates", headers=BROOKLYN)).json()
    assert all(mum["client_id"] not in {c["client_id"] for c in p["clients"]} for p in elsewhere)

    # the desk knows them: two people; the pair leaves the list and is not raised again
    apart = f"/v1/clients/{dad['client_id']}/keep-apart"
    other = {"other_client_id": mum["client_id"]}
    assert (await intake.post(apart, json=other, headers=BROOKLYN)).status_code == 404
    kept = await intake.post(apart, json=other, headers=BEAVERTON)
    assert kept.status_code == 200 and kept.json()["kept_apart"] is True
    # a repeat, from either side of the pair, answers alike
    mums_side = {"other_client_id": dad["client_id"]}
    again_apart = f"/v1/clients/{mum['client_id']}/keep-apart"
    repeated = await intake.post(again_apart, json=mums_side, headers=BEAVERTON)
    assert repeated.status_code == 200 and repeated.json() == kept.json()
    await submit(intake, BEAVERTON, name=f"Ben {family}", phone=shared)
    listed = (await intake.get("/v1/clients/possible-duplicates", headers=BEAVERTON)).json()
    assert all(mum["client_id"] not in {c["client_id"] for c in p["clients"]} for p in listed)


async def test_another_locations_desk_typing_a_known_email_gets_a_new_client(
    intake: httpx.AsyncClient, topics: TopicLog
) -> None:
    email, first_phone = f"riley-{unique()}@example.com", phone()
    first = await submit(
        intake,
        BEAVERTON,
        name="Riley Stone",
        email=email,
        phone=first_phone,
        date_of_birth="1984-02-01",
    )
    stranger_phone = phone()
    typed = await submit(
        intake, BROOKLYN, "brooklyn", name="Someone Else", email=email, phone=stranger_phone
    )
    namesake = await submit(
        intake, BROOKLYN, "brooklyn", name="Riley Stone", email=email, date_of_birth="1990-09-09"
    )
    ids = {first["client_id"], typed["client_id"], namesake["client_id"]}
    assert len(ids) == 3
    # Brooklyn is not told that Beaverton has a client with this e-mail; the second
    # Brooklyn record is told about the first, which Brooklyn itself recorded
    assert (typed["possible_duplicate"], namesake["possible_duplicate"]) == (False, True)
    carried = await client_in_event(topics, typed["intake_id"])
    assert carried["possible_duplicate_of"] == [first["client_id"]]
    pairs = (await intake.get("/v1/clients/possible-duplicates", headers=ADMIN)).json()
    assert {typed["client_id"], first["client_id"]} in [
        {c["client_id"] for c in p["clients"]} for p in pairs
    ]

    # nothing crosses: Brooklyn cannot read the first client, whose record is untouched
    assert (
        await intake.get(f"/v1/clients/{first['client_id']}", headers=BROOKLYN)
    ).status_code == 404
    view = (await intake.get(f"/v1/clients/{first['client_id']}", headers=BEAVERTON)).json()
    assert (view["client"]["name"], view["client"]["phone"]) == ("Riley Stone", first_phone)
    assert len(view["intakes"]) == 1 and view["contact_changes"] == []
    mine = (await intake.get(f"/v1/clients/{typed['client_id']}", headers=BROOKLYN)).json()
    assert mine["client"]["phone"] == stranger_phone and mine["locations"] == ["brooklyn"]
    assert (
        await intake.get(f"/v1/clients/{typed['client_id']}", headers=BEAVERTON)
    ).status_code == 404
    assert carried["client_id"] == typed["client_id"] and carried["phone"] == stranger_phone
    await topics.caught_up()
    firsts = topics.events(type="intake.submitted", subject=first["client_id"])
    assert [e["data"]["intake_id"] for e in firsts] == [first["intake_id"]]


async def test_a_returning_clients_new_details_wait_for_the_front_desk(
    intake: httpx.AsyncClient, topics: TopicLog
) -> None:
    email, old_phone, new_phone = f"jo-{unique()}@example.com", phone(), phone()
    consent = {"email": True, "sms": True}
    first = await submit(
        intake, BEAVERTON, name="Jo Park", email=email, phone=old_phone, contact_consent=consent
    )
    returning = await submit(
        intake,
        BEAVERTON,
        name="JO PARK",
        email=email,
        phone=new_phone,
        language="es",
        contact_consent={"email": True, "sms": False},
    )
    assert returning["client_id"] == first["client_id"]
    change_id = returning["contact_change_id"]
    assert change_id
    # the event carries the record (old phone, language) with the withdrawn SMS consent
    carried = await client_in_event(topics, returning["intake_id"])
    assert (carried["phone"], carried["language"]) == (old_phone, "en")
    assert carried["contact_consent"] == {"email": True, "sms": False}
    # asking for SMS again through an intake grants nothing
    third = await submit(
        intake, BEAVERTON, name="Jo Park", email=email, contact_consent={"email": True, "sms": True}
    )
    assert (await client_in_event(topics, third["intake_id"]))["contact_consent"]["sms"] is False

    client_url = f"/v1/clients/{first['client_id']}"
    confirm = f"{client_url}/contact-changes/{change_id}/confirm"
    assert (await intake.post(confirm, headers=BROOKLYN)).status_code == 404
    assert (await intake.post(confirm, headers=ANA)).status_code == 403
    done = await intake.post(confirm, headers=BEAVERTON)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "confirmed" and done.json()["proposed"]["phone"] == new_phone
    assert (await intake.post(confirm, headers=BEAVERTON)).json()["status"] == "confirmed"
    declined = await intake.post(f"{client_url}/contact-changes/{change_id}/decline", headers=ADMIN)
    assert declined.status_code == 409
    # the confirmation is announced once, with the record as it now stands, so the
    # notifier reaches the client at the confirmed phone
    updated = await topics.wait_for(
        lambda: topics.events(type="client.updated", subject=first["client_id"])
    )
    await topics.caught_up()
    updated = topics.events(type="client.updated", subject=first["client_id"])
    assert len(updated) == 1
    record = updated[0]["data"]["client"]
    assert (record["phone"], record["language"]) == (new_phone, "es")
    assert updated[0]["data"]["change_id"] == change_id
    assert updated[0]["locationid"] == "beaverton"

    view = (await intake.get(client_url, headers=BEAVERTON)).json()
    assert (view["client"]["phone"], view["client"]["language"]) == (new_phone, "es")
    changes = {c["change_id"]: c["status"] for c in view["contact_changes"]}
    assert changes[change_id] == "confirmed"
    # the confirmed phone finds the client, and so does the old one
    by_new = await submit(intake, BEAVERTON, name="Jo Park", phone=new_phone)
    by_old = await submit(intake, BEAVERTON, name="Jo Park", phone=old_phone)
    assert by_new["client_id"] == by_old["client_id"] == first["client_id"]


async def test_concurrent_submissions_of_one_new_person_get_one_client(
    intake: httpx.AsyncClient,
) -> None:
    email, mobile = f"twin-{unique()}@example.com", phone()
    bodies = [document(name="Casey Twin", email=email, phone=mobile) for _ in range(6)]
    for n, body in enumerate(bodies):  # six intakes, not one retried
        body["goals"] = [f"goal {n}"]
    answers = await asyncio.gather(
        *(intake.post("/v1/intakes", json=body, headers=BEAVERTON) for body in bodies)
    )
    assert [a.status_code for a in answers] == [202] * 6
    assert len({a.json()["client_id"] for a in answers}) == 1
    assert not any(a.json()["possible_duplicate"] for a in answers)


async def test_an_admin_merges_two_records_of_one_person(
    intake: httpx.AsyncClient, topics: TopicLog
) -> None:
    email, mobile = f"sam-{unique()}@example.com", phone()
    kept = await submit(intake, BEAVERTON, name="Samuel Lee", email=email)
    twin = await submit(intake, BROOKLYN, "brooklyn", name="Sam Lee", email=email, phone=mobile)
    survivor, retired = kept["client_id"], twin["client_id"]
    assert survivor != retired and not twin["possible_duplicate"]
    url = f"/v1/clients/{survivor}/merge"
    body = {"merged_client_id": retired, "reason": "one person, nickname at Brooklyn"}

    assert (await intake.post(url, json=body, headers=BEAVERTON)).status_code == 403
    assert (
        await intake.post(url, json={"merged_client_id": survivor}, headers=ADMIN)
    ).status_code == 409
    unknown = {"merged_client_id": str(uuid.uuid4())}
    assert (await intake.post(url, json=unknown, headers=ADMIN)).status_code == 404

    merged = await intake.post(url, json=body, headers=ADMIN)
    assert merged.status_code == 202, merged.text
    answer = merged.json()
    assert (answer["client_id"], answer["merged_client_id"]) == (survivor, retired)
    assert answer["location_ids"] == ["beaverton", "brooklyn"]
    again = await intake.post(url, json=body, headers=ADMIN)
    assert again.status_code == 202 and again.json() == answer

    events = await topics.wait_for(
        lambda: topics.events(type="client.merged", correlationid=answer["merge_id"])
    )
    assert events[0]["subject"] == survivor
    assert events[0]["data"]["merged_client_id"] == retired
    assert events[0]["data"]["reason"] == body["reason"]
    record = topics.record_of(events[0]["id"])
    assert record is not None
    assert record.topic == "clinic.intake" and record.key == survivor
    await topics.caught_up()
    assert len(topics.events(type="client.merged", correlationid=answer["merge_id"])) == 1

    # the retired id answers for the survivor, which now holds both intakes
    view = (await intake.get(f"/v1/clients/{retired}", headers=ADMIN)).json()
    assert view["client"]["client_id"] == survivor and view["client"]["name"] == "Samuel Lee"
    assert {i["intake_id"] for i in view["intakes"]} == {kept["intake_id"], twin["intake_id"]}
    brooklyn = (await intake.get(f"/v1/clients/{survivor}", headers=BROOKLYN)).json()
    assert [i["intake_id"] for i in brooklyn["intakes"]] == [twin["intake_id"]]
    # the person's next intake, under either name, is the survivor's
    later = await submit(intake, BROOKLYN, "brooklyn", name="Sam Lee", phone=mobile)
    assert later["client_id"] == survivor and not later["possible_duplicate"]
    pairs = (await intake.get("/v1/clients/possible-duplicates", headers=ADMIN)).json()
    assert all({survivor, retired} != {c["client_id"] for c in p["clients"]} for p in pairs)

    # a retired client cannot be merged again, nor merged into
    other = await submit(intake, BEAVERTON, name="Other Person", email=f"o-{unique()}@example.com")
    again_into = {"merged_client_id": retired}
    assert (
        await intake.post(f"/v1/clients/{other['client_id']}/merge", json=again_into, headers=ADMIN)
    ).status_code == 409
    into_retired = {"merged_client_id": other["client_id"]}
    assert (
        await intake.post(f"/v1/clients/{retired}/merge", json=into_retired, headers=ADMIN)
    ).status_code == 409


async def test_concurrent_merges_of_one_client_retire_it_once(intake: httpx.AsyncClient) -> None:
    def someone(name: str) -> dict[str, Any]:
        return document(name=name, email=f"{unique()}@example.com")

    ids = []
    for name in ("Lee One", "Lee Two", "Lee Three"):
        answer = await intake.post("/v1/intakes", json=someone(name), headers=BEAVERTON)
        ids.append(answer.json()["client_id"])
    retired, *survivors = ids
    body = {"merged_client_id": retired}
    answers = await asyncio.gather(
        *(intake.post(f"/v1/clients/{s}/merge", json=body, headers=ADMIN) for s in survivors * 3)
    )
    won = [s for s, a in zip(survivors * 3, answers, strict=True) if a.status_code == 202]
    assert sorted(a.status_code for a in answers if a.status_code != 202) == [409] * (6 - len(won))
    # one survivor took the client (its repeats may answer the same merge), the other none
    assert len(set(won)) == 1
    view = (await intake.get(f"/v1/clients/{retired}", headers=ADMIN)).json()
    assert view["client"]["client_id"] == won[0]
    late = await intake.post(
        f"/v1/clients/{next(s for s in survivors if s != won[0])}/merge", json=body, headers=ADMIN
    )
    assert late.status_code == 409
