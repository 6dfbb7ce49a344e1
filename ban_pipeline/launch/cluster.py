"""Check a Ray cluster's address before joining it, so that a wrong address or a missing token is one line.

``ray.init(address=...)`` retries for a minute or more when nothing answers, and when the cluster wants
an authentication token the client lacks (Ray turns token authentication on for ``ray start --head``
once a token exists, e.g. after any local ``ray.init()``), and then ends in a traceback. A TCP connect
to the GCS port and one call of Ray's own GCS client (which sends the token as ``ray.init`` would,
and is refused at once without it) tell both apart in a few seconds (Ray's internals: ``ray_private``).
"""

from __future__ import annotations

import socket

from ban.core.errors import BanError, ConfigError
from ban_pipeline.engines import ray_private

CONNECT_TIMEOUT_S = 5.0
WHERE_TOKEN = ("the cluster's token (`ray get-auth-token` on the head) in ~/.ray/auth_token, or in "
               "RAY_AUTH_TOKEN, or in a file named by RAY_AUTH_TOKEN_PATH")


def check_cluster(address: str) -> None:
    """Raise a one-line error unless a Ray cluster answers at ``address`` and accepts this client."""
    if address.startswith("ray://"):
        return  # Ray Client: another protocol, checked by ray.init itself
    if address == "auto":
        address = local_cluster()
        ray_private.enable_token_auth_if_available()  # what ray.init does for "auto"
    host, port = split(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise BanError(f"--address {address}: no Ray cluster answers there ({error.strerror or error}); "
                       "start one with `ray start --head`, or correct the address") from None
    authenticate(address)


def local_cluster() -> str:
    """The address of the cluster this host runs, as ``--address auto`` means it."""
    try:
        return ray_private.local_cluster_address()
    except ConnectionError:
        raise BanError("--address auto: no Ray cluster runs on this host; start one with `ray start --head`, "
                       "or give its address") from None


def authenticate(address: str) -> None:
    """One call to the GCS with this client's token, if any: a cluster that wants another refuses it."""
    from ray.exceptions import AuthenticationError, RpcError

    token_mode = ray_private.token_mode()
    if token_mode and not ray_private.has_token():
        raise ConfigError(f"RAY_AUTH_MODE=token but no token is set: put {WHERE_TOKEN}")
    try:
        ray_private.connect_gcs(address)
    except AuthenticationError:
        if token_mode:
            refused = f"--address {address}: the cluster refused this host's token; put {WHERE_TOKEN}"
            raise ConfigError(refused) from None
        raise ConfigError(f"--address {address}: the cluster requires authentication: run the launcher with "
                          f"RAY_AUTH_MODE=token and {WHERE_TOKEN}") from None
    except RpcError as error:
        raise BanError(f"--address {address}: no Ray cluster answers there ({error})") from None


def split(address: str) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) as a host and a port number; Ray's default port if none is given."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        if ":" in address and not address.startswith("["):
            raise ConfigError(f"--address {address}: not of the form host:port")
        return address.strip("[]"), 6379
    return host.strip("[]"), int(port)
