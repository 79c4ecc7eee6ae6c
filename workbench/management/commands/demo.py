"""`manage.py demo`: set up the embedded default and run web server, worker and beat until Ctrl-C.

Safe to run twice: migrations, users, project and schedules are created only when missing.
The children live no longer than this process: SIGINT/SIGTERM is forwarded and waited for, and
the kernel sends them SIGTERM if this process dies any other way (even by SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from workbench.core.stopping import die_with_parent

# Long enough for a worker to hand its retrain back (WORKER_STOP_SECONDS) before a SIGKILL.
STOP_WAIT_SECONDS = 30


def _free_port(preferred: int) -> int:
    for port in [preferred, *range(preferred + 1, preferred + 50)]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Command(BaseCommand):
    help = "Set up the demo (SQLite, filesystem broker, demo data) and run it until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--setup-only", action="store_true", help="Prepare, then exit.")

    def handle(self, *args: Any, port: int, setup_only: bool, **options: Any) -> None:
        from active_learning.selectors import champion_of
        from active_learning.services.retrain_requests import retrain_start
        from active_learning.services.schedules import schedules_ensure
        from labeling.services.demo import demo_project_ensure, demo_users_ensure

        var = Path(settings.VAR_DIR)
        self.stdout.write("Preparing the database and static files...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        creds = demo_users_ensure(credentials_path=var / "demo_credentials.json")
        project = demo_project_ensure()
        schedules_ensure()
        self.stdout.write(f"Project '{project.name}' ready ({project.cases.count()} cases).")
        if champion_of(project=project) is None and retrain_start(project=project, reason="demo"):
            self.stdout.write(
                "The first model trains in the background (about two minutes): follow it on "
                "the status page; the queue fills as soon as it is ready."
            )
        if setup_only:
            return
        self._run(port=_free_port(port), creds=creds, logs=var / "logs")

    def _run(self, *, port: int, creds: dict[str, str], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        commands = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "workbench.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "workbench",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=INFO",
            ],
            # Short jobs (the minute tick, small imports, the status page's ping) do not wait
            # behind a retrain: a worker of their own.
            "short-worker": [
                python,
                "-m",
                "celery",
                "-A",
                "workbench",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--queues=short",
                "--hostname=short@%h",
                "--loglevel=INFO",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "workbench",
                "beat",
                "--loglevel=INFO",
                "--schedule",
                str(logs / "beat-schedule"),
            ],
        }
        procs: dict[str, subprocess.Popen[bytes]] = {}
        me = os.getpid()
        for name, cmd in commands.items():
            out = (logs / f"{name}.log").open("ab")
            procs[name] = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches them only through us, in order
                preexec_fn=lambda: die_with_parent(signal.SIGTERM, parent_pid=me),
            )
        url = f"http://127.0.0.1:{port}/"
        self._wait_for_web(port, procs["web"])
        self.stdout.write(self.style.SUCCESS(f"\nThe workbench is running at {url}"))
        self.stdout.write("Log in as:")
        for name, password in creds.items():
            self.stdout.write(f"  {name:<9} password {password}")
        self.stdout.write(f"Logs in {logs}/. Press Ctrl-C to stop web server, worker and beat.\n")
        self.stdout.flush()

        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(
                            f"{name} exited with {proc.returncode}; see {logs / (name + '.log')}"
                        )
                        stopping = True
                time.sleep(0.5)
        finally:
            self.stdout.write("Stopping...")
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            self.stdout.write("Stopped.")

    def _wait_for_web(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.3)
