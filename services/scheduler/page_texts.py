"""What the visit and offer pages say, in English and Spanish (pure: texts only).

The pages a message links to (``pages.py``) are the client's: plain words, the
usted form in Spanish, nothing clinical (no condition, technique or precaution;
DESIGN.md "Minimum necessary"). Every language has every text: ``PageTexts`` is one
frozen record per language, so a missing one is a type error, not a blank on a page.
Dates and times come from ``shared/local_time.py``, as in the messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from shared.local_time import language_of


@dataclass(frozen=True)
class PageTexts:
    # the visit page
    visit_title: str
    when: str
    where: str
    status: str
    statuses: Mapping[str, str]  # by the status the calendar shows (confirmation.ShownStatus)
    confirm_ask: str
    confirm_button: str
    confirmed_note: str
    cancel_heading: str
    cancel_late: str  # {hours}
    cancel_on_time: str  # {deadline}
    cancel_button: str
    move_heading: str
    move_none: str
    started_note: str
    cancelled_note: str
    over_note: str
    call: str  # {phone}
    back: str
    # what a button did
    done_title: str
    done_confirmed: str  # {when}
    done_cancelled: str  # {when}
    done_cancelled_late: str
    done_moved: str  # {when}
    refused_title: str
    refusals: Mapping[str, str]  # by commands.Refused.reason; "other" for the rest
    gone_note: str
    # the waitlist offer's page
    offer_title: str
    offer_intro: str
    held_until: str
    accept_button: str
    decline_button: str
    offer_states: Mapping[str, str]  # by backfill.OfferState, but "open"
    done_accepted: str  # {when}
    done_accepted_more: str
    done_declined: str
    offer_gone: str

    def refusal(self, reason: str) -> str:
        """A refusal in plain words; a reason without its own sentence gets the general one."""
        return self.refusals.get(reason, self.refusals["other"])


_TAKEN_EN: Final = "That time was just taken. Please choose another."
_TAKEN_ES: Final = "Esa hora se acaba de ocupar. Por favor, elija otra."
_CLOSED_EN: Final = "The clinic is not open at that time."
_CLOSED_ES: Final = "La clínica no está abierta a esa hora."

ENGLISH: Final = PageTexts(
    visit_title="Your visit",
    when="When",
    where="Where",
    status="Status",
    statuses={
        "booked": "Booked",
        "confirmed": "Confirmed",
        "cancelled": "Cancelled",
        "completed": "Done",
        "no_show": "Missed",
    },
    confirm_ask="Will you come? Please confirm.",
    confirm_button="Confirm my visit",
    confirmed_note="You have confirmed this visit. Thank you.",
    cancel_heading="Cancel",
    cancel_late="Cancelling now counts as a late cancellation: the visit is less than "
    "{hours} hours away.",
    cancel_on_time="Cancelling before {deadline} does not count as late; after that it does.",
    cancel_button="Cancel my visit",
    move_heading="Move to another time",
    move_none="No other time is free for this visit. Please call us to find one.",
    started_note="This visit has started; it can no longer be changed here.",
    cancelled_note="This visit was cancelled.",
    over_note="This visit has taken place.",
    call="Questions? Call us at {phone}.",
    back="Back to your visit",
    done_title="Done",
    done_confirmed="Thank you. Your visit on {when} is confirmed.",
    done_cancelled="Your visit on {when} is cancelled.",
    done_cancelled_late="It counts as a late cancellation.",
    done_moved="Your visit is moved to {when}.",
    refused_title="That could not be done",
    refusals={
        "started": "The visit has already started.",
        "cancelled": "This visit was cancelled.",
        "completed": "This visit has already taken place.",
        "no_show": "This visit is over.",
        "notice": "That time is too soon to book now.",
        "horizon": "That time is too far ahead to book.",
        "closed": _CLOSED_EN,
        "outside_hours": _CLOSED_EN,
        "gap": "That time is too close to another visit of your treatment.",
        "weekly_cap": "Your treatment already has as many visits that week as it allows.",
        "client_busy": "You have another visit at that time.",
        "no_therapist": _TAKEN_EN,
        "no_room": _TAKEN_EN,
        "no_slot": _TAKEN_EN,
        "calendar_changed": _TAKEN_EN,
        "other": "That could not be done now. Please call us.",
    },
    gone_note="This visit was cancelled, so this link no longer changes it.",
    offer_title="A time for you",
    offer_intro="A time opened up for your treatment, and we are holding it for you.",
    held_until="Held for you until",
    accept_button="Accept this time",
    decline_button="No, thank you",
    offer_states={
        "accepted": "You accepted this time; it is booked.",
        "declined": "You declined this time.",
        "lapsed": "The hold has ended; this time is no longer held for you.",
        "withdrawn": "This offer was withdrawn: your treatment plan changed.",
    },
    done_accepted="Booked: your visit on {when}.",
    done_accepted_more="The next visits of your treatment are booked after it.",
    done_declined="Thank you. We will offer this time to someone else; you keep your place "
    "on the waiting list.",
    offer_gone="The visit of this offer was cancelled, so this link no longer acts.",
)

SPANISH: Final = PageTexts(
    visit_title="Su cita",
    when="Cuándo",
    where="Dónde",
    status="Estado",
    statuses={
        "booked": "Reservada",
        "confirmed": "Confirmada",
        "cancelled": "Cancelada",
        "completed": "Realizada",
        "no_show": "No asistió",
    },
    confirm_ask="¿Vendrá? Por favor, confirme.",
    confirm_button="Confirmar mi cita",
    confirmed_note="Usted ya confirmó esta cita. Gracias.",
    cancel_heading="Cancelar",
    cancel_late="Si cancela ahora, cuenta como cancelación tardía: faltan menos de "
    "{hours} horas para la cita.",
    cancel_on_time="Si cancela antes del {deadline}, no cuenta como cancelación tardía; "
    "después, sí.",
    cancel_button="Cancelar mi cita",
    move_heading="Cambiar a otra hora",
    move_none="No hay otra hora libre para esta cita. Llámenos y buscaremos una.",
    started_note="Esta cita ya empezó; ya no se puede cambiar aquí.",
    cancelled_note="Esta cita fue cancelada.",
    over_note="Esta cita ya pasó.",
    call="¿Preguntas? Llámenos al {phone}.",
    back="Volver a su cita",
    done_title="Listo",
    done_confirmed="Gracias. Su cita del {when} está confirmada.",
    done_cancelled="Su cita del {when} está cancelada.",
    done_cancelled_late="Cuenta como cancelación tardía.",
    done_moved="Su cita se cambió al {when}.",
    refused_title="No se pudo hacer",
    refusals={
        "started": "La cita ya empezó.",
        "cancelled": "Esta cita fue cancelada.",
        "completed": "Esta cita ya se realizó.",
        "no_show": "Esta cita ya pasó.",
        "notice": "Esa hora está demasiado cerca para reservarla ahora.",
        "horizon": "Esa hora está demasiado lejos para reservarla.",
        "closed": _CLOSED_ES,
        "outside_hours": _CLOSED_ES,
        "gap": "Esa hora está demasiado cerca de otra cita de su tratamiento.",
        "weekly_cap": "Su tratamiento ya tiene todas las citas que permite esa semana.",
        "client_busy": "Usted tiene otra cita a esa hora.",
        "no_therapist": _TAKEN_ES,
        "no_room": _TAKEN_ES,
        "no_slot": _TAKEN_ES,
        "calendar_changed": _TAKEN_ES,
        "other": "No se pudo hacer ahora. Por favor, llámenos.",
    },
    gone_note="Esta cita fue cancelada; este enlace ya no la cambia.",
    offer_title="Una hora para usted",
    offer_intro="Se liberó una hora para su tratamiento y se la estamos reservando.",
    held_until="Reservada para usted hasta el",
    accept_button="Aceptar esta hora",
    decline_button="No, gracias",
    offer_states={
        "accepted": "Usted aceptó esta hora; ya está reservada.",
        "declined": "Usted rechazó esta hora.",
        "lapsed": "La reserva terminó; esta hora ya no está reservada para usted.",
        "withdrawn": "Esta oferta se retiró: su plan de tratamiento cambió.",
    },
    done_accepted="Reservada: su cita del {when}.",
    done_accepted_more="Las siguientes citas de su tratamiento quedan reservadas después de esta.",
    done_declined="Gracias. Ofreceremos esta hora a otra persona; usted conserva su lugar "
    "en la lista de espera.",
    offer_gone="La cita de esta oferta fue cancelada; este enlace ya no sirve.",
)

TEXTS: Final[Mapping[str, PageTexts]] = {"en": ENGLISH, "es": SPANISH}


def texts_for(lang: str | None) -> tuple[str, PageTexts]:
    """The page language of a ``lang`` query parameter (``es-MX`` -> es; unknown or
    none -> en) and its texts."""
    language = language_of(lang)
    return language, TEXTS.get(language, ENGLISH)


__all__ = ["ENGLISH", "SPANISH", "TEXTS", "PageTexts", "texts_for"]
