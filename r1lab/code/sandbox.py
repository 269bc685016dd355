"""The local sandbox: untrusted programs in separate, limited, isolated processes, many at once.

Each program runs through :mod:`r1lab.code._runner` (see its docstring for the layers: resource limits, namespaces,
a dedicated uid when r1lab runs as root, a minimal environment) in a fresh work directory, in a new session whose
whole process group is killed at the wall limit, with its output read up to a cap. ``LocalSandbox.map`` spreads
jobs over a thread pool sized to the machine (each thread waits on its own processes).

Two ways to run:

- :meth:`LocalSandbox.run_program` — one program, stdin fed, stdout/stderr captured (stdin/stdout tests; the
  parent compares the output).
- :meth:`LocalSandbox.run_judged` — assert tests: the candidate's program in one sandbox, the dataset's tests in
  another (the *judge*), joined by two pipes over which calls and plain-data results travel
  (:mod:`r1lab.code._wire`). Only the judge's lines that carry a per-run secret token count.

What is and is not isolated, per mode: docs/reliability.md.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import json
import marshal
import math
import os
import queue
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from r1lab.code import _testcode
from r1lab.errors import UserError

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "_runner.py")
# The scripts copied into a judged run's work directories.
CANDIDATE_FILES = ("_candidate.py", "_wire.py")
JUDGE_FILES = ("_judge.py", "_wire.py", "_testcode.py")
# Directories hidden behind an empty tmpfs in the sandbox's mount namespace (the user's home is added).
MASKED_DIRECTORIES = ("/tmp", "/var/tmp", "/dev/shm", "/run")
# Root only: each LocalSandbox takes a block of uids of its own, DEFAULT_UID_BASE + block x (pid mod 65536): two r1lab
# processes on one machine never share one (nor a process count, nor a signal), and no login user has them.
DEFAULT_UID_BASE = 61000
GRACE_SECONDS = 0.5  # after the program exits, how long its pipes may stay open before the group is killed


# The largest value each limit takes: beyond it the kernel's limits overflow, and nothing a judged program needs.
LIMIT_MAXIMUM = {
    "cpu_seconds": 3600,
    "wall_seconds": 3600.0,
    "memory_bytes": 1 << 40,
    "processes": 4096,
    "file_bytes": 1 << 36,
    "open_files": 65536,
    "output_bytes": 1 << 30,
}


@dataclass(frozen=True)
class SandboxLimits:
    """Per program. Memory: a memory cgroup of ``memory_bytes`` for all of a program's processes where r1lab can
    make one (every kind of memory), and address space (RLIMIT_AS) per process always; without a cgroup one
    program may hold up to processes x memory_bytes (4 GiB by default). Processes count threads (RLIMIT_NPROC)."""

    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 512 << 20
    processes: int = 8
    file_bytes: int = 16 << 20  # largest file it may write; also the size of its private tmpfs
    open_files: int = 64
    output_bytes: int = 1 << 20  # stdout (and stderr) kept; more ends the program

    def check(self) -> SandboxLimits:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise UserError(f"sandbox limit {name} must be a positive finite number, got {value!r}")
            if value > LIMIT_MAXIMUM[name]:
                raise UserError(f"sandbox limit {name} must be at most {LIMIT_MAXIMUM[name]}, got {value!r}")
        if self.open_files < 16:
            raise UserError(f"sandbox limit open_files must be at least 16 (Python needs a few), got {self.open_files}")
        return self


@dataclass
class ProgramResult:
    """How one program ended. ``status``: ok (exit 0), exit (non-zero), timeout (wall), output_limit, signal."""

    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    isolation: dict[str, Any] = field(default_factory=dict)


@dataclass
class JudgedResult:
    """Assert tests: which passed (by the judge's numbering), how many there are, and why it stopped."""

    passed: list[bool]
    status: str  # done | fatal | timeout | output_limit | judge_error
    detail: str
    seconds: float
    candidate_stdout: str = ""

    @property
    def total(self) -> int:
        return len(self.passed)


def plan_masks(needed: Iterable[str], candidates: Iterable[str], hidden: Iterable[str]) -> list[list[Any]]:
    """Which directories to cover with an empty tmpfs, and which paths to bind back under each.

    ``needed``: real paths the program must reach (the interpreter's prefixes); ``candidates``: directories to
    mask when they exist (world-writable ones, the user's home); ``hidden``: directories the program's uid could
    not traverse (masked, so that the needed paths under them are reachable). A mask inside a needed path is
    dropped (the path must stay whole); a mask inside another mask is covered by it. Returns
    ``[[mask, [needed paths under it]], ...]``, outermost masks only, in sorted order.
    """
    needed = sorted({os.path.normpath(path) for path in needed})
    masks = sorted({os.path.normpath(path) for path in [*candidates, *hidden] if path and path != "/"})

    def under(path: str, directory: str) -> bool:
        return path == directory or path.startswith(directory.rstrip("/") + "/")

    masks = [mask for mask in masks if not any(under(mask, path) for path in needed)]
    outermost = [mask for mask in masks if not any(other != mask and under(mask, other) for other in masks)]
    plan = []
    for mask in outermost:
        inside = [path for path in needed if under(path, mask) and path != mask]
        inside = [path for path in inside if not any(other != path and under(path, other) for other in inside)]
        plan.append([mask, inside])
    return plan


def interpreter_paths(python: str) -> list[str]:
    """The directories an interpreter reads at start-up and import: its prefixes, resolved."""
    probe = "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))"
    try:
        output = subprocess.run(
            [python, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60, env={}, check=True
        ).stdout
        prefixes = json.loads(output)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        raise UserError(f"code sandbox: cannot run the interpreter {python!r}: {error}") from None
    paths = {os.path.realpath(path) for path in prefixes}
    paths.add(os.path.dirname(os.path.realpath(python)))
    paths.add(os.path.dirname(os.path.abspath(python)))
    return sorted(paths)


def untraversable_ancestors(paths: Iterable[str]) -> list[str]:
    """Ancestors of ``paths`` that users other than their owner cannot enter (no o+x): a dropped uid needs them masked."""
    found = set()
    for path in paths:
        current = os.path.dirname(path)
        while current and current != "/":
            try:
                if not os.stat(current).st_mode & stat.S_IXOTH:
                    found.add(current)
            except OSError:
                pass
            current = os.path.dirname(current)
    return sorted(found)


def memory_cgroup_parent() -> tuple[str | None, str]:
    """Where this process may make memory cgroups for its programs: (directory, kind) or (None, why not).

    cgroup v2 where this process's cgroup hands the memory controller to its children (r1lab does not move
    itself: it asks for ``+memory`` and takes the answer), else cgroup v1's memory hierarchy; either needs
    the right to make a directory there (root, or a delegated cgroup)."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            lines = [line.rstrip("\n").split(":", 2) for line in handle if line.count(":") >= 2]
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            mounts = [line.split() for line in handle]
    except OSError as error:
        return None, f"cannot read this process's cgroups ({error.strerror})"
    found = []
    for parts in mounts:
        tail = parts[parts.index("-") + 1 :] if "-" in parts else []
        if len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        version = 2 if tail[0] == "cgroup2" else 1
        for hierarchy, controllers, path in lines:
            if (version == 2 and hierarchy == "0" and controllers == "") or (
                version == 1 and "memory" in controllers.split(",") and "memory" in tail[2].split(",")
            ):
                relative = os.path.relpath(path, parts[3]) if path.startswith(parts[3]) else None
                if relative is not None:
                    found.append((version, os.path.normpath(os.path.join(parts[4], relative))))
    reasons = []
    for version, directory in sorted(found, key=lambda item: -item[0]):
        if version == 2:
            control = os.path.join(directory, "cgroup.subtree_control")
            try:
                with open(control, encoding="ascii") as handle:
                    delegated = "memory" in handle.read().split()
                if not delegated:
                    with open(control, "w", encoding="ascii") as handle:
                        handle.write("+memory")
            except OSError as error:
                reasons.append(f"cgroup v2 {directory}: no memory controller for its children ({error.strerror})")
                continue
        if not os.access(directory, os.W_OK):
            reasons.append(f"cgroup v{version} {directory} is not writable")
            continue
        return directory, f"cgroup v{version}"
    return None, "; ".join(reasons) or "no cgroup memory controller mounted"


def make_memory_cgroup(parent: str, kind: str, name: str, limit: int) -> str | None:
    """A cgroup of ``limit`` bytes of memory (every kind: anonymous, shared, tmpfs, kernel), no swap; None when the
    kernel refuses (the program then runs with its per-process limits only)."""
    directory = os.path.join(parent, name)
    files = (
        (("memory.max", limit), ("memory.swap.max", 0))
        if kind == "cgroup v2"
        else (("memory.limit_in_bytes", limit), ("memory.memsw.limit_in_bytes", limit))
    )
    try:
        os.mkdir(directory)
    except OSError:
        return None
    for index, (file, value) in enumerate(files):
        try:
            with open(os.path.join(directory, file), "w", encoding="ascii") as handle:
                handle.write(str(value))
        except OSError:
            if index == 0:  # the memory bound itself: without it the cgroup is useless
                remove_cgroup(directory)
                return None
    return directory


def remove_cgroup(directory: str, wait: float = 2.0) -> None:
    """Remove a program's cgroup, killing what is left in it first (the kernel refuses to remove one in use)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() >= deadline:
                return
        try:
            if os.path.exists(os.path.join(directory, "cgroup.kill")):
                with open(os.path.join(directory, "cgroup.kill"), "w", encoding="ascii") as handle:
                    handle.write("1")
            else:
                with open(os.path.join(directory, "cgroup.procs"), encoding="ascii") as handle:
                    for pid in handle.read().split():
                        os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        time.sleep(0.01)


def minimal_env(workdir: str) -> dict[str, str]:
    """The environment a program gets: nothing of r1lab's (no tokens, no keys), only what Python needs."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }


class _Process:
    """One sandboxed process under supervision: its pipes, what it printed, what it is being fed."""

    def __init__(
        self,
        popen: subprocess.Popen,
        status_read: int,
        stdin_data: bytes | None,
        output_cap: int,
        cgroup: str | None = None,
    ):
        self.popen = popen
        self.cgroup = cgroup
        self.status_read = status_read
        self.stdin_data = stdin_data or b""
        self.output_cap = output_cap
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.status = bytearray()
        self.over_cap = False


class LocalSandbox:
    """Runs programs on this machine, isolated as far as it allows (``isolation()`` says how far)."""

    name = "local"
    tamper_proof_asserts = True

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        workers: int | None = None,
        python: str | None = None,
        uid_base: int | None = None,
        namespaces: bool = True,
        site_packages: bool = False,
    ):
        self.limits = (limits or SandboxLimits()).check()
        self.workers = workers or max(1, len(os.sched_getaffinity(0)))
        self.python = python or sys.executable
        self.namespaces = namespaces
        # Programs see the standard library only (``python -I -S``: a third of the start-up time, nothing of the
        # environment's packages); ``site_packages`` adds the interpreter's site-packages (numpy, ...).
        self.python_flags = ["-I"] if site_packages else ["-I", "-S"]
        self.root = os.getuid() == 0
        # Two uids per worker (a judged run uses a judge and a candidate), each used by one program at a time.
        block = max(64, 2 * self.workers)
        base = uid_base if uid_base is not None else DEFAULT_UID_BASE + block * (os.getpid() % 65536)
        self.uids = [base + slot for slot in range(2 * self.workers)] if self.root else []
        self.free_uids: queue.Queue[int | None] = queue.Queue()
        for slot in range(2 * self.workers):
            self.free_uids.put(self.uids[slot] if self.root else None)
        needed = interpreter_paths(self.python)
        hidden = untraversable_ancestors(needed) if self.root else []
        home = os.path.expanduser("~")
        self.mask = plan_masks(needed, [*MASKED_DIRECTORIES, home], hidden)
        self.base_dir = tempfile.mkdtemp(prefix="r1lab-sandbox-")
        os.chmod(self.base_dir, 0o711)  # a dropped uid may enter its own work directory, not list the others
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="r1lab-sandbox")
        self.isolation_status: dict[str, Any] | None = None
        # Each program in a memory cgroup of its own where one can be made: memory_bytes for all its processes.
        self.cgroup_parent, self.cgroup_kind = memory_cgroup_parent()
        self.cgroup_names = itertools.count()
        self.lock = threading.Lock()
        self.pair_lock = threading.Lock()

    # -- the pool -------------------------------------------------------------------------------------------

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``function`` over ``items`` on the worker pool, results in order."""
        return list(self.pool.map(function, items))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def isolation(self) -> dict[str, Any]:
        """What the first program's runner applied: uid, network, PID namespace, masks, /proc (runs one if needed)."""
        if self.isolation_status is None:
            result = self.run_program("print('ok')")
            if result.stdout.strip() != "ok":
                why = result.isolation.get("mount_error") or (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise UserError(
                    f"code sandbox: a trivial program failed ({result.status}, exit {result.exit_code}): {why}"
                )
        return dict(self.isolation_status or {})

    # -- running --------------------------------------------------------------------------------------------

    def _workdir(self, uid: int | None, files: dict[str, str]) -> str:
        workdir = tempfile.mkdtemp(dir=self.base_dir)
        for name, text in files.items():
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        if uid is not None:
            for name in [".", *files]:
                os.chown(os.path.join(workdir, name), uid, uid)
        return workdir

    def _memory_cgroup(self) -> tuple[str | None, str]:
        """A cgroup for one program (None when none can be made) and what bounds its memory, in words."""
        per_process = "address space per process (RLIMIT_AS) only: "
        if self.cgroup_parent is None:
            return None, per_process + self.cgroup_kind
        name = f"r1lab-{os.getpid()}-{next(self.cgroup_names)}"
        cgroup = make_memory_cgroup(self.cgroup_parent, self.cgroup_kind, name, int(self.limits.memory_bytes))
        if cgroup is None:
            return None, per_process + f"the kernel refused a {self.cgroup_kind} under {self.cgroup_parent}"
        return cgroup, f"{self.cgroup_kind}: memory_bytes for all its processes, every kind of memory"

    def _spawn(
        self,
        workdir: str,
        uid: int | None,
        script_argv: list[str],
        stdin_data: bytes | None,
        keep_fds: tuple[int, ...] = (),
    ) -> _Process:
        cgroup, memory_note = self._memory_cgroup()
        status_read, status_write = os.pipe()
        settings = {
            "workdir": workdir,
            "argv": [self.python, *self.python_flags, *script_argv],
            "env": minimal_env(workdir),
            "uid": uid,
            "limits": {
                "cpu_seconds": int(self.limits.cpu_seconds),
                "memory_bytes": int(self.limits.memory_bytes),
                "processes": int(self.limits.processes),
                "file_bytes": int(self.limits.file_bytes),
                "open_files": int(self.limits.open_files),
            },
            "namespaces": self.namespaces,
            "mask": self.mask,
            "tmpfs_bytes": int(self.limits.file_bytes),
            "status_fd": status_write,
            "keep_fds": list(keep_fds),
            "cgroup": cgroup,
            "memory_note": memory_note,
        }
        try:
            popen = subprocess.Popen(
                [self.python, "-I", "-S", RUNNER, marshal.dumps(settings).hex()],
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=minimal_env(workdir),
                start_new_session=True,
                pass_fds=(status_write, *keep_fds),
            )
        except BaseException:
            if cgroup:
                remove_cgroup(cgroup)
            raise
        finally:
            os.close(status_write)
        return _Process(popen, status_read, stdin_data, int(self.limits.output_bytes), cgroup)

    def _supervise(self, processes: list[_Process], deadline: float) -> str:
        """Feed, read and wait until every process has exited and closed its pipes; kill at the deadline or when
        output passes the cap. Returns ``finished``, ``timeout`` or ``output_limit``."""
        selector = selectors.DefaultSelector()
        for process in processes:
            popen = process.popen
            assert popen.stdout is not None and popen.stderr is not None  # _spawn opens both as pipes
            selector.register(popen.stdout, selectors.EVENT_READ, (process, "stdout"))
            selector.register(popen.stderr, selectors.EVENT_READ, (process, "stderr"))
            selector.register(process.status_read, selectors.EVENT_READ, (process, "status"))
            if popen.stdin is not None:
                os.set_blocking(popen.stdin.fileno(), False)
                selector.register(popen.stdin, selectors.EVENT_WRITE, (process, "stdin"))
        outcome, exited_at = "finished", None
        try:
            while selector.get_map():
                now = time.monotonic()
                if now >= deadline:
                    outcome = "timeout"
                    break
                if all(process.popen.poll() is not None for process in processes):
                    exited_at = exited_at or now
                    if now - exited_at > GRACE_SECONDS:  # something it left behind holds a pipe open
                        break
                for key, _ in selector.select(timeout=min(0.05, deadline - now)):
                    process, stream = key.data
                    if stream == "stdin":
                        pipe = process.popen.stdin  # key.fileobj, registered above when not None
                        assert pipe is not None
                        try:
                            written = os.write(pipe.fileno(), process.stdin_data[:65536])
                            process.stdin_data = process.stdin_data[written:]
                        except (BrokenPipeError, OSError):
                            process.stdin_data = b""
                        if not process.stdin_data:
                            selector.unregister(pipe)
                            pipe.close()
                        continue
                    fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffer = getattr(process, stream)
                    buffer += chunk[: max(0, process.output_cap - len(buffer))]
                    if stream != "status" and len(buffer) >= process.output_cap:
                        process.over_cap = True
                        outcome = "output_limit"
                if outcome == "output_limit":
                    break
        finally:
            selector.close()
            for process in processes:
                self._kill(process)
        return outcome

    def _kill(self, process: _Process) -> None:
        """Kill the run's process group. Once a runner with a PID namespace has exited, everything it started is
        gone, and its pid (so its group id) may be reused: the group is then left alone."""
        popen = process.popen
        if popen.poll() is None or not parse_status(process.status).get("pid_namespace"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()
        for stream in (popen.stdin, popen.stdout, popen.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        os.close(process.status_read)

    def _record_isolation(self, process: _Process) -> dict[str, Any]:
        status = parse_status(process.status)
        with self.lock:
            if self.isolation_status is None and status:
                self.isolation_status = status
        return status

    def _cleanup(self, workdir: str, uids: list[int | None], pid_namespace: bool) -> None:
        if self.root and not pid_namespace:  # no namespace took its processes with it: end every one of its uid
            for uid in uids:
                if uid is not None:
                    subprocess.run(
                        [self.python, "-I", "-S", RUNNER, marshal.dumps({"kill_uid": uid}).hex()], env={}, check=False
                    )
        shutil.rmtree(workdir, ignore_errors=True)

    @staticmethod
    def _remove_cgroups(processes: list[_Process]) -> None:
        for process in processes:
            if process.cgroup:
                remove_cgroup(process.cgroup)

    def run_program(self, source: str, stdin: str = "", files: dict[str, str] | None = None) -> ProgramResult:
        """Run ``source`` as ``python -I -S solution.py`` with ``stdin``; stdout and stderr come back (capped)."""
        uid = self.free_uids.get()
        started = time.monotonic()
        workdir = self._workdir(uid, {**(files or {}), "solution.py": source})
        processes: list[_Process] = []
        try:
            processes.append(self._spawn(workdir, uid, ["solution.py"], stdin.encode("utf-8")))
            process = processes[0]
            outcome = self._supervise([process], started + self.limits.wall_seconds)
            status = self._record_isolation(process)
            code = process.popen.returncode
            self._cleanup(workdir, [uid], bool(status.get("pid_namespace")))
        finally:
            self._remove_cgroups(processes)
            self.free_uids.put(uid)
        if outcome == "finished":
            outcome = "ok" if code == 0 else ("signal" if code is not None and code > 128 else "exit")
        return ProgramResult(
            status=outcome,
            exit_code=code,
            stdout=process.stdout.decode("utf-8", errors="replace"),
            stderr=process.stderr.decode("utf-8", errors="replace"),
            seconds=round(time.monotonic() - started, 3),
            isolation=status,
        )

    def run_judged(self, preamble: str, source: str, spec: dict[str, Any]) -> JudgedResult:
        """The candidate (``preamble`` + ``source``) and the judge (``spec``: style, test code or statements,
        entry point) in two sandboxes joined by pipes; the verdicts are the judge's token-carrying lines."""
        expected = (
            len(spec["statements"])
            if spec["style"] == "list"
            else _testcode.count_tests(spec["test_code"], spec["style"] == "check")
        )
        token = secrets.token_hex(16)
        with self.pair_lock:  # both at once: callers each holding one uid and waiting for a second would deadlock
            candidate_uid, judge_uid = self.free_uids.get(), self.free_uids.get()
        started = time.monotonic()
        candidate_dir = self._workdir(
            candidate_uid, {**_read_files(CANDIDATE_FILES), "preamble.py": preamble, "solution.py": source}
        )
        judge_dir = self._workdir(
            judge_uid, {**_read_files(JUDGE_FILES), "tests.json": json.dumps({**spec, "preamble": preamble})}
        )
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        processes: list[_Process] = []
        try:
            try:
                processes.append(
                    self._spawn(
                        candidate_dir,
                        candidate_uid,
                        ["_candidate.py", str(request_read), str(reply_write)],
                        None,
                        (request_read, reply_write),
                    )
                )
                processes.append(
                    self._spawn(
                        judge_dir,
                        judge_uid,
                        ["_judge.py", str(request_write), str(reply_read)],
                        f"{token}\n".encode(),
                        (request_write, reply_read),
                    )
                )
            finally:
                for fd in (request_read, request_write, reply_read, reply_write):
                    os.close(fd)
            outcome = self._supervise(processes, started + self.limits.wall_seconds)
            statuses = [self._record_isolation(process) for process in processes]
            pid_namespace = all(status.get("pid_namespace") for status in statuses)
            self._cleanup(candidate_dir, [candidate_uid], pid_namespace)
            self._cleanup(judge_dir, [judge_uid], pid_namespace)
        finally:
            self._remove_cgroups(processes)
            self.free_uids.put(candidate_uid)
            self.free_uids.put(judge_uid)
        candidate, judge = processes
        passed, status, detail = read_verdicts(judge.stdout.decode("utf-8", errors="replace"), token, expected)
        if outcome != "finished" and status != "done":
            status, detail = outcome, f"{outcome} after {round(time.monotonic() - started, 2)} s"
        if status not in ("done", "fatal", "timeout", "output_limit"):
            stderr = judge.stderr.decode("utf-8", errors="replace").strip().splitlines()
            detail = f"{detail}; judge: {stderr[-1] if stderr else 'no output'}"
        return JudgedResult(
            passed,
            status,
            detail,
            round(time.monotonic() - started, 3),
            candidate.stdout.decode("utf-8", errors="replace")[:2000],
        )


def parse_status(raw: bytes | bytearray) -> dict[str, Any]:
    """The runner's status line (a Python literal of plain values) → dict; {} when missing or garbled."""
    try:
        status = ast.literal_eval(bytes(raw).decode("utf-8", errors="replace").strip() or "{}")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return {}
    return status if isinstance(status, dict) else {}


def read_verdicts(output: str, token: str, expected: int) -> tuple[list[bool], str, str]:
    """The judge's verdict lines → (passed per test, status, detail). Only lines that start with the token count;
    a test the judge never reported failed; ``expected`` (r1lab's own count) bounds the numbering."""
    passed = [False] * expected
    status, detail = "judge_error", "the judge did not finish"
    prefix = token + " "
    for line in output.splitlines():
        if not line.startswith(prefix):
            continue
        try:
            message = json.loads(line[len(prefix) :])
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if "test" in message and isinstance(message["test"], int) and 0 <= message["test"] < expected:
            passed[message["test"]] = message.get("passed") is True
            if message.get("passed") is not True and detail == "the judge did not finish":
                detail = str(message.get("error"))[:300]
        elif "fatal" in message:
            status, detail = "fatal", str(message["fatal"])[:300]
            passed = [False] * expected
        elif message.get("done") is True and status != "fatal":
            status = "done"
            if all(passed):
                detail = "all tests passed"
    return passed, status, detail


def _read_files(names: tuple[str, ...]) -> dict[str, str]:
    files = {}
    for name in names:
        with open(os.path.join(HERE, name), encoding="utf-8") as handle:
            files[name] = handle.read()
    return files
