"""The shared vocabulary of DESIGN.md: every code that appears in the intake
document, in HTTP bodies and in events. Unknown codes are rejected (422 or
dead letter), never silently dropped."""

from typing import Final, Literal, get_args

Region = Literal[
    "head",
    "jaw",
    "neck",
    "shoulder",
    "shoulder_blade",
    "upper_back",
    "mid_back",
    "low_back",
    "glute",
    "hip",
    "arm",
    "elbow",
    "forearm",
    "wrist_hand",
    "thigh",
    "knee",
    "leg",
    "foot",
]
Side = Literal["left", "right", "both", "center"]
Quality = Literal[
    "deep", "ache", "dull", "sharp", "tender", "shooting", "tingling", "numbness", "burning"
]
ContraindicationCode = Literal[
    "recent_surgery",
    "acute_injury_inflammation",
    "malignancy",
    "undiagnosed_lump",
    "dvt",
    "severe_osteoporosis",
    "acute_infection",
    "skin_condition",
]
PrecautionCode = Literal[
    "pregnancy",
    "varicose_veins",
    "hypertension",
    "blood_thinners",
    "reduced_sensation_medication",
]
Modality = Literal["nmt", "fmm", "either"]
ScreeningOutcome = Literal["clear", "modify", "defer", "refer"]
Condition = Literal["acute", "chronic"]
MedicalCheckOutcome = Literal["cleared", "override", "not_cleared"]
NotificationKind = Literal[
    "reminder",
    "aftercare",
    "checkin",
    "waitlist_offer",
    "plan_summary",
    "referral",
    # a plan's visits placed (the series, what waits, what happens next)
    "booking_confirmation",
    # visits the clinic or the planner moved, cancelled or added, one per plan change
    "visit_change",
    # a plan outcome the client must know: reassessment, taper, referral, completed
    "plan_update",
    # a waitlist offer the client accepted: the visit it booked
    "offer_accepted",
]
Channel = Literal["email", "sms", "webhook", "console"]
# why a notification.suppressed was not sent: nothing consented, STOP texted, no
# address (or, after the wait for one, no contact at all), no channel configured,
# the per-client rate limit, a reminder too near its visit to be sent late
SUPPRESSION_REASONS = (
    "no_consent",
    "sms_stopped",
    "no_contact_data",
    "no_channel",
    "rate_limited",
    "too_late",
)
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
TimeOfDay = Literal["morning", "afternoon", "evening"]
Role = Literal["frontdesk", "therapist", "ops", "admin", "service"]
TriggerPointType = Literal["active", "latent"]
TissueType = Literal["myofascial", "cutaneous", "fascial", "ligamentous", "periosteal"]
CancelledBy = Literal["client", "clinic"]
# what made a visit.cancelled: the client or the front desk asking, a plan revised or
# completed, the make-up rule moving the course up, staff no longer available
CancelCause = Literal[
    "client", "clinic", "plan_revised", "plan_completed", "makeup", "staff_unavailable"
]
# how a client confirmed a visit: the message's link, a text reply, the front desk
ConfirmedVia = Literal["link", "sms", "staff"]
# what a client's text asks for (services/notifier/sms_inbound.py)
ReplyIntent = Literal["stop", "start", "help", "score", "confirm", "other"]
# a dated exception to a therapist's regular hours (clinic.directory): days or hours
# off, off sick, a shift added, the day's hours changed
StaffExceptionKind = Literal["time_off", "sick", "extra_shift", "changed_hours"]

WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
NERVE_SIGN_QUALITIES: frozenset[Quality] = frozenset({"tingling", "numbness", "burning"})
"""DOMAIN.md section 1: these qualities suggest nerve compression/entrapment."""

# what a visit event means for the location's bookings: the outcome words of the
# clinicflow_bookings_total metric and of the ops dashboard
BOOKING_OUTCOMES: Final = {
    "visit.booked": "booked",
    "visit.rescheduled": "rescheduled",
    "booking.waitlisted": "waitlisted",
    "waitlist.offered": "offered",
    "visit.cancelled": "cancelled",
    "visit.completed": "completed",
    "visit.no_show": "no_show",
}
