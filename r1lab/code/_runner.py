"""The sandbox bootstrap: the first process of every sandboxed program (stdlib only, run as ``python -I -S``).

r1lab starts it in a new session with one argument, the settings (a dict) in ``marshal`` format as hex: no
json, re or enum to import, which would double this process's start-up. It applies what the machine allows,
reports what it applied on ``status_fd`` (one line, a Python literal), then starts the program:

- resource limits (CPU time, address space, processes, file size, open files, no core files), and the memory
  cgroup r1lab made for the program (``cgroup``: every kind of memory of all its processes) where it could;
- new mount, PID, network, IPC and UTS namespaces (plus a user namespace when not root) where permitted: no
  network (not even loopback), a fresh /proc that shows only the sandbox's processes, every mount read-only,
  read-only tmpfs over the world-writable and private directories (``mask``) with only the interpreter bound
  back, and the work directory a private tmpfs; System V limits at 0 in the IPC namespace (root) and no user
  namespace below the sandbox's own (``max_user_namespaces`` 0 in it, ordinary user);
- a seccomp filter (x86_64, aarch64; :func:`seccomp_program`): no new namespaces, no Unix sockets but stream
  pairs (path-bound ones are outside the network namespace), no System V IPC, memfd, io_uring or keyrings;
- as root, a dedicated unprivileged uid/gid for the program (no supplementary groups), so that it can neither
  signal nor read r1lab's processes and files, and so that RLIMIT_NPROC applies (root is exempt from it);
- no new privileges, parent-death signal, a minimal environment, only fds 0-2 and ``keep_fds`` left open.

With a PID namespace this process forks the namespace's init (pid 1, a reaper), which forks the program; when
the program exits the init exits and the kernel kills whatever the program left behind. The exit status is
the program's (128 + signal when a signal ended it).
"""

import _signal
import contextlib
import ctypes
import marshal
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
CLONE_NEWTIME = 0x00000080
CLONE_NEWCGROUP = 0x02000000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
EPERM = 1
ENOSYS = 38
AF_UNIX = 1
SOCK_STREAM = 1
SIGKILL = 9
SIGTERM = 15

LIBC = ctypes.CDLL(None, use_errno=True)


def checked(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def mount(source, target, fstype, flags, data=None):
    checked(
        LIBC.mount(
            None if source is None else source.encode(),
            target.encode(),
            None if fstype is None else fstype.encode(),
            ctypes.c_ulong(flags),
            None if data is None else data.encode(),
        ),
        f"mount {target}",
    )


# The seccomp filter (classic BPF over struct seccomp_data: nr at 0, arch at 4, argument i's low word at 16 + 8i).
BPF_LD_W_ABS, BPF_JEQ, BPF_JGE, BPF_JSET, BPF_AND, BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
NAMESPACE_FLAGS = (
    CLONE_NEWNS
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
    | CLONE_NEWCGROUP
    | CLONE_NEWTIME
)
# Per machine: its audit architecture and the numbers of the system calls the filter looks at.
SYSCALL_TABLES = {
    "x86_64": (
        0xC000003E,
        {
            "unshare": 272,
            "clone": 56,
            "clone3": 435,
            "setns": 308,
            "socket": 41,
            "socketpair": 53,
            "shmget": 29,
            "semget": 64,
            "msgget": 68,
            "memfd_create": 319,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "bpf": 321,
            "perf_event_open": 298,
            "userfaultfd": 323,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "unshare": 97,
            "clone": 220,
            "clone3": 435,
            "setns": 268,
            "socket": 198,
            "socketpair": 199,
            "shmget": 194,
            "semget": 190,
            "msgget": 186,
            "memfd_create": 279,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "bpf": 280,
            "perf_event_open": 241,
            "userfaultfd": 282,
        },
    ),
}
# Refused outright: System V IPC (memory that outlives its process), memfds, io_uring (its own socket and connect
# bypass this filter), namespaces joined, kernel keyrings (shared with the user's own), bpf, perf, userfaultfd.
DENIED_SYSCALLS = (
    "setns",
    "shmget",
    "semget",
    "msgget",
    "memfd_create",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "add_key",
    "request_key",
    "keyctl",
    "bpf",
    "perf_event_open",
    "userfaultfd",
)


def bpf(code, k, jump_true=0, jump_false=0):
    return code.to_bytes(2, sys.byteorder) + bytes((jump_true, jump_false)) + k.to_bytes(4, sys.byteorder)


def argument(index):
    """The load of a system call argument's low 32 bits (all the filter compares)."""
    return bpf(BPF_LD_W_ABS, 16 + 8 * index + (4 if sys.byteorder == "big" else 0))


def seccomp_program(machine):
    """The filter's instructions for ``machine`` (None where r1lab has no table): new namespaces (``unshare``,
    ``clone`` with a CLONE_NEW* flag; ``clone3``, whose flags it cannot read, answers ENOSYS so that the C library
    falls back to ``clone``), Unix sockets but stream pairs (a path-bound socket is reached by ``connect`` or
    ``sendto``, which a filter cannot read; a stream pair reaches nothing else), ``DENIED_SYSCALLS``, and any
    other architecture's calls, all refused with EPERM."""
    if machine not in SYSCALL_TABLES:
        return None
    arch, numbers = SYSCALL_TABLES[machine]
    allow, deny = bpf(BPF_RET, SECCOMP_RET_ALLOW), bpf(BPF_RET, SECCOMP_RET_ERRNO | EPERM)
    namespaces = [argument(0), bpf(BPF_JSET, NAMESPACE_FLAGS, 0, 1), deny, allow]
    blocks = [
        ("unshare", namespaces),
        ("clone", namespaces),
        ("clone3", [bpf(BPF_RET, SECCOMP_RET_ERRNO | ENOSYS)]),
        ("socket", [argument(0), bpf(BPF_JEQ, AF_UNIX, 0, 1), deny, allow]),
        (
            "socketpair",
            [
                argument(0),
                bpf(BPF_JEQ, AF_UNIX, 0, 4),
                argument(1),
                bpf(BPF_AND, 0xF),
                bpf(BPF_JEQ, SOCK_STREAM, 1, 0),
                deny,
                allow,
            ],
        ),
        *((name, [deny]) for name in DENIED_SYSCALLS),
    ]
    program = [bpf(BPF_LD_W_ABS, 4), bpf(BPF_JEQ, arch, 1, 0), deny, bpf(BPF_LD_W_ABS, 0)]
    if machine == "x86_64":  # the x32 ABI: the same architecture, numbers from 0x40000000
        program += [bpf(BPF_JGE, 0x40000000, 0, 1), deny]
    for name, block in blocks:
        program.append(bpf(BPF_JEQ, numbers[name], 0, len(block)))
        program.extend(block)
    program.append(allow)
    return b"".join(program)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(status):
    """The filter on this process and everything it starts (after no-new-privileges, which it requires)."""
    program = seccomp_program(os.uname().machine)
    if program is None:
        status["seccomp"] = f"none (no system call table for {os.uname().machine})"
        return
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        status["seccomp"] = f"none ({os.strerror(ctypes.get_errno())})"
        return
    status["seccomp"] = "namespaces, Unix sockets, System V IPC, memfd, io_uring, keyrings, bpf, perf refused"


# In the sandbox's own IPC namespace: System V limits at 0 (a segment, once detached, is counted by no rlimit).
SYSV_LIMITS = (
    ("kernel/shmmax", "0"),
    ("kernel/shmall", "0"),
    ("kernel/shmmni", "0"),
    ("kernel/msgmni", "0"),
    ("kernel/sem", "0 0 0 0"),
)


def write_sysctls(settings, status):
    """System V limits at 0 in the sandbox's own IPC namespace (root only: a user namespace may not set them), and
    no user namespace below the sandbox's own (ordinary user: the limit is the user namespace's own)."""
    wanted = list(SYSV_LIMITS) if status.get("ipc_namespace") else []
    if status.get("user_namespace"):
        wanted.append(("user/max_user_namespaces", "0"))
    done = []
    for name, value in wanted:
        try:
            with open(f"/proc/sys/{name}", "w", encoding="ascii") as handle:
                handle.write(value)
            done.append(name.split("/")[1])
        except OSError:
            continue
    status["sysctls_zero"] = done


def join_cgroup(settings, status):
    """Into the program's memory cgroup (r1lab made it): every process the program starts is counted there."""
    cgroup = settings.get("cgroup")
    if not cgroup:
        status["memory"] = settings.get("memory_note", "address space per process (RLIMIT_AS)")
        return True
    try:
        with open(cgroup + "/cgroup.procs", "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
    except OSError as error:
        status["mount_error"] = f"cannot join the memory cgroup {cgroup}: {error.strerror}"
        return False
    status["memory"] = settings["memory_note"]
    return True


def set_limits(limits, processes):
    pairs = [
        (resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 1)),
        (resource.RLIMIT_AS, (limits["memory_bytes"],) * 2),
        (resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2),
        (resource.RLIMIT_NOFILE, (limits["open_files"],) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NPROC, (processes, processes)),
    ]
    for which, values in pairs:
        resource.setrlimit(which, values)


def own_process_count():
    """Processes and threads of this uid now (RLIMIT_NPROC counts threads too)."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as handle:
                    fields = dict(line.split(":", 1) for line in handle if ":" in line)
                if int(fields["Uid"].split()[0]) == uid:
                    count += int(fields.get("Threads", "1").strip() or 1)
            except (OSError, ValueError, KeyError):
                continue
    return count


def enter_namespaces(root, status):
    """Unshare what the machine allows; True when a PID namespace was created (the next fork is its init)."""
    base = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    for flags in (base,) if root else (base | CLONE_NEWUSER, CLONE_NEWUSER | CLONE_NEWNET):
        if LIBC.unshare(ctypes.c_int(flags)) == 0:
            break
        status.setdefault("unshare_errors", []).append(os.strerror(ctypes.get_errno()))
    else:
        return False
    if flags & CLONE_NEWUSER:  # keep our own uid/gid inside: the program stays the user it is
        uid, gid = os.getuid(), os.getgid()
        for path, text in (
            ("/proc/self/setgroups", "deny"),
            ("/proc/self/uid_map", f"{uid} {uid} 1"),
            ("/proc/self/gid_map", f"{gid} {gid} 1"),
        ):
            with open(path, "w", encoding="ascii") as handle:
                handle.write(text)
    status["network"] = "cut (new network namespace)"
    status["mount_namespace"] = bool(flags & CLONE_NEWNS)
    status["ipc_namespace"] = bool(flags & CLONE_NEWIPC)
    status["user_namespace"] = bool(flags & CLONE_NEWUSER)
    return bool(flags & CLONE_NEWPID)


# Per-mount options that a remount must keep (in a user namespace the kernel refuses to drop locked ones).
KEPT_OPTIONS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}


def unescape(field):
    """mountinfo's octal escapes (a space is \\040)."""
    out, index = [], 0
    while index < len(field):
        if field[index] == "\\" and field[index + 1 : index + 4].isdigit():
            out.append(chr(int(field[index + 1 : index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def remount_read_only(status):
    """Every mount read-only in this mount namespace (the tmpfs mounted after stay writable): the program writes
    only to its work directory, whatever its uid may write on the machine."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        mounts = [(unescape(parts[4]), parts[5]) for parts in (line.split() for line in handle) if len(parts) > 5]
    failed = []
    for point, options in mounts:
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options.split(","):
            flags |= KEPT_OPTIONS.get(option, 0)
        try:
            mount(None, point, None, flags)
        except OSError:
            failed.append(point)
    status["read_only"] = "every mount" if not failed else f"every mount but {', '.join(failed[:5])}"


def build_mounts(settings, status):
    """In the new mount namespace: masks (tmpfs) with the needed paths bound back (read-only), the work directory
    as a private tmpfs of bounded size holding a copy of r1lab's files, and a fresh /proc."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    remount_read_only(status)
    sources = {}
    for _, restores in settings["mask"]:
        for path in restores:
            sources[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    workdir = settings["workdir"]
    workdir_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    masked = []
    for directory, restores in settings["mask"]:
        if not os.path.isdir(directory):
            continue
        mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, f"size={settings['tmpfs_bytes']},mode=755")
        for path in restores:
            os.makedirs(path, exist_ok=True)
            mount(f"/proc/self/fd/{sources[path]}", path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        masked.append(directory)
    for fd in sources.values():
        os.close(fd)
    status["masked"] = masked
    os.makedirs(workdir, exist_ok=True)
    owner = settings.get("uid") if os.getuid() == 0 and settings.get("uid") is not None else os.getuid()
    mount(
        "tmpfs",
        workdir,
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={settings['tmpfs_bytes']},nr_inodes=4096,mode=700,uid={owner},gid={owner}",
    )
    for name in os.listdir(workdir_fd):
        source = os.open(name, os.O_RDONLY, dir_fd=workdir_fd)
        target = os.open(os.path.join(workdir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        while True:
            chunk = os.read(source, 1 << 20)
            if not chunk:
                break
            os.write(target, chunk)
        os.fchown(target, owner, owner)
        os.close(source)
        os.close(target)
    os.close(workdir_fd)
    status["workdir"] = "private tmpfs"
    # The masks read-only once the work directory is mounted (it may lie under one): as an ordinary user a mask's
    # tmpfs is the user's own, and memory written there would be bounded only by its size.
    for directory in masked:
        mount(None, directory, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        status["proc"] = "private"
    except OSError as error:
        status["proc"] = f"host's ({error.strerror})"


def drop_privileges(settings):
    uid = settings.get("uid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    LIBC.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)  # set after setuid, which clears it


def exec_program(settings):
    start = 3
    for fd in sorted(set(settings["keep_fds"])):
        os.closerange(start, fd)
        os.set_inheritable(fd, True)
        start = fd + 1
    os.closerange(start, 1 << 16)
    os.chdir(settings["workdir"])
    os.execve(settings["argv"][0], settings["argv"], settings["env"])


def exit_code(wait_status):
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def run_init(settings, status, status_fd):
    """PID 1 of the namespace: mounts, then the program as its child; reap everything; exit with its status."""
    LIBC.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if status.get("mount_namespace"):
        try:
            build_mounts(settings, status)
        except OSError as error:  # fail closed: no program runs with less isolation than was set up to apply
            status["mount_error"] = str(error)
            report(status_fd, status)
            os._exit(126)
    write_sysctls(settings, status)
    install_seccomp(status)
    report(status_fd, status)
    program = os.fork()
    if program == 0:
        try:
            drop_privileges(settings)
            exec_program(settings)
        finally:
            os._exit(127)
    while True:
        try:
            pid, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(127)
        if pid == program:
            os._exit(exit_code(wait_status))


def report(status_fd, status):
    if status_fd is not None:
        os.write(status_fd, (repr(status) + "\n").encode())
        os.close(status_fd)


def kill_uid(uid):
    """Kill every process of ``uid`` (as that uid: kill(-1) reaches exactly them)."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    with contextlib.suppress(OSError):
        os.kill(-1, SIGKILL)


def main():
    settings = marshal.loads(bytes.fromhex(sys.argv[1]))
    if "kill_uid" in settings:
        kill_uid(settings["kill_uid"])
        return 0
    status_fd = settings.get("status_fd")
    root = os.getuid() == 0
    limits = settings["limits"]
    status: dict = {  # what this process applied, reported on status_fd
        "uid": settings.get("uid") if root else os.getuid(),
        "network": "not cut",
        "proc": "host's",
        "masked": [],
    }
    if not join_cgroup(settings, status):  # fail closed: no program runs with less isolation than was set up
        report(status_fd, status)
        return 126
    pid_namespace = settings.get("namespaces", True) and enter_namespaces(root, status)
    status["pid_namespace"] = pid_namespace
    # Root is exempt from RLIMIT_NPROC: it counts once the program runs as its own uid. In a new user
    # namespace the count starts at 0 (the init and the program are 2); otherwise it is this user's total.
    if root or pid_namespace:
        processes = limits["processes"] + (2 if pid_namespace and not root else 0)
    else:
        processes = own_process_count() + limits["processes"]
    set_limits(limits, processes)
    if not pid_namespace:
        install_seccomp(status)
        report(status_fd, status)
        try:
            drop_privileges(settings)
            exec_program(settings)
        finally:
            os._exit(127)
    init = os.fork()
    if init == 0:
        try:
            run_init(settings, status, status_fd)
        finally:
            os._exit(127)
    if status_fd is not None:
        os.close(status_fd)
    _signal.signal(SIGTERM, lambda *_: os.kill(init, SIGKILL))
    _, wait_status = os.waitpid(init, 0)
    return exit_code(wait_status)


if __name__ == "__main__":
    sys.exit(main())
