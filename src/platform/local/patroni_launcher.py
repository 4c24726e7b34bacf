#!/usr/bin/python3
"""Patroni as the distribution packages it, with fixes for its etcd3 client.

1. The leader key. Patroni before 3.0.3 (Debian 12 ships 3.0.2) renews an expired leader
   lease by writing the leader key unconditionally. A primary frozen longer than the TTL (a
   stalled VM, a stuck disk, SIGSTOP) thus takes the key back from the member promoted
   meanwhile, which then demotes and rewinds away the writes it acknowledged. Upstream fixed it
   in patroni/patroni#2689 and #2693: the key is moved to the new lease only while it still
   names this member, or created only while nobody holds it.

2. "etcdserver: revision of auth store is old". etcd stamps each request with the revision of
   its users and roles when it arrives and refuses it, unapplied, when they changed before it
   was applied (with JWT tokens: since the token was issued). pgdeck adds a user and a role to
   the home's etcd for every new cluster, so while many clusters start every Patroni sees many
   of its reads and writes refused; 3.0.2 takes that for a failure and does not retry.
   Upstream (patroni/patroni#2913) authenticates again and repeats the request; so does this.

3. The initialize key. Patroni races for it with a create-only write, retried when etcd is
   slow to answer. When the first attempt was applied but its answer lost (a timeout under
   load) the retry finds the key taken, by this very member, which then waits forever for
   somebody else to bootstrap (upstream too). Here the same transaction also names its
   writer in `initialize-by`; a member that finds the key taken by itself knows it won.

This launcher applies these to the versions that need them, then runs Patroni.
"""
import base64
import sys
import time
from importlib.metadata import version

from patroni.dcs import etcd3


def release(v):
    parts = []
    for p in v.split(".")[:3]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


PATRONI = release(version("patroni"))


def claim(client, fields, retry=None):
    """Put the leader key with our lease if it names us, else only if it does not exist."""
    put = {"request_put": fields}
    create = {"key": fields["key"], "target": "CREATE", "create_revision": "0"}
    request = {
        "compare": [{"key": fields["key"], "target": "VALUE", "value": fields["value"]}],
        "success": [put],
        "failure": [{"request_txn": {"compare": [create], "success": [put]}}],
    }
    response = client.call_rpc("/kv/txn", request, retry)
    if response.get("succeeded"):
        return True
    nested = (response.get("responses") or [{}])[0].get("response_txn", {})
    return bool(nested.get("succeeded"))


claim = etcd3.Etcd3Client.__dict__["_handle_auth_errors"](claim)


@etcd3.catch_return_false_exception
def update_leader(self):
    retry = self._retry.copy()

    def _retry(*args, **kwargs):
        kwargs["retry"] = retry
        return retry(*args, **kwargs)

    self._run_and_handle_exceptions(self._do_refresh_lease, True, retry=_retry)
    if self._lease:
        cluster = self.cluster
        leader_lease = cluster and isinstance(cluster.leader, etcd3.Leader) and cluster.leader.session
        if leader_lease != self._lease:
            retry.deadline = retry.stoptime - time.time()
            if retry.deadline < 1:
                raise etcd3.Etcd3Error("update_leader timeout")
            fields = {
                "key": etcd3.base64_encode(self.leader_path),
                "value": etcd3.base64_encode(self._name),
                "lease": self._lease,
            }
            if not self._run_and_handle_exceptions(claim, self._client, fields, retry=_retry):
                etcd3.logger.warning("the leader key is held by another member: not taking it back")
                return False
    return bool(self._lease)


class AuthOldRevision(etcd3.InvalidArgument):
    error = "etcdserver: revision of auth store is old"


def on_old_revision(func):
    """Repeat `func` while etcd says its users changed under it. A simple token (pgdeck's etcd)
    is stamped afresh on every request, so repeating is enough; a token that carries its
    revision (JWT) is refused again, and is then renewed."""

    def wrapper(self, *args, **kwargs):
        for attempt in range(AUTH_ATTEMPTS - 1):
            try:
                return func(self, *args, **kwargs)
            except AuthOldRevision:
                etcd3.logger.warning("etcd's users changed while the request was in flight: again")
                if attempt % 2 and self.username and self.password:
                    try:
                        self.authenticate()
                    except Exception as e:  # the old token stays; the next attempt says
                        etcd3.logger.warning("authenticating again failed: %r", e)
        return func(self, *args, **kwargs)

    return wrapper


# Each attempt is refused only when users or roles changed while it was in flight.
AUTH_ATTEMPTS = 10


def take_initialize(client, key, owner_key, name, retry=None):
    """Create the initialize key (empty) and `owner_key` naming us in one transaction; true when
    this member holds the key, by this call or by an earlier attempt whose answer was lost."""
    put = {"request_put": {"key": etcd3.base64_encode(key), "value": etcd3.base64_encode("")}}
    mark = {"request_put": {"key": etcd3.base64_encode(owner_key), "value": etcd3.base64_encode(name)}}
    request = {
        "compare": [{"key": put["request_put"]["key"], "target": "CREATE", "create_revision": "0"}],
        "success": [put, mark],
        "failure": [
            {"request_range": {"key": put["request_put"]["key"]}},
            {"request_range": {"key": mark["request_put"]["key"]}},
        ],
    }
    response = client.call_rpc("/kv/txn", request, retry)
    if response.get("succeeded"):
        return True
    found = [r.get("response_range", {}).get("kvs") or [{}] for r in response.get("responses", [])]
    if len(found) != 2:
        return False
    taken, owner = found[0][0], found[1][0]
    # Written together: the marker's last write is the key's creation.
    return (
        "create_revision" in taken
        and owner.get("mod_revision") == taken["create_revision"]
        and base64.b64decode(owner.get("value", "")).decode("utf-8", "replace") == name
    )


take_initialize = on_old_revision(etcd3.Etcd3Client.__dict__["_handle_auth_errors"](take_initialize))
claim = on_old_revision(claim)

original_initialize = etcd3.Etcd3.initialize


def initialize(self, create_new=True, sysid=""):
    if not create_new:
        return original_initialize(self, create_new, sysid)
    return take_initialize_caught(self)


@etcd3.catch_etcd_errors
def take_initialize_caught(self):
    owner = self.initialize_path + "-by"
    return self.retry(take_initialize, self._client, self.initialize_path, owner, self._name) or None


if PATRONI < (3, 0, 3):
    etcd3.Etcd3._update_leader = update_leader
if PATRONI < (3, 1, 0):
    etcd3.errStringToClientError[AuthOldRevision.error] = AuthOldRevision
    for method in ("range", "lease_grant", "put", "deleterange"):
        setattr(etcd3.PatroniEtcd3Client, method, on_old_revision(getattr(etcd3.PatroniEtcd3Client, method)))
    etcd3.Etcd3.initialize = initialize

# Patroni's helpers start with multiprocessing's spawn, which imports this file again as
# `__mp_main__`: only the first import runs Patroni.
if __name__ == "__main__":
    from patroni.__main__ import main

    sys.argv[0] = "patroni"
    sys.exit(main())
