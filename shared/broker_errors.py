"""Which publish failures pass and which never will (pure).

A transient failure (the broker unreachable, a timeout, a leader moving) goes away
on its own: the record is fine and retrying it is right. A permanent one is the
broker saying no to *this* send (too large, an invalid topic, not authorised):
the same bytes to the same topic get the same answer however often they are sent,
so a consumer that retries it stops its partition for good.

Unknown errors count as transient: waiting on a broker that may recover loses
nothing, dropping accepted work does.
"""

from __future__ import annotations

from typing import Literal

from aiokafka import errors

Kind = Literal["transient", "permanent"]

# the send itself is refused; the class name travels in the dead letter's reason
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    # size: the producer's max_request_size, the broker's message.max.bytes, a batch
    errors.MessageSizeTooLargeError,
    errors.RecordTooLargeError,
    errors.RecordListTooLargeError,
    # the record or the topic is not acceptable as it is
    errors.InvalidTopicError,
    errors.InvalidTimestampError,
    errors.CorruptRecordException,
    errors.UnsupportedForMessageFormatError,
    errors.PolicyViolationError,
    errors.InvalidRequestError,
    # not allowed
    errors.TopicAuthorizationFailedError,
    errors.ClusterAuthorizationFailedError,
    errors.TransactionalIdAuthorizationFailed,
    errors.AuthenticationFailedError,
    errors.SaslAuthenticationFailed,
)

# named so the choice is visible; anything not permanent is retried anyway
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    errors.KafkaConnectionError,
    errors.NoBrokersAvailable,
    errors.NodeNotReadyError,
    errors.KafkaTimeoutError,
    errors.RequestTimedOutError,
    errors.NotLeaderForPartitionError,
    errors.LeaderNotAvailableError,
    errors.UnknownTopicOrPartitionError,  # also while a topic is being created
    errors.NotEnoughReplicasError,
    errors.NotEnoughReplicasAfterAppendError,
    errors.KafkaStorageError,
    errors.BrokerNotAvailableError,
    errors.StaleMetadata,
    TimeoutError,
    ConnectionError,
)


def publish_failure_kind(exc: BaseException) -> Kind:
    """``permanent`` when sending the same record again cannot succeed, else ``transient``."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return "transient"
    return "permanent" if isinstance(exc, PERMANENT_ERRORS) else "transient"
