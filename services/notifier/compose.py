"""What one notification says: its record, the chain's location, the plan the
notifier remembered and the client's language in; the template context and the
rendered message out. Only the fields the templates may print are passed on
(``messages.py``): nothing clinical reaches a reminder or an SMS, because the
contexts have no place for it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from services.notifier import batches, messages
from services.notifier.channels import OutboundMessage
from services.notifier.delivery import Route
from services.notifier.home_words import home_words
from shared import links
from shared.chain import ChainConfig


@dataclass(frozen=True)
class Links:
    """Where the links in messages point, and the secret that signs them."""

    secret: str
    confirm: str  # {visit_id} {sig} {lang}: the visit's page
    offer: str  # {offer_id} {sig} {lang}: the offer's page ({action}, if named: accept|decline)
    checkin: str  # {notification_id} {sig}
    calendar: str = ""  # {client_id} {sig}: the client's calendar feed
    lang: str = "en"  # the client's language, which the pages a link opens speak

    def speaking(self, lang: str) -> Links:
        """These links for a client who reads ``lang``."""
        return replace(self, lang=lang)

    def visit(self, visit_id: str, *, expires: datetime) -> str:
        sig = links.sign(self.secret, "visit", visit_id, expires=expires)
        return self.confirm.format(visit_id=visit_id, sig=sig, lang=self.lang)

    def offer_action(self, offer_id: str, action: str, *, expires: datetime) -> str:
        sig = links.sign(self.secret, "offer", offer_id, expires=expires)
        return self.offer.format(offer_id=offer_id, action=action, sig=sig, lang=self.lang)

    def calendar_feed(self, client_id: str, *, expires: datetime) -> str:
        sig = links.sign(self.secret, "client", client_id, expires=expires)
        return self.calendar.format(client_id=client_id, sig=sig)

    def checkin_reply(self, notification_id: str, *, expires: datetime) -> str:
        sig = links.sign(self.secret, "checkin", notification_id, expires=expires)
        return self.checkin.format(notification_id=notification_id, sig=sig)


def context_for(
    record: dict[str, Any],
    *,
    chain: ChainConfig,
    plan: dict[str, Any] | None,
    urls: Links,
    members: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
    language: str = "en",
) -> messages.MessageContext:
    location = chain.location(record["location_id"])
    clinic = messages.Clinic(
        chain_name=chain.chain.name,
        location_name=location.name,
        address=location.address,
        phone=location.phone,
        timezone=location.timezone,
    )
    given = record.get("context") or {}
    kind = record["kind"]
    # the home program in the client's language, from the plan's codes (home_words.py)
    home = home_words((plan or {}).get("home_program") or {}, messages.language_of(language))
    # links expire a policy period after the visit they belong to (shared/links.py)
    policy = chain.policy_for(record["location_id"])
    valid_after = policy.link_valid_after_visit
    if kind == "reminder":
        start = _at(given["visit_start"])
        return messages.ReminderContext(
            clinic=clinic,
            visit_start=start,
            confirm_url=urls.visit(record["visit_id"], expires=start + valid_after),
        )
    if kind == "aftercare":
        return messages.AftercareContext(
            clinic=clinic,
            visit_start=visit_time(given),
            stretches=home.stretches,
            self_massage=home.self_massage,
            # what the client's own precautions call for (bruising on blood thinners):
            # the e-mail prints it, the SMS none of the home program
            advice=home.advice,
            breathing_practice=(plan or {}).get("modality") == "fmm",
            checkin_after_hours=int(policy.aftercare_checkin_after.total_seconds() // 3600),
        )
    if kind == "checkin":
        completed = _at(given["completed_at"])
        return messages.CheckinContext(
            clinic=clinic,
            visit_start=visit_time(given),
            reply_url=urls.checkin_reply(
                record["notification_id"], expires=completed + valid_after
            ),
        )
    if kind == "waitlist_offer":
        offer_id = given["offer_id"]
        start = _at(given["visit_start"])
        return messages.WaitlistOfferContext(
            clinic=clinic,
            visit_start=start,
            hold_until=_at(given["hold_until"]),
            accept_url=urls.offer_action(offer_id, "accept", expires=start + valid_after),
            decline_url=urls.offer_action(offer_id, "decline", expires=start + valid_after),
        )
    if kind == "plan_summary":
        return messages.PlanSummaryContext(
            clinic=clinic,
            sessions_total=int((plan or {}).get("sessions_total", 0)),
            phases=[
                messages.PhaseText(per_week=p["per_week"], weeks=p["weeks"], sessions=p["sessions"])
                for p in (plan or {}).get("phases", [])
            ],
            stretches=home.stretches,
            self_massage=home.self_massage,
            first_visit=None,
            awaiting_medical_check=bool((plan or {}).get("awaiting_medical_check")),
        )
    if kind == "referral":
        return messages.ReferralContext(clinic=clinic)
    if kind in batches.BATCH_KINDS:
        told = batches.changes(members or [])
        if told.empty:
            raise NothingToSay(
                f"the changes gathered by {record['notification_id']} undo each other"
            )
        starts = [b.start for b in told.booked] + [m.start for m in told.moved]
        last = max([*starts, *told.cancelled], default=now or datetime.now(UTC))
        first = min(
            [(b.start, b.visit_id) for b in told.booked]
            + [(m.start, m.visit_id) for m in told.moved],
            default=None,
        )
        return messages.ChangesContext(
            clinic=clinic,
            booked=[
                messages.VisitTime(b.start, b.sequence, b.sessions_total, b.makeup)
                for b in told.booked
            ],
            moved=[messages.MovedVisit(m.previous, m.start) for m in told.moved],
            cancelled=told.cancelled,
            waitlisted=told.waitlisted,
            outcome=told.outcome,
            maintenance=told.maintenance,
            calendar_url=urls.calendar_feed(record["client_id"], expires=last + valid_after),
            visit_url=None
            if first is None
            else urls.visit(first[1], expires=first[0] + valid_after),
        )
    raise ValueError(f"no message for kind {kind!r}")


class NothingToSay(ValueError):
    """A batch whose changes net to nothing (a quick undo): it is not sent."""


def compose(
    record: dict[str, Any],
    *,
    way: Route,
    language: str,
    chain: ChainConfig,
    plan: dict[str, Any] | None,
    urls: Links,
    templates: messages.Templates,
    sent_at: datetime,
    members: list[dict[str, Any]] | None = None,
) -> OutboundMessage:
    urls = urls.speaking(messages.language_of(language))  # the pages its links open, too
    rendered = templates.render(
        record["kind"],
        way.template,
        language=messages.language_of(language),
        location_id=record["location_id"],
        context=context_for(
            record,
            chain=chain,
            plan=plan,
            urls=urls,
            members=members,
            now=sent_at,
            language=language,
        ),
    )
    return OutboundMessage(
        notification_id=record["notification_id"],
        channel=way.channel,
        to=way.to,
        subject=rendered.subject,
        body=rendered.text,
        sent_at=sent_at.isoformat(),
        client_id=record["client_id"],
        kind=record["kind"],
        location_id=record["location_id"],
    )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def visit_time(given: dict[str, Any]) -> datetime:
    """The visit's scheduled start, which messages name it by; a record armed before
    the notifier kept it knows only when the visit was completed."""
    return _at(given.get("visit_start") or given["completed_at"])
