"""``POST /v1/intakes`` against the real broker and Redis: an Idempotency-Key answers a
retry alike and refuses another body, a burst of intakes is accepted whole with each
intake on the topic once, and the outbox holds an intake back only behind an older
waiting event of the same client (shared/outbox.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from services.intake import sessions_api
from services.intake.app import build_app
from services.intake.clients import ClientDirectory
from services.intake.docs import INTAKE_EXAMPLE
from services.intake.screening import RED_FLAG_FRONT_DESK
from shared.infra import Infra
from shared.kafka import Publisher
from shared.outbox import Outbox, epoch_ms
from shared.redis_store import Keys
from shared.settings import CommonSettings
from tests.integration.test_intake_sessions import CLIENT, COMPLAINTS, open_session, patch
from tests.support import (
    TopicLog,
    eventually,
    in_process_service,
    intake_settings,
    plan_completed,
    until,
)

pytestmark = pytest.mark.integration

FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
# the relay leaves entries younger than the publish wait and a second alone: with a
# long wait it stays out of these tests, which run it themselves
PUBLISH_WAIT_S = 60.0


@dataclass
class Intake:
    http: httpx.AsyncClient
    redis: aioredis.Redis
    keys: Keys
    infra: Infra

    async def submit(self, document: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = {**FRONT_DESK, **({"Idempotency-Key": key} if key else {})}
        return await self.http.post("/v1/intakes", json=document, headers=headers)

    async def queued(self) -> list[str]:
        return [str(i) for i in await self.redis.zrange(self.keys("outbox-due"), 0, -1)]

    async def emptied(self) -> bool:
        return not await self.queued()


@pytest.fixture
async def intake(infra: Infra, namespace: str) -> AsyncIterator[Intake]:
    own = f"{namespace}-{uuid.uuid4().hex[:6]}"  # an outbox of the test's own
    settings = intake_settings(infra, own, INTAKE_PUBLISH_WAIT_S=PUBLISH_WAIT_S)
    redis = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    async with in_process_service(build_app, settings) as http:
        yield Intake(http, redis, Keys(own, "intake"), infra)
    await redis.aclose()


def document_for(name: str, *, intensity: int = 7) -> dict[str, Any]:
    email = f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:8]}@example.com"
    complaint = {**INTAKE_EXAMPLE["complaints"][0], "intensity": intensity}
    client = {**INTAKE_EXAMPLE["client"], "name": name, "email": email, "phone": None}
    return {**INTAKE_EXAMPLE, "client": client, "complaints": [complaint]}


def submitted(topics: TopicLog, intake_id: str) -> list[dict[str, Any]]:
    return topics.events(type="intake.submitted", correlationid=intake_id)


async def test_an_idempotency_key_answers_a_retry_alike_and_refuses_another_body(
    intake: Intake, topics: TopicLog
) -> None:
    document = document_for("Robin Retry")
    key = f"retry-{uuid.uuid4().hex}"
    first = await intake.submit(document, key)
    assert first.status_code == 202, first.text
    assert (await intake.submit(document, key)).json() == first.json()
    other = await intake.submit({**document, "goals": ["another body"]}, key)
    assert other.status_code == 409
    assert "different request body" in other.json()["detail"]

    racing_document, racing_key = document_for("Rory Race"), f"race-{uuid.uuid4().hex}"
    racing = await asyncio.gather(*(intake.submit(racing_document, racing_key) for _ in range(5)))
    assert {r.status_code for r in racing} <= {202, 409}
    answer = (await intake.submit(racing_document, racing_key)).json()
    assert all(r.json() == answer for r in racing if r.status_code == 202)

    keyless = document_for("Kai Keyless")
    once, again = await intake.submit(keyless), await intake.submit(keyless)
    assert once.status_code == again.status_code == 202
    assert once.json() == again.json()

    intake_ids = [first.json()["intake_id"], answer["intake_id"], once.json()["intake_id"]]
    await eventually(lambda: all(submitted(topics, i) for i in intake_ids))
    await topics.caught_up()
    assert [len(submitted(topics, i)) for i in intake_ids] == [1, 1, 1]


async def test_a_burst_of_intakes_is_accepted_whole_and_each_is_published_once(
    intake: Intake, topics: TopicLog
) -> None:
    documents = [document_for(f"Burst Client {n}", intensity=n % 11) for n in range(60)]
    answers = await asyncio.gather(
        *(intake.submit(d, f"burst-{uuid.uuid4().hex}") for d in documents)
    )
    assert [a.status_code for a in answers] == [202] * len(documents)
    intake_ids = [a.json()["intake_id"] for a in answers]
    assert len(set(intake_ids)) == len(documents)
    await eventually(lambda: all(submitted(topics, i) for i in intake_ids))
    await topics.caught_up()
    assert all(len(submitted(topics, i)) == 1 for i in intake_ids)
    for answer, document in zip(answers, documents, strict=True):
        [event] = submitted(topics, answer.json()["intake_id"])
        assert event["data"]["client"]["email"] == document["client"]["email"]
        assert event["subject"] == answer.json()["client_id"]
    # published events leave the queue without the relay (it leaves them alone here)
    await until(intake.emptied, timeout=10)


async def test_an_intake_waits_only_behind_an_older_event_of_its_own_client(
    infra: Infra, namespace: str, topics: TopicLog
) -> None:
    own = f"{namespace}-{uuid.uuid4().hex[:6]}"
    settings = intake_settings(infra, own, INTAKE_PUBLISH_WAIT_S=PUBLISH_WAIT_S)
    redis = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    keys = Keys(own, "intake")
    outbox = Outbox(redis, keys, service="intake", grace_ms=0)
    async with in_process_service(build_app, settings) as http:
        intake = Intake(http, redis, keys, infra)
        returning = document_for("Wren Waiting")
        first = await intake.submit(returning)
        assert first.status_code == 202, first.text
        client_id = first.json()["client_id"]
        older = plan_completed(client_id, service="intake")
        async with redis.pipeline(transaction=True) as pipe:
            outbox.stage(pipe, [older], now_ms=epoch_ms())
            await pipe.execute()

        again = await intake.submit({**returning, "goals": ["a second course"]})
        assert again.status_code == 202, again.text
        assert again.json()["client_id"] == client_id
        stranger = await intake.submit(document_for("Sky Stranger"))
        assert stranger.status_code == 202, stranger.text

        await topics.caught_up()
        # another client's intake went out at once; this client's waits behind its older one
        assert submitted(topics, stranger.json()["intake_id"])
        assert not submitted(topics, again.json()["intake_id"])
        assert older.envelope.id in await intake.queued()

    # the service stopped; once its relay's lease lapses, a relay publishes both, in order
    publisher = Publisher(
        CommonSettings(KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers),
        client_id="intake-relay-test",
    )
    await publisher.start()
    try:
        assert await until(lambda: outbox.relay_once(publisher, owner="relay-test")) == 2
    finally:
        await publisher.stop()
    await eventually(lambda: submitted(topics, again.json()["intake_id"]))
    assert topics.events(id=older.envelope.id)
    assert await redis.zcard(keys("outbox-due")) == 0
    await redis.aclose()


async def test_a_returning_clients_key_answers_alike_and_is_released_when_nothing_was_stored(
    intake: Intake, topics: TopicLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A returning client's intake takes its key in the naming script and stores its
    answer in a later transaction: a failure between the two leaves the key free."""
    document = document_for("Remy Returning")
    known = await intake.submit(document)
    assert known.status_code == 202, known.text
    client_id = known.json()["client_id"]

    store = ClientDirectory.store
    calls = 0

    async def lost_once(self: ClientDirectory, *args: Any, **kwargs: Any) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RedisConnectionError("the state store went away")
        return await store(self, *args, **kwargs)

    monkeypatch.setattr(ClientDirectory, "store", lost_once)
    again = {**document, "goals": ["a second course"]}
    key = f"returning-{uuid.uuid4().hex}"
    lost = await intake.submit(again, key)
    assert lost.status_code == 503, lost.text
    retried = await intake.submit(again, key)  # handled afresh, not "still being processed"
    assert retried.status_code == 202, retried.text
    assert calls == 2
    assert retried.json()["client_id"] == client_id

    assert (await intake.submit(again, key)).json() == retried.json()
    other = await intake.submit({**again, "goals": ["another body"]}, key)
    assert other.status_code == 409
    assert "different request body" in other.json()["detail"]
    assert calls == 2  # the replay and the refusal stored nothing

    intake_id = retried.json()["intake_id"]
    await eventually(lambda: submitted(topics, intake_id))
    await topics.caught_up()
    assert len(submitted(topics, intake_id)) == 1


async def test_a_session_submit_stores_the_draft_as_it_is_when_it_changed_after_being_read(
    infra: Infra, namespace: str, topics: TopicLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The draft's lease is taken only at the revision the intake was assembled from:
    a patch landing between the submit's read and its script is submitted too."""
    read = sessions_api._visible_draft
    async with in_process_service(build_app, intake_settings(infra, namespace)) as http:
        session = await open_session(http)
        email = f"sam-{uuid.uuid4().hex[:8]}@example.com"
        await patch(http, session, {"client": {**CLIENT, "phone": None, "email": email}})
        await patch(http, session, {"complaints": COMPLAINTS, "health": {}})
        consent = {"treatment": True, "contact": {"email": True}}
        await patch(http, session, {"consent": consent, "goals": ["as first read"]})
        revisions: list[int] = []  # of the drafts the submit read

        patching = False

        async def patched_after_read(*args: Any) -> Any:
            nonlocal patching
            draft = await read(*args)
            if patching:  # the patch's own read
                return draft
            revisions.append(draft.revision)
            if len(revisions) == 1:
                patching = True
                late = await patch(http, session, {"goals": ["as patched meanwhile"]})
                patching = False
                assert late.status_code == 200, late.text
            return draft

        monkeypatch.setattr(sessions_api, "_visible_draft", patched_after_read)
        answer = await http.post(f"/v1/intake-sessions/{session}/submit", headers=FRONT_DESK)
        assert answer.status_code == 202, answer.text
        # refused at the stale revision, read again at the patched one
        assert len(revisions) == 2 and revisions[1] > revisions[0]

    [event] = await topics.wait_for(lambda: submitted(topics, answer.json()["intake_id"]))
    assert event["data"]["goals"] == ["as patched meanwhile"]


DVT_QUESTIONS = [
    "Has the calf swollen up lately?",
    "Is the calf warm or red to the touch?",
    "Has the client had a long journey (a flight or a long drive) or bed rest in the last "
    "few weeks?",
]
NO_DVT = {"calf_swelling": False, "calf_warmth_redness": False, "long_journey_recent": False}


async def test_the_answer_tells_the_front_desk_of_a_red_flag_and_asks_the_dvt_questions(
    intake: Intake, topics: TopicLog
) -> None:
    """DOMAIN.md 1 and 2: what the front desk must do is in the 202 answer, in plain
    words, and on the published intake."""
    new_dull = {
        **INTAKE_EXAMPLE["complaints"][0],
        "onset": (date.today() - timedelta(days=20)).isoformat(),  # new, 2-3 weeks, dull
        "improving": False,
    }
    red_flag = {**document_for("Rae Redflag"), "complaints": [new_dull]}
    answer = await intake.submit(red_flag)
    assert answer.status_code == 202, answer.text
    screening = answer.json()["screening"]
    assert screening["medical_check_required"] is True
    assert screening["front_desk"] == [RED_FLAG_FRONT_DESK]

    calf = {"region": "leg", "side": "left", "intensity": 6, "onset": "2026-10-26"}
    unasked = {**document_for("Cal Calf"), "complaints": [calf]}
    deferred = await intake.submit(unasked)
    assert deferred.status_code == 202, deferred.text
    screening = deferred.json()["screening"]
    assert screening["outcome"] == "defer"
    assert screening["front_desk"][1:] == DVT_QUESTIONS
    assert "DVT questions" in screening["front_desk"][0]

    health = {**unasked["health"], "dvt_signs": {**NO_DVT, "calf_swelling": True}}
    swollen = await intake.submit({**unasked, "health": health})
    assert swollen.status_code == 202, swollen.text
    referred = swollen.json()["screening"]
    assert (referred["outcome"], referred["referral_recommended"]) == ("refer", True)
    assert referred["front_desk"] == [
        "Ask the client to see a physician promptly: the calf may have a blood clot (DVT). "
        "No treatment is booked."
    ]

    answered = await intake.submit(
        {**unasked, "health": {**unasked["health"], "dvt_signs": NO_DVT}}
    )
    assert answered.status_code == 202, answered.text
    screening = answered.json()["screening"]
    assert screening["outcome"] == "modify"  # the example's hypertension and skin condition
    assert "dvt_questions_answered" in {r["code"] for r in screening["reasons"]}
    assert screening["front_desk"] == []

    intake_id = swollen.json()["intake_id"]
    [event] = await topics.wait_for(lambda: submitted(topics, intake_id))
    assert event["data"]["health"]["dvt_signs"]["calf_swelling"] is True
    assert event["data"]["screening"]["front_desk"] == referred["front_desk"]


async def test_a_session_with_calf_pain_is_not_complete_until_the_dvt_questions_are_answered(
    intake: Intake,
) -> None:
    http = intake.http
    session = await open_session(http)
    email = f"cal-{uuid.uuid4().hex[:8]}@example.com"
    calf = {"region": "leg", "intensity": 5, "onset": "2026-10-26"}
    await patch(http, session, {"client": {**CLIENT, "phone": None, "email": email}})
    await patch(http, session, {"complaints": [calf], "health": {}})
    view = (await patch(http, session, {"consent": {"treatment": True}})).json()
    assert [tuple(item["loc"]) for item in view["missing"]] == [
        ("health", "dvt_signs", "calf_swelling"),
        ("health", "dvt_signs", "calf_warmth_redness"),
        ("health", "dvt_signs", "long_journey_recent"),
    ]
    assert view["complete"] is False
    refused = await http.post(f"/v1/intake-sessions/{session}/submit", headers=FRONT_DESK)
    assert refused.status_code == 422
    assert ["draft", "health", "dvt_signs", "calf_swelling"] in [
        error["loc"] for error in refused.json()["detail"]
    ]

    done = (await patch(http, session, {"health": {"dvt_signs": NO_DVT}})).json()
    assert (done["missing"], done["complete"]) == ([], True)
    accepted = await http.post(f"/v1/intake-sessions/{session}/submit", headers=FRONT_DESK)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["screening"]["outcome"] == "clear"
