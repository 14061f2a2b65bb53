# A hostile tenant: tries every escape the isolation issue lists and writes what it managed, one JSON line per try,
# to results.jsonl in its working folder. Each line: {"attempt": ..., "managed": true|false, "detail": ...}.
import json, os, signal, subprocess, sys, glob, time

state = os.environ["HEDDLE_SETTING_STATEDIR"]
victim_dir = os.environ["HEDDLE_SETTING_VICTIMDIR"]
victim_pid = int(os.environ["HEDDLE_SETTING_VICTIMPID"])
out = open("results.jsonl", "w")

def report(attempt, managed, detail=""):
    out.write(json.dumps({"attempt": attempt, "managed": bool(managed), "detail": str(detail)[:300]}) + "\n")
    out.flush()

def attempt(name, action):
    try:
        result = action()
        report(name, True, result)
    except Exception as e:  # a refusal is what we hope for
        report(name, False, f"{type(e).__name__}: {e}")

# Secrets: token files, the client configuration, and anything token-like on command lines or in environments.
# Keys: the cluster CA's and every node's (with one, an instance could pass for the controller or a node).
for path in [f"{state}/controller/api-token", f"{state}/controller/ca.key", f"{state}/controller/cluster.db", f"{state}/../config.json"] + [f"{state}/agents/n{i}/node.key" for i in (1, 2, 3)]:
    attempt(f"read {path[len(state) + 1:]}", lambda p=path: open(p).read()[:10])
found = []
for proc in glob.glob("/proc/[0-9]*"):
    for name in ("cmdline", "environ"):
        try:
            text = open(f"{proc}/{name}", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except Exception:
            continue
        if "join-token" in text or "HEDDLE_JOIN" in text or "hjoin." in text or "api-token" in text or "HEDDLE_TOKEN=" in text or "node.key" in text or "ca.key" in text:
            found.append(f"{proc}/{name}: {text[:150]}")
report("find a token or token path in another process", len(found) > 0, found[:5])

# Cgroups: move itself out of its own.
for controller in ("cpuset", "memory", "pids", "freezer"):
    attempt(f"leave its {controller} cgroup", lambda c=controller: open(f"/sys/fs/cgroup/{c}/cgroup.procs", "w").write(str(os.getpid())))

# CPUs: widen its affinity to every CPU of the machine.
mine = os.sched_getaffinity(0)
try:
    os.sched_setaffinity(0, set(range(os.cpu_count())))
except OSError:
    pass
report("widen its CPUs", os.sched_getaffinity(0) != mine and len(os.sched_getaffinity(0)) > len(mine), sorted(os.sched_getaffinity(0)))

# Memory: a child that wants four times the cap.
hog = subprocess.run([sys.executable, "-c", "x = bytearray(256 * 1024 * 1024); print('allocated', len(x))"], capture_output=True, text=True)
report("use more memory than its cap", hog.returncode == 0, f"exit {hog.returncode} {hog.stdout.strip()}")

# Tasks: start more processes than its pids limit.
children = []
try:
    for i in range(300):
        children.append(subprocess.Popen(["sleep", "60"]))
except OSError as e:
    pass
report("start more processes than its limit", len(children) >= 300, f"started {len(children)}")
for child in children:
    child.kill()
    child.wait()

# Another service: signal its process, read and write its files.
attempt("signal another service's process", lambda: os.kill(victim_pid, signal.SIGKILL))
attempt("list another service's folder", lambda: os.listdir(victim_dir))
attempt("write into another service's folder", lambda: open(f"{victim_dir}/disk/app/server.txt", "w").write("owned"))

# The node's package cache and the agent's state.
for cache in glob.glob(f"{state}/agents/*/cache"):
    attempt(f"list the package cache {cache}", lambda c=cache: os.listdir(c))
    attempt(f"write into the package cache {cache}", lambda c=cache: open(f"{c}/planted", "w").write("owned"))
attempt("list the agents' instance folders", lambda: os.listdir(f"{state}/agents/n1/instances"))

# The system's programs (the host's, or the image's in a container).
attempt("rewrite /bin/sh", lambda: open("/bin/sh", "ab").write(b"owned"))

# Privilege: become root again.
attempt("become root", lambda: os.setuid(0))

# Namespaces and the kernel's less-travelled syscalls. A container's seccomp filter refuses them with EPERM; the
# process driver does not refuse a user namespace yet (issue 23), so these are tried only when the test says the
# attacker runs in a container (its Driver setting). Each runs in a child, so a success changes nothing here.
def program(*args):
    """Runs a program; a refusal is a non-zero exit, reported with the last line it wrote to stderr (the error)."""
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise OSError(f"exit {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1]}")
    return f"exit 0 {r.stdout.strip()}"

RAW = """
import ctypes, os, platform, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {"x86_64": {"keyctl": 250, "clone": 56, "clone3": 435}, "aarch64": {"keyctl": 219, "clone": 220, "clone3": 435}}[platform.machine()]
CLONE_NEWUSER = 0x10000000
def call(name, *args):
    r = libc.syscall(NR[name], *args)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{name}: {os.strerror(e)}")
    return r
def child_of(r):  # clone and clone3 return twice, like fork: the child leaves at once
    if r == 0:
        os._exit(0)
    os.waitpid(r, 0)
    print(f"child {r} ran in a new user namespace")
"""
clone_args = "(ctypes.c_uint64 * 8)(CLONE_NEWUSER, 0, 0, 0, signal.SIGCHLD, 0, 0, 0)"  # struct clone_args: flags .. exit_signal ..

# User namespaces, under both drivers (a container's seccomp filter refuses them; a process instance's own user
# namespace allows none below it).
attempt("make a user namespace: unshare -Urm true", lambda: program("unshare", "-Urm", "true"))
if hasattr(os, "unshare"):  # Python 3.12+
    attempt("make a user namespace: os.unshare(CLONE_NEWUSER)", lambda: program(sys.executable, "-c", "import os; os.unshare(os.CLONE_NEWUSER)"))
attempt("make a user namespace: clone(CLONE_NEWUSER)", lambda: program(sys.executable, "-c", RAW + "child_of(call('clone', ctypes.c_ulong(CLONE_NEWUSER | signal.SIGCHLD), None, None, None, None))"))
attempt("make a user namespace: clone3(CLONE_NEWUSER)", lambda: program(sys.executable, "-c", RAW + f"a = {clone_args}; child_of(call('clone3', ctypes.byref(a), ctypes.c_size_t(64)))"))
if os.environ.get("HEDDLE_SETTING_DRIVER") == "container":
    attempt("use the kernel keyring: keyctl(JOIN_SESSION_KEYRING)", lambda: program(sys.executable, "-c", RAW + "print('keyring', call('keyctl', 1, None))"))

# Another service's process: see it, read its environment (its settings), find its files in /tmp or /dev/shm.
report("see another service's process in /proc", os.path.exists(f"/proc/{victim_pid}"), f"/proc/{victim_pid}")
attempt("read another service's environment", lambda: open(f"/proc/{victim_pid}/environ", "rb").read()[:40])
for shared in ("/tmp", "/dev/shm"):
    def foreign(folder=shared):
        others = [f"{e} (uid {os.lstat(os.path.join(folder, e)).st_uid})" for e in os.listdir(folder) if os.lstat(os.path.join(folder, e)).st_uid != os.getuid()]
        if not others:
            raise OSError(f"{folder} holds nothing of anyone else")
        return others[:5]
    attempt(f"find another's files in {shared}", foreign)
for path in ("disk/tmp", "disk/.private/tmp"):
    attempt(f"list another service's /tmp by its path on the host ({path})", lambda p=path: os.listdir(f"{victim_dir}/{p}"))
attempt("list every process of the host", lambda: (lambda seen: seen if len(seen) > 20 else (_ for _ in ()).throw(OSError(f"sees {len(seen)} processes"))) ([p for p in os.listdir("/proc") if p.isdigit()]))

# Space: write more than its disk (size.diskMiB) into its working folder and its /tmp, and more than its /dev/shm.
def fill(path, mib):
    written = 0
    try:
        with open(path, "wb") as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(mib):
                f.write(chunk)
                f.flush()
                written += 1
            os.fsync(f.fileno())
        return f"wrote {written} MiB to {path}"
    except OSError as e:
        raise OSError(f"stopped after {written} MiB: {e}")
    finally:
        if os.path.exists(path):
            os.remove(path)
disk = int(os.environ.get("HEDDLE_SETTING_DISKMIB", "0") or 0)
attempt("write past its disk in its working folder", lambda: fill("fill.bin", disk + 16))
attempt("write past its disk in /tmp", lambda: fill("/tmp/fill.bin", disk + 16))
attempt("fill /dev/shm past its size", lambda: fill("/dev/shm/fill.bin", 80))

# A child that leaves the session and the process group, hoping to outlive the instance.
survivor = subprocess.Popen(["sleep", "3600"], start_new_session=True)  # setsid() in the child
open("survivor.pid", "w").write(str(survivor.pid))
report("done", False, os.getuid())
out.close()
while True:
    time.sleep(60)
