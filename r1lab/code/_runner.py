"""The sandbox bootstrap: the first process of every sandboxed program (stdlib only, run as ``python -I -S``).

r1lab starts it in a new session with one argument, the settings (a dict) in ``marshal`` format as hex: no
json, re or enum to import, which would double this process's start-up. It applies what the machine allows,
reports what it applied on ``status_fd`` (one line, a Python literal), then starts the program:

- resource limits (CPU time, address space, processes, file size, open files, no core files);
- new mount, PID, network, IPC and UTS namespaces (plus a user namespace when not root) where permitted: no
  network (not even loopback), a fresh /proc that shows only the sandbox's processes, every mount read-only,
  tmpfs over the world-writable and private directories (``mask``) with only the interpreter bound back
  (read-only), and the work directory a private tmpfs;
- as root, a dedicated unprivileged uid/gid for the program (no supplementary groups), so that it can neither
  signal nor read r1lab's processes and files, and so that RLIMIT_NPROC applies (root is exempt from it);
- no new privileges, parent-death signal, a minimal environment, only fds 0-2 and ``keep_fds`` left open.

With a PID namespace this process forks the namespace's init (pid 1, a reaper), which forks the program; when
the program exits the init exits and the kernel kills whatever the program left behind. The exit status is
the program's (128 + signal when a signal ended it).
"""

import _signal
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
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
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
    for flags in ((base,) if root else (base | CLONE_NEWUSER, CLONE_NEWUSER | CLONE_NEWNET)):
        if LIBC.unshare(ctypes.c_int(flags)) == 0:
            break
        status.setdefault("unshare_errors", []).append(os.strerror(ctypes.get_errno()))
    else:
        return False
    if flags & CLONE_NEWUSER:  # keep our own uid/gid inside: the program stays the user it is
        uid, gid = os.getuid(), os.getgid()
        for path, text in (("/proc/self/setgroups", "deny"), ("/proc/self/uid_map", f"{uid} {uid} 1"), ("/proc/self/gid_map", f"{gid} {gid} 1")):
            with open(path, "w", encoding="ascii") as handle:
                handle.write(text)
    status["network"] = "cut (new network namespace)"
    status["mount_namespace"] = bool(flags & CLONE_NEWNS)
    return bool(flags & CLONE_NEWPID)


# Per-mount options that a remount must keep (in a user namespace the kernel refuses to drop locked ones).
KEPT_OPTIONS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
                "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME}


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
    mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={settings['tmpfs_bytes']},nr_inodes=4096,mode=700,uid={owner},gid={owner}")
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
    try:
        os.kill(-1, SIGKILL)
    except OSError:
        pass


def main():
    settings = marshal.loads(bytes.fromhex(sys.argv[1]))
    if "kill_uid" in settings:
        kill_uid(settings["kill_uid"])
        return 0
    status_fd = settings.get("status_fd")
    root = os.getuid() == 0
    limits = settings["limits"]
    status = {"uid": settings.get("uid") if root else os.getuid(), "network": "not cut", "proc": "host's", "masked": []}
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
