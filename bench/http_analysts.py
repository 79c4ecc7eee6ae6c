"""Simulated analysts over HTTP: gunicorn serving the site, and threads that work the queue page.

Shared by the queue latency benchmark (`bench/queue_latency.py --http`) and the fault suite
(`tests/faults/`). Each analyst is a keep-alive HTTP client with its session and CSRF cookies:
it opens the queue page, then answers each card by POSTing the queue form as htmx does and
takes the next card from the response. Every POST is recorded as an `Answer` (status 0 when no
response came), with the submission id of the card it answered, so a caller can check that every
acknowledged answer was stored, and which cases each analyst saw.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKET = re.compile(r'name="ticket" value="([^"]+)"')
SUBMISSION = re.compile(r'data-submission="([^"]+)"')
CASE_ID = re.compile(r'class="muted case-id" dir="auto">([^<]+)<')
_COOKIE = re.compile(r"(csrftoken|sessionid)=([^;]+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(
    port: int,
    *,
    env: dict[str, str] | None = None,
    workers: int = 3,
    threads: int = 1,
    access_log: str | None = None,
    output: Path | None = None,
    ready_timeout: float = 60,
) -> subprocess.Popen[bytes]:
    """gunicorn serving the site on 127.0.0.1:`port` (demo mode, DEBUG off unless `env` says),
    once /healthz answers 200; its own output (errors, logs) to `output` when given."""
    run_env = {"WORKBENCH_MODE": "demo", "DEBUG": "false", **(env or os.environ)}
    sink = output.open("ab") if output is not None else None
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "workbench.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            "--access-logfile",
            access_log or "/dev/null",
        ],
        cwd=ROOT,
        env=run_env,
        stdout=sink,
        stderr=subprocess.STDOUT if sink is not None else None,
    )
    if sink is not None:
        sink.close()  # the child holds its own descriptor
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    stop_gunicorn(proc)
    raise RuntimeError(f"gunicorn did not answer /healthz within {ready_timeout:.0f} s")


def stop_gunicorn(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Browser:
    """One analyst's keep-alive HTTP connection with its cookies (session, CSRF)."""

    def __init__(self, port: int, session_key: str, timeout: float = 30) -> None:
        self.port = port
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookies = {"sessionid": session_key}

    def request(
        self, method: str, path: str, body: dict | None = None, htmx: bool = False
    ) -> tuple[int, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
            headers["Origin"] = f"http://127.0.0.1:{self.port}"
        if htmx:
            headers["HX-Request"] = "true"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.reconnect()
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            match = _COOKIE.match(header)
            if match:
                self.cookies[match.group(1)] = match.group(2)
        return response.status, payload

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)


def login_sessions(analysts: Sequence, project) -> list[str]:
    """A logged-in session key per analyst (as the login page would make), made members of
    `project` as analysts."""
    from django.test import Client

    from labeling.models import ProjectMembership

    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=project, user=a, role="analyst") for a in analysts],
        ignore_conflicts=True,
    )
    keys = []
    for analyst in analysts:
        client = Client()
        client.force_login(analyst)
        keys.append(client.cookies["sessionid"].value)
    return keys


@dataclass(frozen=True)
class Answer:
    """One POST of the queue form: who, which card (its submission id and case), the status
    (0: no response), the round trip in ms and the response's size."""

    analyst: int
    submission: str
    case: str
    status: int
    ms: float
    size: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class Crowd:
    """What a run of analysts did: their answers, the pages that failed, errors that stopped one."""

    answers: list[Answer] = field(default_factory=list)
    failed_pages: list[tuple[int, int]] = field(default_factory=list)  # (status, analyst)
    errors: list[BaseException] = field(default_factory=list)
    seen: dict[str, set[int]] = field(default_factory=dict)  # case -> analysts shown it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> list[Answer]:
        return [a for a in self.answers if 200 <= a.status < 300]

    def server_errors(self) -> list[int]:
        statuses = [a.status for a in self.answers] + [s for s, _ in self.failed_pages]
        return [s for s in statuses if s >= 500]


def run_analysts(
    *,
    port: int,
    session_keys: Sequence[str],
    project_slug: str,
    label_id: int,
    duration: float,
    think: tuple[float, float],
    tolerate_errors: bool = False,
    on_answer: Callable[[Answer], None] | None = None,
) -> Crowd:
    """One thread per session key answers cards with `label_id` for `duration` seconds, waiting
    `think` (uniform range, seconds) before each answer.

    Without `tolerate_errors` an answer that is not 200 stops the run with an error (the
    benchmark's rule); with it, a failed answer or page is recorded and the analyst reloads the
    queue page after a second and goes on (what a person does during an outage)."""
    crowd = Crowd()
    stop = threading.Event()
    queue_path = f"/projects/{project_slug}/queue/"
    submit_path = f"{queue_path}submit/"

    def see(k: int, page: bytes) -> None:
        case = CASE_ID.search(page.decode())
        with crowd.lock:
            crowd.seen.setdefault(case.group(1) if case else "?", set()).add(k)

    def load_page(browser: Browser, k: int) -> bytes | None:
        while not stop.is_set():
            try:
                status, page = browser.request("GET", queue_path)
            except (OSError, http.client.HTTPException):
                status, page = 0, b""
            if status == 200:
                return page
            with crowd.lock:
                crowd.failed_pages.append((status, k))
            if not tolerate_errors:
                raise AssertionError(f"queue page answered {status}: {page[:300]!r}")
            stop.wait(1.0)
        return None

    def analyst(k: int, rng: random.Random) -> None:
        try:
            browser = Browser(port, session_keys[k])
            page = load_page(browser, k)
            stop.wait(rng.uniform(0, think[1]))
            while page is not None and not stop.is_set():
                text = page.decode()
                ticket, submission = TICKET.search(text), SUBMISSION.search(text)
                if ticket is None or submission is None:
                    return  # nothing left to label
                see(k, page)
                form = {"ticket": ticket.group(1), "label": label_id, "duration_ms": 4000}
                t0 = time.perf_counter()
                try:
                    status, reply = browser.request("POST", submit_path, form, htmx=True)
                except (OSError, http.client.HTTPException):
                    status, reply = 0, b""
                case = CASE_ID.search(text)
                answer = Answer(
                    analyst=k,
                    submission=submission.group(1),
                    case=case.group(1) if case else "?",
                    status=status,
                    ms=(time.perf_counter() - t0) * 1000,
                    size=len(reply),
                )
                with crowd.lock:
                    crowd.answers.append(answer)
                if on_answer is not None:
                    on_answer(answer)
                if status == 200:
                    page = reply
                elif tolerate_errors:
                    stop.wait(1.0)
                    page = load_page(browser, k)
                else:
                    raise AssertionError(f"answer got {status}: {reply[:300]!r}")
                stop.wait(rng.uniform(*think))
        except BaseException as exc:
            with crowd.lock:
                crowd.errors.append(exc)
            if not tolerate_errors:
                stop.set()

    threads = [
        threading.Thread(target=analyst, args=(k, random.Random(100 + k)), daemon=True)
        for k in range(len(session_keys))
    ]
    for thread in threads:
        thread.start()
    stop.wait(duration)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return crowd
