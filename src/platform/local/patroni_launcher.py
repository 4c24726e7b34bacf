#!/usr/bin/python3
"""Patroni as the distribution packages it, with upstream's fix for the etcd3 leader key.

Patroni before 3.0.3 (Debian 12 ships 3.0.2) renews an expired leader lease by writing the
leader key unconditionally. A primary frozen longer than the TTL (a stalled VM, a stuck disk,
SIGSTOP) thus takes the key back from the member promoted meanwhile, which then demotes and
rewinds away the writes it acknowledged. Upstream fixed it in patroni/patroni#2689 and #2693:
the key is moved to the new lease only while it still names this member, or created only
while nobody holds it. This launcher applies that fix to older versions, then runs Patroni.
"""
import sys
import time
from importlib.metadata import version

from patroni.dcs import etcd3


def fixed_upstream(v):
    parts = []
    for p in v.split(".")[:3]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= (3, 0, 3)


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


if not fixed_upstream(version("patroni")):
    etcd3.Etcd3._update_leader = update_leader

# Patroni's helpers start with multiprocessing's spawn, which imports this file again as
# `__mp_main__`: only the first import runs Patroni.
if __name__ == "__main__":
    from patroni.__main__ import main

    sys.argv[0] = "patroni"
    sys.exit(main())
