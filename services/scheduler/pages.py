"""The visit and offer pages a client opens from a message (pure: facts in, HTML out).

Small server-rendered pages with no JavaScript: every action is a form that POSTs
(a GET never changes anything: mail scanners open links). Every text comes from
``page_texts.py`` in the client's language, every time is the location's wall clock
(``shared/local_time.py``), and everything printed is HTML-escaped. Links and form
targets are relative (``manage/confirm?...`` from ``.../manage``), so the pages work
behind a proxy that serves the API under another path.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from services.scheduler.confirmation import ShownStatus
from services.scheduler.page_texts import PageTexts
from shared.local_time import when_local

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:1.5rem auto;padding:0 1rem;"
    "line-height:1.45;color:#1c1c1c}dt{font-weight:600}dd{margin:0 0 .6rem}"
    "button{font-size:1rem;padding:.55rem 1rem;margin:.2rem .3rem .2rem 0;cursor:pointer}"
    ".note{background:#f4f1e8;padding:.6rem .8rem;border-radius:.3rem}"
    ".late{background:#fbe9e7}"
)
# the Content-Security-Policy the pages are served with: their one inline style (by
# its hash), forms that post back to this service, and nothing else
POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()}'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Place:
    """Where a visit is, as a client reads it."""

    chain_name: str
    location_name: str
    address: str | None
    phone: str | None
    timezone: str


@dataclass(frozen=True)
class VisitFacts:
    """What the visit page shows and offers."""

    visit_id: str
    place: Place
    start: datetime
    status: ShownStatus
    started: bool
    late_cancel: bool  # a cancel now counts as late (operations.is_late_cancel)
    late_window: timedelta
    proposals: Sequence[datetime]


@dataclass(frozen=True)
class OfferFacts:
    """What the offer page shows and offers."""

    offer_id: str
    place: Place
    start: datetime
    hold_until: datetime
    state: str  # backfill.OfferState, "lapsed" once the hold ended, even before it closes


def query(sig: str | None, lang: str) -> str:
    """The query string a page's links and forms carry on: its signature and language."""
    return urlencode({**({"sig": sig} if sig is not None else {}), "lang": lang})


def visit_page(facts: VisitFacts, *, texts: PageTexts, lang: str, carried: str) -> str:
    """The visit: when and where, its status, and what the client may do with it now;
    ``carried`` is the query string the forms post with (``query``)."""
    place, when = facts.place, _when(facts.start, facts.place, lang)
    status = texts.statuses.get(facts.status, facts.status)
    parts = [_facts_list(texts, place, when, status)]
    if facts.status == "cancelled":
        parts.append(_note(texts.cancelled_note))
    elif facts.status in ("completed", "no_show"):
        parts.append(_note(texts.over_note))
    elif facts.started:
        parts.append(_note(texts.started_note))
    else:
        parts += _actions(facts, texts, lang, carried)
    parts.append(_call(texts, place))
    return _document(lang, texts.visit_title, place, parts)


def _actions(facts: VisitFacts, texts: PageTexts, lang: str, carried: str) -> list[str]:
    if facts.status == "confirmed":
        confirm = _note(texts.confirmed_note)
    else:
        confirm = _p(texts.confirm_ask) + _form(
            f"manage/confirm?{carried}", _button(texts.confirm_button, name="confirm")
        )
    if facts.late_cancel:
        hours = f"{facts.late_window / timedelta(hours=1):g}"
        warning = _p(texts.cancel_late.format(hours=hours), css="note late", role="alert")
    else:
        deadline = _when(facts.start - facts.late_window, facts.place, lang)
        warning = _p(texts.cancel_on_time.format(deadline=deadline), css="note")
    cancel = _form(f"manage/cancel?{carried}", _button(texts.cancel_button, name="cancel"))
    if facts.proposals:
        buttons = "".join(
            _button(_when(start, facts.place, lang), name="start", value=start.isoformat())
            for start in facts.proposals
        )
        move = _form(f"manage/reschedule?{carried}", buttons)
    else:
        move = _p(texts.move_none)
    return [
        f'<section id="confirm">{confirm}</section>',
        f'<section id="cancel"><h2>{_e(texts.cancel_heading)}</h2>{warning}{cancel}</section>',
        f'<section id="reschedule"><h2>{_e(texts.move_heading)}</h2>{move}</section>',
    ]


def offer_page(facts: OfferFacts, *, texts: PageTexts, lang: str, carried: str) -> str:
    """A held slot: when and where, until when it is held, and Accept / Decline while
    it is; else what became of it."""
    place = facts.place
    rows = [
        (texts.when, _when(facts.start, place, lang), "when"),
        (texts.where, _where(place), "where"),
        (texts.held_until, _when(facts.hold_until, place, lang), "held-until"),
    ]
    parts = [_p(texts.offer_intro) if facts.state == "open" else "", _dl(rows)]
    if facts.state == "open":
        parts.append(
            _form(f"manage/accept?{carried}", _button(texts.accept_button, name="accept"))
            + _form(f"manage/decline?{carried}", _button(texts.decline_button, name="decline"))
        )
    else:
        parts.append(_note(texts.offer_states.get(facts.state, texts.refusal("other"))))
    parts.append(_call(texts, place))
    return _document(lang, texts.offer_title, place, parts)


def result_page(
    *, title: str, lines: Sequence[str], place: Place, texts: PageTexts, lang: str, back: str
) -> str:
    """What pressing a button did (or why it could not be done), and the way back to
    the page; ``back`` is the page's relative link."""
    parts = [
        *(_p(line) for line in lines if line),
        f'<p><a href="{_e(back)}">{_e(texts.back)}</a></p>',
    ]
    parts.append(_call(texts, place))
    return _document(lang, title, place, parts)


def when_text(moment: datetime, place: Place, lang: str) -> str:
    """``moment`` on the location's clock, in ``lang`` (for the result pages' lines)."""
    return _when(moment, place, lang)


# --- the pieces --------------------------------------------------------------------------


def _document(lang: str, title: str, place: Place, parts: Sequence[str]) -> str:
    body = "".join(parts)
    return (
        f'<!doctype html><html lang="{_e(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} - {_e(place.chain_name)}</title><style>{STYLE}</style></head>"
        f"<body><header><p>{_e(place.chain_name)}</p><h1>{_e(title)}</h1></header>"
        f"<main>{body}</main></body></html>"
    )


def _facts_list(texts: PageTexts, place: Place, when: str, status: str) -> str:
    return _dl(
        [
            (texts.when, when, "when"),
            (texts.where, _where(place), "where"),
            (texts.status, status, "status"),
        ]
    )


def _dl(rows: Sequence[tuple[str, str, str]]) -> str:
    """A definition list of (term, value, the value's element id)."""
    items = "".join(
        f'<dt>{_e(term)}</dt><dd id="{_e(name)}">{_e(value)}</dd>' for term, value, name in rows
    )
    return f"<dl>{items}</dl>"


def _where(place: Place) -> str:
    return ", ".join(part for part in (place.location_name, place.address) if part)


def _when(moment: datetime, place: Place, lang: str) -> str:
    return when_local(moment, place.timezone, lang)


def _call(texts: PageTexts, place: Place) -> str:
    return _p(texts.call.format(phone=place.phone)) if place.phone else ""


def _form(action: str, content: str) -> str:
    return f'<form method="post" action="{_e(action)}">{content}</form>'


def _button(label: str, *, name: str, value: str | None = None) -> str:
    shown = f' value="{_e(value)}"' if value is not None else ""
    return f'<button type="submit" name="{_e(name)}"{shown}>{_e(label)}</button>'


def _p(text: str, *, css: str = "", role: str = "") -> str:
    attributes = (f' class="{_e(css)}"' if css else "") + (f' role="{_e(role)}"' if role else "")
    return f"<p{attributes}>{_e(text)}</p>"


def _note(text: str) -> str:
    return _p(text, css="note")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


__all__ = [
    "POLICY",
    "OfferFacts",
    "Place",
    "VisitFacts",
    "offer_page",
    "query",
    "result_page",
    "visit_page",
    "when_text",
]
