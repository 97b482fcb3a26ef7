"""The check-in pages a client opens from the check-in e-mail, in the client's language:
the question (the visit's local time and location, a button per score from 0 to 10,
each a plain form POST, so the page works with no JavaScript) and what pressing one
answers. Pure: the clinic, the visit and the words in; HTML out, every value escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Final

from services.notifier.messages import Clinic, language_of, when_local


@dataclass(frozen=True)
class PageWords:
    title: str
    question: str  # {when} {where}
    scale: str
    score: str  # a button's accessible name: {n}
    thanks: str  # {pain}
    answered: str  # {pain}: another answer came first
    call: str  # {phone}


WORDS: Final[dict[str, PageWords]] = {
    "en": PageWords(
        title="How are you feeling?",
        question="How is your pain today, after your visit on {when} at {where}?",
        scale="Press a number from 0 (no pain) to 10 (the worst pain you can imagine).",
        score="{n} out of 10",
        thanks="Thank you. We noted {pain}/10 for your therapist.",
        answered="This check-in was answered already ({pain}/10). Thank you.",
        call="Questions? Call us at {phone}.",
    ),
    "es": PageWords(
        title="¿Cómo se encuentra?",
        question="¿Cuánto dolor siente hoy, después de su visita del {when} en {where}?",
        scale="Pulse un número del 0 (sin dolor) al 10 (el peor dolor imaginable).",
        score="{n} de 10",
        thanks="Gracias. Hemos anotado {pain}/10 para su terapeuta.",
        answered="Ya recibimos una respuesta a esta pregunta ({pain}/10). Gracias.",
        call="¿Preguntas? Llámenos al {phone}.",
    ),
}


def question_page(language: str, *, clinic: Clinic, visit_start: datetime, action: str) -> str:
    """The question, with a button per score that posts the form to ``action``."""
    lang = language_of(language)
    words = WORDS[lang]
    where = ", ".join(part for part in (clinic.location_name, clinic.address) if part)
    question = words.question.format(
        when=when_local(visit_start, clinic.timezone, lang), where=where
    )
    buttons = "".join(
        f'<button name="pain" value="{n}" type="submit" '
        f'aria-label="{escape(words.score.format(n=n))}">{n}</button>'
        for n in range(11)
    )
    body = (
        f"<p>{escape(question)}</p><p>{escape(words.scale)}</p>"
        f'<form method="post" action="{escape(action)}">{buttons}</form>'
    )
    return _page(lang, clinic, words.title, body)


def thanks_page(language: str, *, clinic: Clinic, pain: int) -> str:
    lang = language_of(language)
    words = WORDS[lang]
    return _page(lang, clinic, words.title, f"<p>{escape(words.thanks.format(pain=pain))}</p>")


def answered_page(language: str, *, clinic: Clinic, pain: int) -> str:
    lang = language_of(language)
    words = WORDS[lang]
    return _page(lang, clinic, words.title, f"<p>{escape(words.answered.format(pain=pain))}</p>")


def _page(lang: str, clinic: Clinic, title: str, body: str) -> str:
    call = f"<p>{escape(WORDS[lang].call.format(phone=clinic.phone))}</p>" if clinic.phone else ""
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width"></head><body>'
        f"<h1>{escape(clinic.chain_name)}</h1><h2>{escape(title)}</h2>{body}{call}"
        "</body></html>"
    )
