"""Which port each service of ``clinicflow up`` gets, and the check that it is free."""

from __future__ import annotations

import socket

import pytest

from shared.infra import free_port
from shared.stack import (
    SERVICE_PORTS,
    PortSettingError,
    PortTaken,
    check_ports_free,
    port_is_free,
    ports_from_environment,
)


def test_without_variables_every_service_keeps_its_default_port() -> None:
    assert ports_from_environment({}) == SERVICE_PORTS
    assert ports_from_environment({}) == {
        "intake": 8001,
        "planner": 8002,
        "scheduler": 8003,
        "notifier": 8004,
        "dashboard": 8000,
    }


def test_each_service_takes_its_own_variable() -> None:
    chosen = ports_from_environment({"PLANNER_PORT": "9102", "DASHBOARD_PORT": " 9100 "})
    assert chosen == {**SERVICE_PORTS, "planner": 9102, "dashboard": 9100}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("eighty", "INTAKE_PORT='eighty' is not a port number"),
        ("", "INTAKE_PORT='' is not a port number"),
        ("80.5", "INTAKE_PORT='80.5' is not a port number"),
        ("0", "INTAKE_PORT=0 is out of range (1-65535)"),
        ("65536", "INTAKE_PORT=65536 is out of range (1-65535)"),
        ("-1", "INTAKE_PORT=-1 is out of range (1-65535)"),
    ],
)
def test_a_value_that_is_no_port_is_refused_by_name(value: str, said: str) -> None:
    with pytest.raises(PortSettingError) as refused:
        ports_from_environment({"INTAKE_PORT": value})
    assert str(refused.value) == said


def test_two_services_on_one_port_are_refused() -> None:
    with pytest.raises(PortSettingError) as refused:
        ports_from_environment({"NOTIFIER_PORT": "8002"})
    assert str(refused.value) == (
        "planner and notifier would share port 8002: set PLANNER_PORT or NOTIFIER_PORT"
    )


def test_a_listening_port_is_taken_and_named_with_its_variable() -> None:
    free = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        assert not port_is_free("127.0.0.1", taken)
        assert port_is_free("127.0.0.1", free)
        with pytest.raises(PortTaken) as refused:
            check_ports_free({"intake": free, "scheduler": taken}, "127.0.0.1")
        assert str(refused.value) == (
            f"port {taken} for scheduler is in use on 127.0.0.1: set SCHEDULER_PORT to a free port"
        )
        # every address: a listener on one address takes the port for 0.0.0.0 too
        assert not port_is_free("0.0.0.0", taken)
    assert port_is_free("127.0.0.1", taken)
    check_ports_free({"intake": free, "scheduler": taken}, "127.0.0.1")
