"""A remote sandbox behind the local one's interface: a Piston-compatible ``/api/v2/execute`` endpoint.

::

    task_options: {sandbox: {url: http://localhost:2000/api/v2/execute, language: python, version: "3.10.0"}}

Each program is one POST (``language``, ``version``, ``files``, ``stdin``, ``run_timeout`` and
``run_memory_limit`` from the limits); the reply's ``run`` (stdout, stderr, code, signal) becomes a
:class:`~r1lab.code.sandbox.ProgramResult`. Isolation is the executor's. stdin/stdout tests are compared here, as
with the local sandbox. Assert tests run program and tests as one script (:mod:`r1lab.code._remote_harness`):
an executor has no second process to judge from, so a program there *can* tamper with its tests — prefer the
remote backend for stdin/stdout problems or trusted programs. An unreachable or failing endpoint fails the
program's tests (``status`` backend_error, logged once) rather than the run.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from r1lab.code import _testcode
from r1lab.code.sandbox import JudgedResult, ProgramResult, SandboxLimits, read_verdicts
from r1lab.errors import UserError

logger = logging.getLogger("r1lab")

HERE = os.path.dirname(os.path.abspath(__file__))
HTTP_SLACK_SECONDS = 30  # on top of the run's wall limit: queueing and transfer at the executor


def remote_harness_source() -> str:
    """The harness script with _testcode's source inlined (one file for the executor)."""
    with open(os.path.join(HERE, "_remote_harness.py"), encoding="utf-8") as handle:
        harness = handle.read()
    with open(os.path.join(HERE, "_testcode.py"), encoding="utf-8") as handle:
        testcode = handle.read()
    return harness.replace(
        "TESTCODE = None  # replaced by r1lab with _testcode.py's source before sending", f"TESTCODE = {testcode!r}"
    )


def piston_request(source: str, stdin: str, limits: SandboxLimits, language: str, version: str) -> dict[str, Any]:
    return {
        "language": language,
        "version": version,
        "files": [{"name": "main.py", "content": source}],
        "stdin": stdin,
        "args": [],
        "run_timeout": int(limits.wall_seconds * 1000),
        "run_memory_limit": int(limits.memory_bytes),
    }


def result_from_reply(reply: dict[str, Any], seconds: float, output_cap: int) -> ProgramResult:
    """A Piston reply's ``run`` → ProgramResult (a run killed by a signal, e.g. at the time limit, is ``signal``)."""
    run = reply.get("run")
    if not isinstance(run, dict):
        message = reply.get("message") or "no run in the reply"
        return ProgramResult("backend_error", None, "", str(message)[:500], seconds)
    stdout, stderr = str(run.get("stdout") or ""), str(run.get("stderr") or "")
    code, signal_name = run.get("code"), run.get("signal")
    if len(stdout) > output_cap:
        status = "output_limit"
    elif signal_name:
        status = "signal"
    else:
        status = "ok" if code == 0 else "exit"
    return ProgramResult(
        status,
        code if isinstance(code, int) else None,
        stdout[:output_cap],
        stderr[:output_cap],
        seconds,
        {"backend": "piston", "signal": signal_name},
    )


class PistonSandbox:
    name = "piston"
    tamper_proof_asserts = False

    def __init__(
        self,
        url: str,
        limits: SandboxLimits | None = None,
        workers: int | None = None,
        language: str = "python",
        version: str = "*",
        headers: dict[str, str] | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise UserError(f"sandbox url must start with http:// or https://, got {url!r}")
        self.url = url
        self.limits = (limits or SandboxLimits()).check()
        self.language, self.version = language, version
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.workers = workers or 4
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="r1lab-piston")
        self.warned = False

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(self.pool.map(function, items))

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def __enter__(self) -> PistonSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def isolation(self) -> dict[str, Any]:
        result = self.run_program("print('ok')")
        if result.stdout.strip() != "ok":
            raise UserError(
                f"code sandbox at {self.url}: a trivial program failed ({result.status}): {result.stderr.strip()[:200]}"
            )
        return {"backend": "piston", "url": self.url, "isolation": "the executor's"}

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.limits.wall_seconds + HTTP_SLACK_SECONDS) as response:
                return json.loads(response.read().decode("utf-8", errors="replace"))
        except urllib.error.HTTPError as error:
            try:
                return json.loads(error.read().decode("utf-8", errors="replace")) | {"status": error.code}
            except ValueError:
                return {"message": f"HTTP {error.code}"}
        except (urllib.error.URLError, OSError, ValueError) as error:
            return {"message": f"cannot reach {self.url}: {getattr(error, 'reason', error)}"}

    def run_program(self, source: str, stdin: str = "", files: dict[str, str] | None = None) -> ProgramResult:
        started = time.monotonic()
        body = piston_request(source, stdin, self.limits, self.language, self.version)
        for name, text in (files or {}).items():
            body["files"].append({"name": name, "content": text})
        result = result_from_reply(
            self._post(body), round(time.monotonic() - started, 3), int(self.limits.output_bytes)
        )
        if result.status == "backend_error" and not self.warned:
            self.warned = True
            logger.warning(
                "r1lab: the code sandbox at %s failed a run (its tests count as failed): %s", self.url, result.stderr
            )
        return result

    def run_judged(self, preamble: str, source: str, spec: dict[str, Any]) -> JudgedResult:
        expected = (
            len(spec["statements"])
            if spec["style"] == "list"
            else _testcode.count_tests(spec["test_code"], spec["style"] == "check")
        )
        token = secrets.token_hex(16)
        payload = json.dumps({"preamble": preamble, "source": source, "spec": spec, "token": token})
        result = self.run_program(remote_harness_source(), stdin=payload)
        passed, status, detail = read_verdicts(result.stdout, token, expected)
        if status != "done" and result.status != "ok":
            status, detail = result.status, f"{result.status}: {(result.stderr.strip().splitlines() or [''])[-1][:200]}"
        return JudgedResult(passed, status, detail, result.seconds, "")
