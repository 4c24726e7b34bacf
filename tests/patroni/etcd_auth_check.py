"""Patroni 3.0.2's etcd3 client, as the launcher fixes it, against a real etcd with users and
roles (as the local platform runs it). Run by tests/patroni_launcher.rs:
    /usr/bin/python3 etcd_auth_check.py <etcd endpoint> <patroni_launcher.py>
Exits non-zero, saying why, when a check fails."""
import base64
import importlib.machinery
import importlib.util
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request

endpoint, launcher_path = sys.argv[1], sys.argv[2]
logging.basicConfig(level=logging.CRITICAL)


def call(path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    request = urllib.request.Request(endpoint + "/v3" + path, json.dumps(body).encode(), headers)
    return json.load(urllib.request.urlopen(request, timeout=10))


def b64(s):
    return base64.b64encode(s.encode()).decode()


# Users and roles as pgdeck makes them: root, and one user per cluster reaching its prefix.
call("/auth/role/add", {"name": "root"})
call("/auth/user/add", {"name": "root", "password": "rootpw"})
call("/auth/user/grant", {"user": "root", "role": "root"})
call("/auth/role/add", {"name": "c"})
call("/auth/role/grant", {"name": "c", "perm": {"permType": "READWRITE", "key": b64("/x/"), "range_end": b64("/x0")}})
call("/auth/user/add", {"name": "c", "password": "cpw"})
call("/auth/user/grant", {"user": "c", "role": "c"})
call("/auth/enable", {})
root = call("/auth/authenticate", {"name": "root", "password": "rootpw"})["token"]

from patroni.dcs.etcd3 import Etcd3  # noqa: E402


def dcs(scope, name):
    return Etcd3({"hosts": [endpoint.split("//")[1]], "username": "c", "password": "cpw", "scope": scope,
                  "name": name, "namespace": "/x/", "ttl": 30, "retry_timeout": 10, "loop_wait": 10})


def writes_while_users_change(client, seconds):
    """Writes through `client` while other clusters' roles are being added: (done, refused)."""
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            i += 1
            call("/auth/role/add", {"name": "other-%d-%d" % (time.time_ns(), i)}, root)

    t = threading.Thread(target=churn)
    t.start()
    done = refused = 0
    until = time.time() + seconds
    while time.time() < until:
        try:
            client.put("/x/c/history", "[]")
            done += 1
        except Exception as e:
            refused += 1
            last = e
    stop.set()
    t.join()
    if refused:
        print("refused:", last)
    return done, refused


failures = []
member = dcs("c", "m1")

# The condition, as Debian's Patroni meets it: writes refused while users change.
done, refused = writes_while_users_change(member._client, 3)
print("unpatched: %d writes done, %d refused" % (done, refused))
if refused == 0:
    failures.append("the unpatched client was never refused: the condition was not reproduced")

spec = importlib.util.spec_from_loader("launcher", importlib.machinery.SourceFileLoader("launcher", launcher_path))
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)

retried = []
logging.getLogger("patroni.dcs.etcd3").addHandler(type("H", (logging.Handler,), {
    "emit": lambda self, record: retried.append(record.getMessage())})())
logging.getLogger("patroni.dcs.etcd3").setLevel(logging.WARNING)
done, refused = writes_while_users_change(member._client, 3)
print("patched: %d writes done, %d refused, %d repeated" % (done, refused, len(retried)))
if refused:
    failures.append("%d writes refused through the launcher" % refused)
if not retried:
    failures.append("no write was repeated: the users did not change under any (nothing proved)")

# The initialize key: a first attempt applied whose answer was lost.
first, second = dcs("lost", "m1"), dcs("lost", "m2")
owner = first.initialize_path + "-by"
if not launcher.take_initialize(first._client, first.initialize_path, owner, "m1"):
    failures.append("the first attempt did not take the initialize key")
if launcher.original_initialize(first, True, ""):
    failures.append("unpatched, the retry was expected to lose to its own first attempt")
if not first.initialize(create_new=True):
    failures.append("the retry did not see that its first attempt took the key")
if second.initialize(create_new=True):
    failures.append("another member took an initialize key that m1 holds")
# Cancelled, then taken by the other: m1's old marker does not make it m1's.
first.cancel_initialization()
if not second.initialize(create_new=True):
    failures.append("m2 could not take the key once m1 cancelled")
if first.initialize(create_new=True):
    failures.append("m1 took m2's initialize key for its own (a stale marker)")
if not first.initialize(create_new=False, sysid="7"):
    failures.append("writing the system identifier (create_new=False) failed")

if failures:
    print("FAILED: " + "; ".join(failures))
    sys.exit(1)
print("ok")
