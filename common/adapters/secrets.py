"""Secrets from AWS Secrets Manager: the database's connection details and the bearer tokens.

The database secret (DB_SECRET_ARN) is the JSON document RDS and its rotation functions use::

    {"engine": "postgres", "host": "...", "port": 5432, "username": "...", "password": "...",
     "dbname": "warehouse"}

A token secret (WEBHOOK_TOKEN_SECRET_ARN, OPERATOR_TOKEN_SECRET_ARN) is the token itself as a
plain SecretString.

Both are read through Powertools Parameters, which caches each for its max age per execution
environment: no call to Secrets Manager per connection or per request. The pool asks for the
database secret on every new connection, so a rotated password reaches new connections within
`SECRET_MAX_AGE_SECONDS`, and at once when PostgreSQL refuses the cached one (`common.adapters.db` then
reads it with `force_fetch`). A rotated token takes effect within `TOKEN_MAX_AGE_SECONDS`. No
secret, and no URL built from one, is ever logged; errors name missing fields, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools.utilities import parameters

SECRET_MAX_AGE_SECONDS = 300
# Short: producers and operators switch to a rotated token within a minute.
TOKEN_MAX_AGE_SECONDS = 60
DEFAULT_PORT = 5432
DEFAULT_DBNAME = "postgres"
# libpq connection parameters a secret may carry besides the RDS fields, passed as query string.
QUERY_KEYS = ("sslmode", "sslrootcert", "connect_timeout", "application_name")


class SecretFormatError(ValueError):
    """The secret is not the RDS-style JSON object this service expects."""


def database_url_from_secret(arn: str, *, host: str | None = None, force_fetch: bool = False) -> str:
    """A `postgresql://` URL built from the secret `arn` (cached for SECRET_MAX_AGE_SECONDS).

    `host` (an RDS Proxy endpoint) replaces the secret's host; `force_fetch` bypasses the cache.
    """
    if force_fetch:
        secret = parameters.get_secret(
            arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS, force_fetch=True
        )
    else:
        secret = parameters.get_secret(arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(secret, Mapping):
        raise SecretFormatError(f"secret {arn} is not a JSON object")
    try:
        return database_url_from_mapping(secret, host=host)
    except SecretFormatError as exc:
        raise SecretFormatError(f"secret {arn}: {exc}") from None


def database_url_from_mapping(secret: Mapping[str, Any], *, host: str | None = None) -> str:
    """Build the URL from the secret's fields; user, password and database name are URL-quoted."""
    required = ("username", "password") if host else ("username", "password", "host")
    missing = [key for key in required if not secret.get(key)]
    if missing:
        raise SecretFormatError(f"missing field(s): {', '.join(missing)}")

    username = quote(str(secret["username"]), safe="")
    password = quote(str(secret["password"]), safe="")
    host = (host or str(secret["host"])).strip()
    if ":" in host and not host.startswith("["):  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = int(secret.get("port") or DEFAULT_PORT)
    except (TypeError, ValueError):
        raise SecretFormatError("field port is not a number") from None
    # RDS secrets name the database `dbname`; secrets made for an instance sometimes carry only
    # `dbInstanceIdentifier`, which by convention is also the database's name.
    dbname = secret.get("dbname") or secret.get("dbInstanceIdentifier") or DEFAULT_DBNAME
    url = f"postgresql://{username}:{password}@{host}:{port}/{quote(str(dbname), safe='')}"

    query = {key: str(secret[key]) for key in QUERY_KEYS if secret.get(key) not in (None, "")}
    return f"{url}?{urlencode(query)}" if query else url


def token_from_secret(arn: str) -> str:
    """The bearer token held by the secret `arn` (its plain SecretString, cached TOKEN_MAX_AGE_SECONDS).

    Surrounding whitespace is dropped (a token pasted with a newline still matches). An empty
    secret is an error, never "no token": the route it guards must not open because of it.
    """
    value = parameters.get_secret(arn, max_age=TOKEN_MAX_AGE_SECONDS)
    token = value.strip() if isinstance(value, str) else ""
    if not token:
        raise SecretFormatError(f"secret {arn} holds no token (an empty or binary SecretString)")
    return token
