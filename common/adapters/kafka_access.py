"""The access check: connect and authenticate once, so a refusal is reported in its own words.

kafka-python 3.0.12 mostly loses the broker's authentication error (it reads the connection's
close before the error and reports "socket disconnected" / "Unable to bootstrap"), so the local
poller checks access itself before building a consumer, and says exactly why it cannot read.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from common.adapters.config import Settings
from common.adapters.kafka_settings import (
    KafkaAuthenticationError,
    KafkaTlsError,
    bootstrap_servers,
    security_options,
)


def _split(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    return host.strip("[]") or "localhost", int(port or 9092)


def check_access(settings: Settings, *, timeout: float = 5.0) -> None:
    """Connect to the first reachable bootstrap server with TLS and SASL as configured.

    Raises `KafkaTlsError` / `KafkaAuthenticationError` with the handshake's or the broker's
    own words, `KafkaCredentialsError` when the secret cannot be read, `ConnectionError` when no
    server accepts a TCP connection. PLAINTEXT has nothing to check beyond TCP.
    """
    options = security_options(settings)
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return
    errors: list[str] = []
    for server in bootstrap_servers(settings):
        host, port = _split(server)
        try:
            sock: socket.socket = socket.create_connection((host, port), timeout)
        except OSError as exc:
            errors.append(f"{server}: {exc}")
            continue
        try:
            sock.settimeout(timeout)
            if "ssl_context" in options:
                try:
                    sock = options["ssl_context"].wrap_socket(sock, server_hostname=host)
                except (ssl.SSLError, ssl.CertificateError) as exc:
                    raise KafkaTlsError(f"TLS handshake with {server} failed: {_tls_reason(exc)}") from None
            if protocol.startswith("SASL_"):
                _authenticate(sock, host, options, server)
            return
        except OSError as exc:
            if isinstance(exc, ssl.SSLError):
                raise KafkaTlsError(f"TLS with {server} failed: {_tls_reason(exc)}") from None
            errors.append(f"{server}: {exc}")
        finally:
            sock.close()
    raise ConnectionError("no Kafka bootstrap server reachable: " + "; ".join(errors))


def _tls_reason(exc: Exception) -> str:
    """`CERTIFICATE_VERIFY_FAILED (unable to get local issuer certificate)` rather than a repr."""
    reason = getattr(exc, "reason", None) or str(exc)
    detail = getattr(exc, "verify_message", None)
    return f"{reason} ({detail})" if detail else str(reason)


def _authenticate(sock: socket.socket, host: str, options: dict[str, Any], server: str) -> None:
    """SaslHandshake v1, then SaslAuthenticate v1 rounds driven by kafka-python's own mechanism."""
    import kafka.errors as errors
    from kafka.net.sasl import get_sasl_mechanism
    from kafka.protocol.parser import KafkaProtocol
    from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

    parser = KafkaProtocol(client_id="warehouse-access-check")

    def call(request: Any) -> Any:
        parser.send_request(request)
        sock.sendall(parser.send_bytes())
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"{server} closed the connection during SASL authentication")
            responses = parser.receive_bytes(data)
            if responses:
                return responses[0][1]

    name = options["sasl_mechanism"]
    handshake = SaslHandshakeRequest(mechanism=name)
    handshake.API_VERSION = 1
    answer = call(handshake)
    if answer.error_code:
        offered = ", ".join(answer.mechanisms or []) or "none"
        raise KafkaAuthenticationError(
            f"{server} does not accept SASL mechanism {name} (it offers {offered})"
        )
    mechanism = get_sasl_mechanism(name)(host=host, **options)
    while not mechanism.is_done():
        request = SaslAuthenticateRequest(auth_bytes=mechanism.auth_bytes())
        request.API_VERSION = 1
        answer = call(request)
        if answer.error_code:
            kind = errors.for_code(answer.error_code).__name__
            raise KafkaAuthenticationError(f"{server}: {answer.error_message or kind}")
        mechanism.receive(answer.auth_bytes)
    if not mechanism.is_authenticated():
        raise KafkaAuthenticationError(f"{server}: the SASL {name} exchange did not authenticate")
