"""A text from a client, from the provider's webhook to our answer.

Each text is recorded once, by the provider's message id (``sms_replies.py``),
then acted on, published and answered from that record, so a redelivered webhook
(the provider retries when we did not answer 200) does the same again and no more:
the same ``reply.received`` (same id, same bytes), the same answer, nothing
recorded twice. What it does:

- STOP (and its synonyms, CANCEL among them) stops every SMS at once; the provider
  confirms the opt-out itself, so we answer nothing. START resumes SMS.
- Y / C confirm the client's next visit: ``reply.received`` names it and the
  scheduler confirms it (``visit.confirmed``). With no visit ahead the answer says
  so, and the text is kept for the front desk: the client expects a visit we do
  not know of.
- A pain score answers the latest check-in (``replies.record_reply``); a number with
  no check-in to answer is kept for the front desk like any other text.
- Any other text is kept for the front desk, and answered with the clinic's number
  and the link to the client's next visit.

A client who has texted STOP gets no answer but to START and HELP (the carriers
allow nothing else). A number we know no client by gets no answer and publishes
nothing: there is no client to name.
"""

from __future__ import annotations

from datetime import datetime

from services.notifier import sms_answers
from services.notifier.compose import Links
from services.notifier.delivery import Contact, texted_start, texted_stop
from services.notifier.messages import Clinic
from services.notifier.replies import record_reply
from services.notifier.sms_inbound import InboundSms, classify
from services.notifier.sms_replies import NextVisit, SmsReplies, SmsReply
from services.notifier.store import NotificationStore
from shared.aliases import ClientAliases
from shared.envelope import Trace, derived_id
from shared.local_time import language_of, when_local
from shared.routes import publish_or_503
from shared.runtime import Runtime
from shared.settings import NotifierSettings


async def answer_text(runtime: Runtime, sms: InboundSms) -> str | None:
    """Record, act on and publish a client's text; what to text back, if anything."""
    store = NotificationStore(runtime.redis, runtime.keys)
    client_id = await store.client_by_phone(sms.sender)
    survivor = (
        await ClientAliases(runtime.redis, runtime.keys).resolve(client_id) if client_id else None
    )
    contact = await store.contact(survivor) if survivor else None
    if contact is None or contact.phone != sms.sender:
        return None  # after a merge, a phone the survivor's contact does not keep
    replies = SmsReplies(runtime.redis, runtime.keys)
    reply = await replies.get(sms.message_sid)
    if reply is None:
        reply = await replies.keep(await _reply(store, contact, sms, now=runtime.clock.now()))
    contact = await _act(runtime, store, contact, reply)
    await _publish(runtime, reply)
    if contact.sms_stopped and reply.intent not in ("start", "help"):
        return None
    return _answer(runtime, contact, reply)


async def _reply(
    store: NotificationStore, contact: Contact, sms: InboundSms, *, now: datetime
) -> SmsReply:
    """The record of a text delivered for the first time: what it asks for, and what
    that depends on now (the check-in a score answers, the next visit)."""
    command = classify(sms.body)
    intent = command.kind
    checkin_id = None
    if intent == "score":
        latest = await store.recall("checkin", contact.client_id)
        checkin_id = latest["notification_id"] if latest else None
        intent = "score" if checkin_id else "other"
    next_visit = None
    if intent in ("confirm", "other"):
        found = await store.next_visit(contact.client_id, now=now)
        next_visit = NextVisit.model_validate(found) if found else None
    if intent == "confirm" and next_visit is None:
        intent = "other"  # reply.received names the visit a confirmation confirms
    return SmsReply(
        reply_id=sms.message_sid,
        client_id=contact.client_id,
        location_id=contact.location_id,
        asked=command.kind,
        intent=intent,
        received_at=now,
        next_visit=next_visit,
        score=command.score if intent == "score" else None,
        checkin_id=checkin_id,
        text=sms.body if intent == "other" else None,
    )


async def _act(
    runtime: Runtime, store: NotificationStore, contact: Contact, reply: SmsReply
) -> Contact:
    """What the text changes (each step gives the same result when done again); the
    contact as it is after."""
    changed = contact
    if reply.intent == "stop":
        changed = texted_stop(contact)
    elif reply.intent == "start":
        changed = texted_start(contact)
    elif reply.intent == "score" and reply.score is not None and reply.checkin_id:
        checkin = await store.get(reply.checkin_id)
        await record_reply(
            runtime,
            contact,
            pain=reply.score,
            channel="sms",
            notification=checkin,
            reply_id=reply.reply_id,
        )
    if changed != contact:
        await store.save_contact(changed)
    return changed


async def _publish(runtime: Runtime, reply: SmsReply) -> None:
    fact = reply.fact()
    event = runtime.outgoing(
        fact,
        key=reply.client_id,
        subject=reply.reply_id,
        event_id=derived_id(fact.event_type, reply.reply_id),
        trace=Trace(
            chainid=runtime.chain.chain.id,
            correlationid=reply.reply_id,
            locationid=fact.location_id,
        ),
        time=reply.received_at,
    )
    await publish_or_503(runtime, [event], "the text is kept; the broker did not take it yet")


def _answer(runtime: Runtime, contact: Contact, reply: SmsReply) -> str | None:
    language = contact.language
    clinic = _clinic(runtime, contact.location_id)
    visit = reply.next_visit
    match reply.intent:
        case "stop":
            return None  # the provider sends its own confirmation
        case "start":
            return sms_answers.started(clinic, language)
        case "help":
            return sms_answers.helped(clinic, language)
        case "score":
            return sms_answers.noted(clinic, language, score=reply.score or 0)
        case "confirm" if visit is not None:
            there = _clinic(runtime, visit.location_id)
            when = when_local(visit.start, there.timezone, language)
            return sms_answers.confirmed(there, language, when=when)
        case _ if reply.asked == "confirm":
            return sms_answers.nothing_to_confirm(clinic, language)
        case _:
            url = _visit_url(runtime, visit, language) if visit is not None else None
            return sms_answers.forwarded(clinic, language, visit_url=url)


def _clinic(runtime: Runtime, location_id: str) -> Clinic:
    location = runtime.chain.location(location_id)
    return Clinic(
        chain_name=runtime.chain.chain.name,
        location_name=location.name,
        address=location.address,
        phone=location.phone,
        timezone=location.timezone,
    )


def _visit_url(runtime: Runtime, visit: NextVisit, language: str) -> str:
    """The visit's page in the client's ``language``, signed as the dispatcher signs it
    in messages: valid until the policy's period after the visit."""
    settings = runtime.base.settings
    if not isinstance(settings, NotifierSettings):
        raise TypeError("the SMS webhook runs in the notifier")
    links = Links(
        secret=settings.link_secret.get_secret_value(),
        confirm=settings.confirm_url_template,
        offer=settings.offer_url_template,
        checkin=settings.checkin_url_template,
    )
    valid_after = runtime.chain.policy_for(visit.location_id).link_valid_after_visit
    to_page = links.speaking(language_of(language))
    return to_page.visit(visit.visit_id, expires=visit.start + valid_after)
