"""What we text back to a client's text (pure: no I/O, no clock), in their language.

The carriers' rules (CTIA's messaging principles, which Twilio's defaults follow)
shape three of them: after START the client is told texts are on again and how to
stop them; HELP answers who sends the texts (the chain and the location), how to
reach the clinic and how to stop; STOP gets no answer from us, because the provider
confirms the opt-out itself and a second text would be one more after STOP. Every
answer names STOP in English whatever the language: it is the word the provider's
own blocking honours everywhere.

Like every SMS, an answer carries no diagnosis, condition, precaution or technique:
only the clinic, a visit's local time and place, and links. The client's own words
are never repeated back.
"""

from __future__ import annotations

from typing import Final

from services.notifier.messages import Clinic, sms_text
from shared.local_time import language_of

_TEXTS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "started": "{chain}: text messages are on again. Reply HELP for help, STOP to stop. "
        "Msg&data rates may apply.",
        "help": "{chain}, {location}: texts about your visits. Msg&data rates may apply."
        "{call} Reply STOP to stop.",
        "call": " Help: call {phone}.",
        "confirmed": "{chain}: thank you, your {location} visit on {when} is confirmed.",
        "nothing_to_confirm": "{chain}: we found no upcoming visit to confirm.{call}",
        "noted": "{chain}: thank you, we noted {score}/10.",
        "forwarded": "{chain}: thank you, the front desk will read your message.{call}{visit}",
        "call_us": " To talk to us, call {phone}.",
        "visit": " Your next visit: {url}",
    },
    "es": {
        "started": "{chain}: los mensajes de texto vuelven a estar activos. Responda HELP "
        "para ayuda, STOP para no recibir más. Pueden aplicarse tarifas de mensajes y datos.",
        "help": "{chain}, {location}: mensajes sobre sus citas. Pueden aplicarse tarifas de "
        "mensajes y datos.{call} Responda STOP para no recibir más mensajes.",
        "call": " Ayuda: llame al {phone}.",
        "confirmed": "{chain}: gracias, su cita del {when} en {location} queda confirmada.",
        "nothing_to_confirm": "{chain}: no encontramos ninguna cita próxima que confirmar.{call}",
        "noted": "{chain}: gracias, anotamos {score}/10.",
        "forwarded": "{chain}: gracias, la recepción leerá su mensaje.{call}{visit}",
        "call_us": " Para hablar con nosotros, llame al {phone}.",
        "visit": " Su próxima cita: {url}",
    },
}


def started(clinic: Clinic, language: str) -> str:
    """After START: texts are on again, and how to stop them."""
    return _say(language, "started", chain=clinic.chain_name)


def helped(clinic: Clinic, language: str) -> str:
    """After HELP: who sends the texts, how to reach the clinic, how to stop."""
    texts = _texts(language)
    return _say(
        language,
        "help",
        chain=clinic.chain_name,
        location=clinic.location_name,
        call=_call(texts["call"], clinic),
    )


def confirmed(clinic: Clinic, language: str, *, when: str) -> str:
    """After Y or C: the visit it confirmed, by its local time (``messages.when_local``)
    and place."""
    return _say(
        language, "confirmed", chain=clinic.chain_name, when=when, location=clinic.location_name
    )


def nothing_to_confirm(clinic: Clinic, language: str) -> str:
    """After Y or C from a client with no visit ahead: say so, and the clinic's number."""
    texts = _texts(language)
    return _say(
        language,
        "nothing_to_confirm",
        chain=clinic.chain_name,
        call=_call(texts["call_us"], clinic),
    )


def noted(clinic: Clinic, language: str, *, score: int) -> str:
    """After a pain score that answered the latest check-in."""
    return _say(language, "noted", chain=clinic.chain_name, score=str(score))


def forwarded(clinic: Clinic, language: str, *, visit_url: str | None) -> str:
    """After any other text: the front desk will read it; the clinic's number, and the
    page of the client's next visit when there is one."""
    texts = _texts(language)
    visit = texts["visit"].format(url=visit_url) if visit_url else ""
    return _say(
        language,
        "forwarded",
        chain=clinic.chain_name,
        call=_call(texts["call_us"], clinic),
        visit=visit,
    )


def _texts(language: str) -> dict[str, str]:
    return _TEXTS[language_of(language)]


def _call(template: str, clinic: Clinic) -> str:
    return template.format(phone=clinic.phone) if clinic.phone else ""


def _say(language: str, name: str, **values: str) -> str:
    return sms_text(_texts(language)[name].format(**values))
