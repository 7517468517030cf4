"""The database connection string from an AWS Secrets Manager secret (DB_SECRET_ARN).

The secret is the JSON document RDS and its rotation functions use::

    {"engine": "postgres", "host": "...", "port": 5432, "username": "...", "password": "...",
     "dbname": "warehouse"}

It is read through Powertools Parameters, which caches it for `SECRET_MAX_AGE_SECONDS` per
execution environment, so a rotated password is picked up by new connections within that time
without a call to Secrets Manager per connection. Neither the secret nor the URL built from it is
ever logged; errors name the missing fields, never their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools.utilities import parameters

SECRET_MAX_AGE_SECONDS = 300
DEFAULT_PORT = 5432
DEFAULT_DBNAME = "postgres"
# libpq connection parameters a secret may carry besides the RDS fields, passed as query string.
QUERY_KEYS = ("sslmode", "sslrootcert", "connect_timeout", "application_name")


class SecretFormatError(ValueError):
    """The secret is not the RDS-style JSON object this service expects."""


def database_url_from_secret(arn: str) -> str:
    """A `postgresql://` URL built from the secret `arn` (cached for SECRET_MAX_AGE_SECONDS)."""
    secret = parameters.get_secret(arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(secret, Mapping):
        raise SecretFormatError(f"secret {arn} is not a JSON object")
    try:
        return database_url_from_mapping(secret)
    except SecretFormatError as exc:
        raise SecretFormatError(f"secret {arn}: {exc}") from None


def database_url_from_mapping(secret: Mapping[str, Any]) -> str:
    """Build the URL from the secret's fields; user, password and database name are URL-quoted."""
    missing = [key for key in ("username", "password", "host") if not secret.get(key)]
    if missing:
        raise SecretFormatError(f"missing field(s): {', '.join(missing)}")

    username = quote(str(secret["username"]), safe="")
    password = quote(str(secret["password"]), safe="")
    host = str(secret["host"]).strip()
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
