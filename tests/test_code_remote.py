"""The Piston-compatible remote backend, against a local fake executor (the protocol only: the fake runs
programs with plain subprocess, no isolation)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from r1lab.code.judging import run_tests
from r1lab.code.problems import CodeProblem
from r1lab.code.remote import PistonSandbox
from r1lab.code.sandbox import SandboxLimits
from r1lab.tasks import TaskSpec, get_task
from r1lab.templates import get_template


class FakePiston(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakePiston.requests.append(body)
        if self.path != "/api/v2/execute" or body.get("language") != "python":
            return self.reply(400, {"message": f"{body.get('language')}-{body.get('version')} runtime is unknown"})
        with tempfile.TemporaryDirectory() as folder:
            for item in body["files"]:
                with open(f"{folder}/{item['name']}", "w", encoding="utf-8") as handle:
                    handle.write(item["content"])
            try:
                done = subprocess.run(
                    [sys.executable, "-I", "-S", body["files"][0]["name"]],
                    input=body["stdin"],
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    timeout=body["run_timeout"] / 1000,
                )
                run = {"stdout": done.stdout, "stderr": done.stderr, "code": done.returncode, "signal": None}
            except subprocess.TimeoutExpired:
                run = {"stdout": "", "stderr": "", "code": None, "signal": "SIGKILL"}
        run["output"] = run["stdout"] + run["stderr"]
        self.reply(200, {"language": "python", "version": "3.11.0", "run": run})

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def piston_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePiston)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v2/execute"
    server.shutdown()
    thread.join()


LIMITS = SandboxLimits(wall_seconds=2.0)
ADD = CodeProblem(
    "assert",
    test_code="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n",
    entry_point="add",
)
SUM = CodeProblem("stdio", cases=(("1 2\n", "3\n"), ("2 2\n", "4\n")))


def test_request_and_results(piston_url):
    with PistonSandbox(piston_url, LIMITS) as box:
        FakePiston.requests.clear()
        result = box.run_program("print(input()[::-1])", stdin="abc\n")
        assert (result.status, result.stdout) == ("ok", "cba\n")
        sent = FakePiston.requests[-1]
        assert sent["language"] == "python" and sent["files"][0]["name"] == "main.py" and sent["run_timeout"] == 2000
        assert box.run_program("import sys\nsys.exit(3)").status == "exit"
        assert box.run_program("import time\ntime.sleep(10)").status == "signal"
        assert box.isolation()["backend"] == "piston"


def test_stdio_and_assert_tests_through_the_endpoint(piston_url):
    with PistonSandbox(piston_url, LIMITS) as box:
        assert run_tests(SUM, "a, b = map(int, input().split())\nprint(a + b)\n", box).all_passed
        assert run_tests(SUM, "print(3)\n", box).passed == 1
        assert run_tests(ADD, "def add(a, b):\n    return a + b\n", box).all_passed
        report = run_tests(ADD, "def add(a, b):\n    return 3\n", box)
        assert (report.passed, report.total, report.status) == (1, 2, "failed")
        assert run_tests(ADD, "import sys\nsys.exit(0)\n", box).passed == 0


def test_an_unreachable_or_refusing_endpoint_fails_the_tests(piston_url):
    with PistonSandbox("http://127.0.0.1:9/api/v2/execute", LIMITS) as box:
        assert box.run_program("print(1)").status == "backend_error"
        assert run_tests(SUM, "print(3)", box).passed == 0
    with PistonSandbox(piston_url, LIMITS, language="cobol") as box:
        result = box.run_program("print(1)")
        assert result.status == "backend_error" and "runtime is unknown" in result.stderr


def test_task_code_with_a_remote_sandbox(piston_url):
    task = get_task(
        TaskSpec(task="code", dataset="simple", split="test", limit=2, task_options={"sandbox": {"url": piston_url}})
    )
    rows = task.load()
    text = "<reasoning>\nx\n</reasoning>\n<answer>\n```python\n" + rows[0]["answer"] + "```\n</answer>\n"
    assert task.check(text, rows[0], get_template("xml")).correct
    assert not task.check(text, rows[1], get_template("xml")).correct
