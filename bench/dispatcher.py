"""The notifier's send path: a backlog of due e-mails through one checkout's
dispatcher into a real SMTP server, per checkout, in one run.

    .venv/bin/python -m bench.dispatcher [--tree /tmp/cf-before --tree .]
        [--backlog 10000] [--clients 2000] [--concurrency 8]

Each checkout gets a Redis namespace of its own, the same embedded broker (the
dispatcher publishes what it sent) and the same SMTP server, an aiosmtpd process
of its own (bench/_smtp_sink.py) that logs each message and each connection as it
takes them. A child process (bench/_dispatch_child.py, with the checkout first on
``PYTHONPATH``) arms ``--backlog`` reminders, all due, for ``--clients`` clients
who take e-mail, then starts that checkout's dispatcher and waits until nothing is
due or claimed. The rate limits are set out of the way (the bench is about the
send path, not the policy).

What each figure means:
- *messages sent per second*: the backlog divided by the time from the
  dispatcher's start to the SMTP server's last message;
- *send lag p50 / p99*: from the dispatcher's start (when the whole backlog was
  due) to the SMTP server taking each message;
- *CPU ms per message*: the dispatcher process's user + system time over that
  span, per message (the broker and the SMTP server not included);
- *SMTP connections per 1,000 messages*, and *Redis round trips per message*
  (``clinicflow_redis_round_trips_total`` in the child);
- *the provider's answer* and *acceptance -> its record*: the dispatcher's
  ``clinicflow_notification_send_seconds`` and ``..._record_seconds`` (the window a
  kill can turn into an unknown outcome), as the upper bound of the histogram
  bucket the percentile falls in; ``n/a`` for code without them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench._load import percentile
from bench.pipeline import PROJECT_ROOT, tree_label
from shared.infra import free_port, local_infra

DEMO_CHAIN = PROJECT_ROOT / "deploy" / "dev" / "chain.yaml"


@dataclass(frozen=True)
class Figures:
    label: str
    messages: int
    per_second: float
    lag_p50_s: float | None
    lag_p99_s: float | None
    cpu_ms_per_message: float
    connections_per_1000: float
    round_trips_per_message: float
    # bucket upper bounds (None for a checkout without these histograms)
    send_p99_s: float | None
    record_p50_s: float | None
    record_p99_s: float | None


def _sink_lines(log: Path, since: float) -> tuple[dict[str, list[float]], int]:
    """The messages the sink took after ``since`` (the times of each Message-ID), and
    the connections it was opened."""
    mails: dict[str, list[float]] = {}
    sessions = 0
    for line in log.read_text().splitlines():
        kind, at, *rest = line.split(" ")
        if float(at) < since:
            continue
        if kind == "mail":
            mails.setdefault(rest[0], []).append(float(at))
        else:
            sessions += 1
    return mails, sessions


def measure(tree: Path, *, env: dict[str, str], log: Path, backlog: int, clients: int) -> Figures:
    # the child runs as a script of this checkout, importing the measured tree's code
    child_env = {
        **env,
        "PYTHONPATH": str(tree),
        "CLINICFLOW_REDIS_NAMESPACE": f"bench-dispatch-{uuid.uuid4().hex[:8]}",
    }
    argv = [sys.executable, str(PROJECT_ROOT / "bench" / "_dispatch_child.py")]
    argv += ["--backlog", str(backlog), "--clients", str(clients), "--run", uuid.uuid4().hex[:8]]
    done = subprocess.run(
        argv, cwd=tree, env=child_env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the dispatcher of {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    started = result["started"]
    mails, sessions = _sink_lines(log, started)
    if len(mails) < backlog:
        raise RuntimeError(f"{tree}: the SMTP server took {len(mails)} of {backlog}")
    if twice := [message_id for message_id, times in mails.items() if len(times) > 1]:
        raise RuntimeError(f"{tree}: {len(twice)} messages arrived twice, e.g. {twice[0]}")
    lags = [times[0] - started for times in mails.values()]
    return Figures(
        label=tree_label(tree),
        messages=len(mails),
        per_second=len(mails) / max(lags),
        lag_p50_s=percentile(lags, 50),
        lag_p99_s=percentile(lags, 99),
        cpu_ms_per_message=1000 * result["cpu_s"] / len(mails),
        connections_per_1000=1000 * sessions / len(mails),
        round_trips_per_message=result["round_trips"] / len(mails),
        send_p99_s=result.get("send_s", {}).get("p99"),
        record_p50_s=result.get("record_s", {}).get("p50"),
        record_p99_s=result.get("record_s", {}).get("p99"),
    )


def _cell(value: float | None, form: str) -> str:
    if value is None:
        return "n/a"
    return f"{1000 * value:g}" if form == "ms" else form.format(value)


def table(figures: list[Figures]) -> str:
    rows = [
        ("messages sent per second", "per_second", "{:,.0f}"),
        ("send lag p50 s", "lag_p50_s", "{:,.1f}"),
        ("send lag p99 s", "lag_p99_s", "{:,.1f}"),
        ("CPU ms per message (dispatcher)", "cpu_ms_per_message", "{:,.2f}"),
        ("SMTP connections per 1,000 messages", "connections_per_1000", "{:,.0f}"),
        ("Redis round trips per message", "round_trips_per_message", "{:,.1f}"),
        ("provider's answer p99 ms, at most", "send_p99_s", "ms"),
        ("acceptance -> its record p50 ms, at most", "record_p50_s", "ms"),
        ("acceptance -> its record p99 ms, at most", "record_p99_s", "ms"),
    ]
    head = "| figure | " + " | ".join(f"{f.label} (N={f.messages:,})" for f in figures) + " |"
    lines = [head, "|---" * (len(figures) + 1) + "|"]
    for name, attribute, form in rows:
        cells = " | ".join(_cell(getattr(f, attribute), form) for f in figures)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def run(
    trees: list[Path], *, backlog: int, clients: int, concurrency: int, workdir: Path
) -> list[Figures]:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "sink.log"
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench._smtp_sink", "--port", str(port), "--log", str(log)],
        cwd=PROJECT_ROOT,
    )
    try:
        _wait_listening(port, sink)
        environment = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
        with local_infra(workdir=workdir / "infra", env=environment) as infra:
            env = {
                **environment,
                **infra.environment(),
                "CLINICFLOW_CHAIN_CONFIG": str(DEMO_CHAIN),
                "CLINICFLOW_ENV": "test",
                "CLINICFLOW_LOG_LEVEL": "WARNING",
                "NOTIFIER_SMTP_HOST": "127.0.0.1",
                "NOTIFIER_SMTP_PORT": str(port),
                "NOTIFIER_SMTP_SECURITY": "none",
                "NOTIFIER_EMAIL_FROM": "care@northwest-nmt.example",
                "NOTIFIER_CLIENT_MAX_PER_HOUR": "1000000",
                "NOTIFIER_GLOBAL_MAX_PER_MINUTE": "1000000",
                "NOTIFIER_SEND_CONCURRENCY": str(concurrency),
            }
            return [measure(t, env=env, log=log, backlog=backlog, clients=clients) for t in trees]
    finally:
        sink.terminate()
        sink.wait(timeout=10)


def _wait_listening(port: int, sink: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if sink.poll() is not None:
            raise RuntimeError("the SMTP sink exited while starting")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the SMTP sink did not listen within 20 s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", type=Path, help="a checkout (repeat)")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    trees = [t.resolve() for t in (args.tree or [PROJECT_ROOT])]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-dispatcher-"))
    started = time.monotonic()
    figures = run(
        trees,
        backlog=args.backlog,
        clients=args.clients,
        concurrency=args.concurrency,
        workdir=workdir,
    )
    print(f"\n{table(figures)}\n\n(bench ran {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
