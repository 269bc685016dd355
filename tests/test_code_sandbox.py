"""The sandbox against hostile programs: each one scores 0 within its limits, and r1lab and the machine go on.

Small limits keep the battery fast (seconds). The fork bomb runs only after a harmless program has shown that
the process cap holds (RLIMIT_NPROC under the sandbox's own uid, or the namespace's count).
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from r1lab.code.judging import run_tests
from r1lab.code.problems import CodeProblem
from r1lab.code.sandbox import DEFAULT_UID_BASE, LocalSandbox, SandboxLimits

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMITS = SandboxLimits(
    cpu_seconds=1,
    wall_seconds=3.0,
    memory_bytes=512 << 20,
    processes=8,
    file_bytes=1 << 20,
    open_files=64,
    output_bytes=64 << 10,
)
# Every case ends within the wall limit plus the time to kill and clean up.
WITHIN = LIMITS.wall_seconds + 2.5
SECRET_NAME, SECRET_VALUE = "R1LAB_SANDBOX_TEST_SECRET", "s3cr3t-" + "9f2d71c4"

ADD = CodeProblem(
    "assert",
    test_code="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(5, 7) == 12\n",
    entry_point="add",
)
SUM_STDIO = CodeProblem("stdio", cases=(("1 2\n", "3\n"), ("5 7\n", "12\n")))
CORRECT_ADD = "def add(a, b):\n    return a + b\n"
CORRECT_STDIO = "a, b = map(int, input().split())\nprint(a + b)\n"
# Prints the right sum only when the attack before it worked: a pass would mean the sandbox let it through.
PRINT_IF = "import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b if worked else -1)\n"


@pytest.fixture(scope="module")
def sandbox():
    with LocalSandbox(LIMITS, workers=2) as box:
        yield box


def sandbox_processes(box: LocalSandbox) -> list[int]:
    """Processes of the sandbox's uids left on the machine (root only: as a user, programs run under its own uid)."""
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid in box.uids:
                    left.append(int(entry))
            except OSError:
                pass
    return left


def test_correct_programs_pass(sandbox):
    assert run_tests(ADD, CORRECT_ADD, sandbox).all_passed
    assert run_tests(SUM_STDIO, CORRECT_STDIO, sandbox).all_passed


def test_isolation_on_this_machine(sandbox):
    status = sandbox.isolation()
    if os.getuid() == 0:
        assert status["uid"] in sandbox.uids and min(sandbox.uids) >= DEFAULT_UID_BASE
    if status.get("pid_namespace"):
        assert status["network"].startswith("cut") and status["proc"] == "private"


def test_process_cap_holds_for_a_harmless_program(sandbox):
    """Twice the cap of sleeping children: at most the cap are created (checked before any fork bomb runs)."""
    program = (
        f"import os, time\ncreated = 0\nfor _ in range({2 * LIMITS.processes}):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(1)\n        os._exit(0)\n    created += 1\nprint(created)\n"
    )
    result = sandbox.run_program(program)
    assert result.status == "ok", result
    assert 0 < int(result.stdout) < LIMITS.processes


LIBC = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def hostile_cases(tmp_dir: str, port: int, unix_path: str = "/x") -> list[tuple[str, CodeProblem, str]]:
    escape_targets = [os.path.join(tmp_dir, "escaped.txt"), os.path.join(REPO_ROOT, ".escaped-by-sandbox")]
    return [
        # Kernel surface and what the network namespace does not cover (issue 31): each worked before.
        (
            "nested user namespace with its own tmpfs",
            SUM_STDIO,
            LIBC
            + "worked = libc.unshare(0x10000000 | 0x00020000) == 0 and libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0\n"
            + PRINT_IF,
        ),
        (
            "Unix socket on the filesystem",
            SUM_STDIO,
            f"import socket\ntry:\n    client = socket.socket(socket.AF_UNIX)\n    client.connect({unix_path!r})\n"
            "    client.sendall(b'escaped')\n    worked = True\nexcept OSError:\n    worked = False\n" + PRINT_IF,
        ),
        (
            "Unix datagram to a path from a socket pair",
            SUM_STDIO,
            f"import socket\ntry:\n    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
            f"    left.sendto(b'escaped', {unix_path + '.dgram'!r})\n    worked = True\nexcept OSError:\n    worked = False\n"
            + PRINT_IF,
        ),
        ("infinite loop", SUM_STDIO, "while True:\n    pass\n"),
        (
            "fork bomb",
            SUM_STDIO,
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        ),
        ("10 GB allocation", ADD, "hog = bytearray(10 * 1024 ** 3)\n" + CORRECT_ADD),
        (
            "1 GB of output",
            SUM_STDIO,
            "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n",
        ),
        (
            "write outside its directory",
            SUM_STDIO,
            f"worked = False\nfor path in {escape_targets!r}:\n    try:\n        with open(path, 'w') as f:\n            f.write('x')\n"
            "        worked = True\n    except OSError:\n        pass\n" + PRINT_IF,
        ),
        (
            "read r1lab's environment",
            SUM_STDIO,
            "import os\nfound = [v for v in os.environ.values()]\nfor pid in os.listdir('/proc'):\n    try:\n"
            "        found.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n    except OSError:\n        pass\n"
            f"for pid in [{os.getpid()}, os.getppid()]:\n    try:\n        found.append(open(f'/proc/{{pid}}/environ', 'rb').read().decode(errors='replace'))\n"
            f"    except OSError:\n        pass\nworked = any({SECRET_NAME!r} in text for text in found)\nprint(found)\n"
            + PRINT_IF,
        ),
        (
            "open a network socket",
            SUM_STDIO,
            f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n    worked = True\n"
            "except OSError:\n    worked = False\n" + PRINT_IF,
        ),
        (
            "os.kill of its parent",
            SUM_STDIO,
            f"import os, signal\nworked = False\nfor pid in (os.getppid(), {os.getpid()}):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
            "        worked = pid > 1\n    except OSError:\n        pass\n" + PRINT_IF,
        ),
        ("sys.exit(0) before the tests run", ADD, "import sys\nsys.exit(0)\n" + CORRECT_ADD),
        ("os._exit(0) before the tests run", ADD, "import os\nos._exit(0)\n"),
        ("exit(0) inside the function", ADD, "import os\ndef add(a, b):\n    os._exit(0)\n"),
        (
            "__eq__ that always says yes",
            ADD,
            "class Yes:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\ndef add(a, b):\n    return Yes()\n",
        ),
        (
            "int subclass with __eq__",
            ADD,
            "class Int(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Int(0)\n",
        ),
        (
            "patched builtins and assert helpers",
            ADD,
            "import builtins\nbuiltins.AssertionError = type('Never', (BaseException,), {})\nbuiltins.abs = lambda x: 0\n"
            "def check(candidate):\n    return True\ndef assertEqual(*a):\n    return True\nimport unittest\n"
            "unittest.TestCase.assertEqual = lambda *a, **k: None\ndef add(a, b):\n    return -1\n",
        ),
        (
            "forged verdict lines on stdout",
            ADD,
            'for i in range(2):\n    print(\'{"test": %d, "passed": true}\' % i)\nprint(\'{"done": true}\')\ndef add(a, b):\n    return 0\n',
        ),
        ("sleeps past the wall limit", SUM_STDIO, "import time\ntime.sleep(60)\n"),
    ]


@pytest.fixture(scope="module")
def listener():
    """A TCP server on 127.0.0.1, and Unix stream and datagram sockets bound to paths outside every masked directory
    (in the repository, writable by all, as a careless service's would be): what reaches any of them is recorded."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    unix_path = os.path.join(REPO_ROOT, f".sandbox-test-{os.getpid()}.sock")
    unix_server, unix_datagram = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix_server.bind(unix_path)
    unix_datagram.bind(unix_path + ".dgram")
    for path in (unix_path, unix_path + ".dgram"):
        os.chmod(path, 0o777)
    servers = (server, unix_server, unix_datagram)
    for each in servers:
        each.settimeout(0.2)
    server.listen(8)
    unix_server.listen(8)
    accepted: list[int] = []
    stop = threading.Event()

    def serve(each):
        while not stop.is_set():
            try:
                if each.type == socket.SOCK_DGRAM:
                    each.recv(64)
                else:
                    each.accept()[0].close()
                accepted.append(1)
            except OSError:
                continue

    threads = [threading.Thread(target=serve, args=(each,), daemon=True) for each in servers]
    for thread in threads:
        thread.start()
    yield server.getsockname()[1], accepted, unix_path
    stop.set()
    for thread in threads:
        thread.join()
    for each in servers:
        each.close()
    for path in (unix_path, unix_path + ".dgram"):
        os.unlink(path)


CASE_NAMES = [case[0] for case in hostile_cases("/x", 1)]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_program_scores_zero_within_its_limits(name, sandbox, listener, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    port, accepted, unix_path = listener
    if name == "fork bomb":  # never without a working cap
        test_process_cap_holds_for_a_harmless_program(sandbox)
    problem, program = next(
        (problem, program) for case, problem, program in hostile_cases(str(tmp_path), port, unix_path) if case == name
    )
    started = time.monotonic()
    report = run_tests(problem, program, sandbox)
    elapsed = time.monotonic() - started
    assert report.passed == 0 and not report.all_passed, report
    assert elapsed < WITHIN * (len(problem.cases) or 1), f"{name} took {elapsed:.1f} s"
    # r1lab and the machine go on: no escaped file, no connection, no leftover process, a correct program passes.
    assert not (tmp_path / "escaped.txt").exists() and not os.path.exists(
        os.path.join(REPO_ROOT, ".escaped-by-sandbox")
    )
    assert not accepted
    deadline = time.monotonic() + 2
    while sandbox_processes(sandbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sandbox_processes(sandbox)
    assert run_tests(ADD, CORRECT_ADD, sandbox).all_passed


# Memory past the bound by the routes RLIMIT_AS does not count (issue 31: System V segments held 512 MiB against a
# 256 MiB bound), with a small bound so that the attempts stay cheap. Each prints the right sum only if it held
# twice the bound (or, for the named routes, reached them at all).
SMALL_MEMORY = 128 << 20
MEMORY_ROUTES = {
    "System V shared memory, detached": (
        LIBC
        + "libc.shmat.restype = ctypes.c_void_p\nheld = 0\nfor _ in range(5):\n    key = libc.shmget(0, 64 << 20, 0o1600)\n"
        "    address = libc.shmat(key, None, 0) if key >= 0 else None\n    if address in (None, ctypes.c_void_p(-1).value):\n"
        "        break\n    ctypes.memset(address, 1, 64 << 20)\n    libc.shmdt(ctypes.c_void_p(address))\n    held += 64 << 20\n"
        f"worked = held > 2 * {SMALL_MEMORY}\n"
    ),
    "POSIX shared memory (/dev/shm)": (
        "worked = False\ntry:\n    from multiprocessing import shared_memory\n"
        "    block = shared_memory.SharedMemory(create=True, size=1 << 20)\n    block.buf[:4] = b'held'\n    worked = True\n"
        "except Exception:\n    pass\n"
    ),
    "memfd": "import os\ntry:\n    fd = os.memfd_create('hold')\n    worked = os.write(fd, b'x' * 4096) == 4096\nexcept OSError:\n    worked = False\n",
    "mmap of a file": (
        f"import mmap\nworked = False\nsize = 2 * {SMALL_MEMORY}\ntry:\n    with open('big', 'wb+') as f:\n        f.truncate(size)\n"
        "        block = mmap.mmap(f.fileno(), size)\n        for i in range(0, size, 4096):\n            block[i] = 1\n"
        "        worked = True\nexcept (OSError, ValueError):\n    pass\n"
    ),
    "anonymous memory over five processes": (
        "import os, time\nread, write = os.pipe()\nfor _ in range(5):\n    if os.fork() == 0:\n        held = b'x' * (52 << 20)\n"
        "        os.write(write, b'1')\n        time.sleep(1.5)\n        os._exit(0)\n"
        "os.close(write)\nready = b''\nwhile len(ready) < 5:\n    chunk = os.read(read, 5)\n    if not chunk:\n        break\n"
        "    ready += chunk\nworked = len(ready) == 5\n"
    ),
}


@pytest.fixture(scope="module")
def small_memory_sandbox():
    limits = SandboxLimits(
        cpu_seconds=2,
        wall_seconds=4.0,
        memory_bytes=SMALL_MEMORY,
        processes=8,
        file_bytes=1 << 20,
        open_files=64,
        output_bytes=64 << 10,
    )
    with LocalSandbox(limits, workers=1) as box:
        yield box


@pytest.mark.parametrize("route", list(MEMORY_ROUTES))
def test_memory_past_the_bound_scores_zero(route, small_memory_sandbox):
    memory = small_memory_sandbox.isolation()["memory"]
    if route.startswith("anonymous") and not memory.startswith("cgroup"):
        pytest.skip(f"no memory cgroup here, each process has its own address-space limit: {memory}")
    report = run_tests(SUM_STDIO, MEMORY_ROUTES[route] + PRINT_IF, small_memory_sandbox)
    assert report.passed == 0, report
    assert run_tests(SUM_STDIO, CORRECT_STDIO, small_memory_sandbox).all_passed


def test_the_environment_is_minimal(sandbox, monkeypatch):
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    result = sandbox.run_program("import os\nprint(sorted(os.environ))\n")
    assert SECRET_NAME not in result.stdout
    assert result.stdout.strip() == str(
        sorted(["HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "TMPDIR"])
    )


def test_the_preamble_helpers_stay_the_datasets(sandbox):
    """HumanEval/32 checks find_zero with the prompt's poly(): a program that redefines poly to say 0 still fails."""
    preamble = "import math\ndef poly(xs, x):\n    return sum(c * math.pow(x, i) for i, c in enumerate(xs))\n"
    tests = "def check(candidate):\n    assert abs(poly([1, 2], candidate([1, 2]))) < 1e-4\n"
    problem = CodeProblem("assert", preamble=preamble, test_code=tests, entry_point="find_zero")
    cheat = "def poly(xs, x):\n    return 0\ndef find_zero(xs):\n    return 123.0\n"
    honest = "def find_zero(xs):\n    return -xs[0] / xs[1]\n"
    assert run_tests(problem, cheat, sandbox).passed == 0
    assert run_tests(problem, honest, sandbox).all_passed


def check_style(entry_point: str, *lines: str) -> CodeProblem:
    return CodeProblem(
        "assert",
        test_code="def check(candidate):\n" + "".join(f"    {line}\n" for line in lines),
        entry_point=entry_point,
    )


# (builtin, problem, a wrong program that defines the builtin so that the tests would hold, a right program).
SHADOW_EVERY_BUILTIN = (
    "import builtins\n_space = globals()\nfor _name in dir(builtins):\n    if not _name.startswith('__'):\n"
    "        _space[_name] = lambda *a, **k: 0\n"
)
SHADOWED_BUILTINS = [
    (
        "abs",
        check_style("frac", "assert abs(candidate(3.5) - 0.5) < 1e-6", "assert abs(candidate(1.25) - 0.25) < 1e-6"),
        "def abs(x):\n    return 0\ndef frac(x):\n    return 7.0\n",
        "def frac(x):\n    return x - int(x)\n",
    ),
    (
        "range",
        check_style("square", "for n in range(1, 4):", "    assert candidate(n) == n * n"),
        "def range(*a):\n    return []\ndef square(n):\n    return -1\n",
        "def square(n):\n    return n * n\n",
    ),
    (
        "set",
        CodeProblem("assert", statements=("assert set(common([1, 2, 3], [2, 3, 4])) == set([2, 3])",)),
        "def set(*a):\n    return 1\ndef common(a, b):\n    return []\n",
        "def common(a, b):\n    return [x for x in a if x in b]\n",
    ),
    (
        "sorted",
        CodeProblem("assert", statements=("assert sorted(evens([3, 2, 4])) == [2, 4]",)),
        "def sorted(*a, **k):\n    return [2, 4]\ndef evens(xs):\n    return []\n",
        "def evens(xs):\n    return [x for x in xs if x % 2 == 0]\n",
    ),
    (
        "len",
        CodeProblem("assert", statements=("assert len(pairs(3)) == 3",)),
        "def len(x):\n    return 3\ndef pairs(n):\n    return []\n",
        "def pairs(n):\n    return [(i, i) for i in range(n)]\n",
    ),
    (
        "isinstance",
        check_style("add", "assert isinstance(candidate(1, 2), int) and candidate(1, 2) == 3"),
        "def isinstance(*a):\n    return True\ndef add(a, b):\n    return 3.0\n",
        CORRECT_ADD,
    ),
    (
        "print",
        CodeProblem("assert", test_code="assert print(double(2)) is not None or double(2) == 4\n"),
        "def print(*a):\n    return 1\ndef double(x):\n    return 5\n",
        "def double(x):\n    return 2 * x\n",
    ),
    (
        "every builtin at once",
        check_style(
            "inc",
            "print('checking')",
            "assert abs(candidate(1) - 2) < 1e-9",
            "assert max(candidate(5) - 6, 6 - candidate(5)) <= 0",
            "assert sum([abs(candidate(x) - x - 1) for x in [0, 7]]) == 0",
        ),
        SHADOW_EVERY_BUILTIN + "def inc(x):\n    return 0\n",
        "def inc(x):\n    return x + 1\n",
    ),
]


@pytest.mark.parametrize("builtin", [case[0] for case in SHADOWED_BUILTINS])
def test_a_programs_builtins_do_not_reach_the_tests(builtin, sandbox):
    """The tests run with Python's own builtins: a wrong program that redefines one the tests use scores 0."""
    problem, cheat, honest = next(case[1:] for case in SHADOWED_BUILTINS if case[0] == builtin)
    assert run_tests(problem, cheat, sandbox).passed == 0
    assert run_tests(problem, honest, sandbox).all_passed


# A predicate over [2, 4] (all true) and [1, 3] (all false): ``all``/``any`` over ``map`` stop early and hold when the
# candidate's exception ended the iteration; the last test expects a ValueError (an ordinary error still crosses).
RAISES = check_style(
    "is_even",
    "assert all(map(candidate, [2, 4]))",
    "assert not any(map(candidate, [1, 3]))",
    "assert all(candidate(x) for x in [2, 4])",
    "try:",
    "    candidate(-1)",
    "except ValueError:",
    "    pass",
    "else:",
    "    assert False",
)
HONEST_IS_EVEN = "def is_even(n):\n    if n < 0:\n        raise ValueError('negative')\n    return n % 2 == 0\n"


@pytest.mark.parametrize(
    "exception",
    [
        "StopIteration",
        "StopAsyncIteration",
        "GeneratorExit",
        "KeyboardInterrupt",
        "SystemExit",
        "own BaseException",
        "own class named StopIteration",
    ],
)
def test_a_programs_exceptions_reach_the_tests_as_plain_failures(exception, sandbox):
    raised = {
        "own BaseException": "class Stop(BaseException):\n    pass\n",
        "own class named StopIteration": "class StopIteration(BaseException):\n    pass\n",
    }.get(exception, "")
    name = {"own BaseException": "Stop", "own class named StopIteration": "StopIteration"}.get(exception, exception)
    cheat = f"{raised}def is_even(n):\n    raise {name}()\n"
    report = run_tests(RAISES, cheat, sandbox)
    assert (report.passed, report.total) == (0, 4), report
    assert run_tests(RAISES, HONEST_IS_EVEN, sandbox).all_passed


def test_a_near_integer_scores_zero_on_stdio(sandbox):
    """Integers are compared exactly (a relative 1e-6 let 1000000000 pass for 1000000007); floats within the
    problem's tolerance."""
    modulo = CodeProblem("stdio", cases=(("7\n", "1000000007\n"),))
    assert run_tests(modulo, "print(10 ** 9)\n", sandbox).passed == 0
    assert run_tests(modulo, "print(10 ** 9 + int(input()))\n", sandbox).all_passed
    half = CodeProblem("stdio", cases=(("1\n", "0.5\n"),), float_tolerance=1e-3)
    assert (
        run_tests(half, "print(0.5004)\n", sandbox).all_passed
        and run_tests(half, "print(0.502)\n", sandbox).passed == 0
    )


def test_partial_results_survive_a_timeout(sandbox):
    tests = "def check(candidate):\n    assert candidate(1) == 1\n    assert candidate(2) == 2\n    assert candidate(3) == 3\n"
    program = "import time\ndef ident(x):\n    if x == 3:\n        time.sleep(60)\n    return x\n"
    report = run_tests(CodeProblem("assert", test_code=tests, entry_point="ident"), program, sandbox)
    assert (report.passed, report.total, report.status) == (2, 3, "timeout")


UNPRIVILEGED_SCRIPT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from r1lab.code.judging import run_tests
from r1lab.code.problems import CodeProblem
from r1lab.code.sandbox import LocalSandbox, SandboxLimits
owned, port, unix_path = sys.argv[2], int(sys.argv[3]), sys.argv[4]
add = CodeProblem("assert", test_code="def check(candidate):\n    assert candidate(1, 2) == 3\n", entry_point="add")
with LocalSandbox(SandboxLimits(cpu_seconds=1, wall_seconds=3.0, processes=8), workers=2, python=sys.executable) as box:
    out = {"isolation": box.isolation(), "uid": os.getuid()}
    out["correct"] = run_tests(add, "def add(a, b):\n    return a + b\n", box).all_passed
    out["eq"] = run_tests(add, "class Y:\n    def __eq__(s, o):\n        return True\ndef add(a, b):\n    return Y()\n", box).passed
    probe = ("import os, socket\nresults = {}\ntry:\n    open(%r + '/escaped', 'w').write('x'); results['write'] = True\n"
             "except OSError:\n    results['write'] = False\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=1); results['net'] = True\n"
             "except OSError:\n    results['net'] = False\ntry:\n    os.kill(%d, 0); results['signal'] = True\nexcept OSError:\n    results['signal'] = False\n"
             "results['secret'] = False\nfor p in os.listdir('/proc'):\n    try:\n"
             "        results['secret'] |= 'R1LAB_SANDBOX_TEST_SECRET' in open(f'/proc/{p}/environ', errors='replace').read()\n"
             "    except OSError:\n        pass\n"
             "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nresults['sysv'] = libc.shmget(0, 1 << 20, 0o1600) >= 0\n"
             "results['userns'] = libc.unshare(0x10000000) == 0\ntry:\n    socket.socket(socket.AF_UNIX).connect(%r); results['unix'] = True\n"
             "except OSError:\n    results['unix'] = False\ntry:\n    os.memfd_create('x'); results['memfd'] = True\n"
             "except OSError:\n    results['memfd'] = False\ntry:\n    open('/dev/shm/x', 'w').write('x'); results['shm'] = True\n"
             "except OSError:\n    results['shm'] = False\nprint(repr(results))\n") % (owned, port, os.getpid(), unix_path)
    probed = box.run_program(probe)
    out["probe"] = probed.stdout.strip() or probed.stderr.strip()[-300:]
    forks = ("import os, time\nn = 0\nfor _ in range(40):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
             "    if pid == 0:\n        time.sleep(1)\n        os._exit(0)\n    n += 1\nprint(n)\n")
    out["forks"] = box.run_program(forks).stdout.strip()
print(json.dumps(out))
"""


@pytest.mark.skipif(
    os.getuid() != 0 or not os.path.exists("/usr/bin/setpriv") or not os.path.exists("/usr/bin/python3"),
    reason="needs root (to become another user), setpriv and a world-readable /usr/bin/python3",
)
def test_an_unprivileged_user_gets_the_same_guarantees(listener, monkeypatch):
    """r1lab run as an ordinary user (uid 65534, the system Python): user + PID + network + mount + IPC namespaces; a
    file the user owns outside the work directory stays unwritten (every mount is read-only inside); no System V
    segment, nested user namespace, Unix socket on disk, memfd or /dev/shm file."""
    import json
    import shutil
    import subprocess

    port, accepted, unix_path = listener
    owned = os.path.join(REPO_ROOT, f".sandbox-test-{os.getpid()}")
    os.mkdir(owned)
    os.chown(owned, 65534, 65534)
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    try:
        done = subprocess.run(
            [
                "/usr/bin/setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
                UNPRIVILEGED_SCRIPT,
                REPO_ROOT,
                owned,
                str(port),
                unix_path,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert not os.listdir(owned)
    finally:
        shutil.rmtree(owned)
    if not out["isolation"].get("pid_namespace"):
        pytest.skip(f"no unprivileged user namespaces here: {out['isolation']}")
    assert out["uid"] == 65534 and out["correct"] and out["eq"] == 0
    assert out["isolation"]["network"].startswith("cut") and out["isolation"]["read_only"] == "every mount"
    assert out["probe"] == repr(
        {
            "write": False,
            "net": False,
            "signal": False,
            "secret": False,
            "sysv": False,
            "userns": False,
            "unix": False,
            "memfd": False,
            "shm": False,
        }
    )
    assert 0 < int(out["forks"]) < 8 and not accepted
    print(out["isolation"])
