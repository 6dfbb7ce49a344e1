"""Ray's internals that the launcher calls, and nothing else calls: the token authentication that
``ray.init`` sets up (``ray._private``) and one call of Ray's GCS client (``ray._raylet.GcsClient``).
The first call checks the installed Ray against :data:`SUPPORTED`."""

from __future__ import annotations

import functools

from ban_pipeline.engines import check_version

SUPPORTED = ">=2.60,<3"  # the extra `cluster`'s range in pyproject.toml


@functools.cache
def checked() -> None:
    check_version("ray", SUPPORTED)


def enable_token_auth_if_available() -> None:
    """What ``ray.init(address="auto")`` does first: token authentication on when a token exists."""
    checked()
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def local_cluster_address() -> str:
    """The address of the cluster this host runs (``auto``); ConnectionError when none runs."""
    checked()
    from ray._private.services import canonicalize_bootstrap_address_or_die

    return canonicalize_bootstrap_address_or_die("auto")


def token_mode() -> bool:
    """Whether this client authenticates with a token (``RAY_AUTH_MODE=token``)."""
    checked()
    from ray._raylet import AuthenticationMode, get_authentication_mode

    return get_authentication_mode() == AuthenticationMode.TOKEN


def has_token() -> bool:
    """Whether a token is set (~/.ray/auth_token, ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``)."""
    checked()
    from ray._raylet import AuthenticationTokenLoader

    return AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True)


def connect_gcs(address: str) -> None:
    """One call of the GCS at ``address`` with this client's token, if any (raises ray.exceptions'
    AuthenticationError when refused, RpcError when nothing answers)."""
    checked()
    from ray._raylet import GcsClient

    GcsClient(address=address)
