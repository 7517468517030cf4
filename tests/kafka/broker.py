"""A private Kafka broker for the tests that need one of their own: a second cluster, SASL_SSL.

It runs from the stack's Maven jars (`.stack/kafka/libs`, fetched by `make up`) the way
infra/scripts/stack-kafka.sh runs the shared one: one KRaft process as broker and controller,
storage formatted with `kafka.tools.StorageTool`. It listens on spare ports of 127.0.0.1:

- PLAINTEXT, unauthenticated (topic set-up, and "another cluster" for the identity tests);
- SASL_SSL with SCRAM-SHA-512, the credentials written at format time (`--add-scram`), TLS with a
  CA and a broker certificate made at start with openssl (subject alternative names 127.0.0.1
  and localhost, so the client's host name check passes).

Everything lives in a temporary directory and the process is reaped at interpreter exit
(tools.procs), so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools import procs

LIBS = procs.ROOT / ".stack" / "kafka" / "libs"
LOG4J = procs.ROOT / "infra" / "kafka" / "log4j2.yaml"
TOOLS_LOG4J = procs.ROOT / "infra" / "kafka" / "tools-log4j2.yaml"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


class BrokerError(RuntimeError):
    """The private broker could not be set up; the message carries the tool output or log tail."""


def _run(argv: list[str], *, timeout: float = 180) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise BrokerError(
            f"{argv[0]} {' '.join(argv[1:3])} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return done.stdout


def _java_tool(*args: str) -> str:
    return _run(
        [
            "java",
            "-Xms64m",
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={TOOLS_LOG4J}",
            "-cp",
            f"{LIBS}/*",
            *args,
        ]  # fmt: skip
    )


@dataclass
class TlsFiles:
    """A CA and a broker key pair signed by it; the keystore Kafka reads is PKCS12."""

    ca_cert: Path
    keystore: Path
    keystore_password: str

    @classmethod
    def create(cls, directory: Path) -> TlsFiles:
        directory.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
        key, csr, cert = directory / "broker.key", directory / "broker.csr", directory / "broker.pem"
        ext = directory / "broker.ext"
        keystore, password = directory / "broker.p12", secrets.token_hex(12)
        subject = "/CN=warehouse-test-ca"
        _run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(ca_key),
                "-out",
                str(ca_cert),
                "-subj",
                subject,
                # Python 3.13's default verification (VERIFY_X509_STRICT) wants a CA to say so.
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]  # fmt: skip
        )
        _run(
            [
                "openssl",
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(csr),
                "-subj",
                "/CN=localhost",
            ]  # fmt: skip
        )
        ext.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
        _run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(csr),
                "-CA",
                str(ca_cert),
                "-CAkey",
                str(ca_key),
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                str(cert),
                "-extfile",
                str(ext),
            ]  # fmt: skip
        )
        _run(
            [
                "openssl",
                "pkcs12",
                "-export",
                "-in",
                str(cert),
                "-inkey",
                str(key),
                "-certfile",
                str(ca_cert),
                "-name",
                "broker",
                "-out",
                str(keystore),
                "-passout",
                f"pass:{password}",
            ]  # fmt: skip
        )
        return cls(ca_cert, keystore, password)


@dataclass
class PrivateBroker:
    """One KRaft broker+controller process with a PLAINTEXT and a SASL_SSL listener."""

    directory: Path
    username: str = "warehouse-poller"
    password: str = field(default_factory=lambda: f"scram-{secrets.token_hex(10)}")
    plaintext_port: int = 0
    sasl_ssl_port: int = 0
    controller_port: int = 0
    cluster_id: str = ""
    tls: TlsFiles | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def plaintext(self) -> str:
        return f"127.0.0.1:{self.plaintext_port}"

    @property
    def sasl_ssl(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "kafka.log"

    def properties(self) -> str:
        assert self.tls is not None
        p, s, c = self.plaintext_port, self.sasl_ssl_port, self.controller_port
        return f"""
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{c}
listeners=PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{s},CONTROLLER://127.0.0.1:{c}
advertised.listeners=PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{s}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms={SCRAM_MECHANISM}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={SCRAM_LOGIN_MODULE} required;
ssl.keystore.type=PKCS12
ssl.keystore.location={self.tls.keystore}
ssl.keystore.password={self.tls.keystore_password}
ssl.key.password={self.tls.keystore_password}
log.dirs={self.directory / "data"}
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
"""

    def start(self, timeout: float = 180) -> None:
        if not (LIBS / ".pom.sha256").is_file():
            raise BrokerError(f"no Kafka jars in {LIBS}: run `make up` first")
        if shutil.which("openssl") is None or shutil.which("java") is None:
            raise BrokerError("openssl and java are needed for the private broker")
        self.plaintext_port, self.sasl_ssl_port, self.controller_port = procs.free_ports(3)
        self.tls = TlsFiles.create(self.directory / "tls")
        props = self.directory / "server.properties"
        props.write_text(self.properties())
        self.cluster_id = _java_tool("kafka.tools.StorageTool", "random-uuid").strip()
        _java_tool(
            "kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(props),
            "--add-scram", f"{SCRAM_MECHANISM}=[name={self.username},password={self.password}]",
        )  # fmt: skip
        argv = [
            "java", "-Xms128m", "-Xmx384m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J}",
            "-cp", f"{LIBS}/*", "kafka.Kafka", str(props),
        ]  # fmt: skip
        self.process = procs.start(argv, procs.base_env(), self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with {self.process.returncode}:\n{procs.tail(self.log_path)}"
                )
            if (
                procs.port_open(self.plaintext_port)
                and procs.port_open(self.sasl_ssl_port)
                and self._serves()
            ):
                return
            time.sleep(0.5)
        self.stop()
        raise BrokerError(f"the broker did not serve within {timeout:.0f}s:\n{procs.tail(self.log_path)}")

    def _serves(self) -> bool:
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.plaintext, request_timeout_ms=5000)
        except Exception:
            return False
        try:
            admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            admin.close()

    def create_topic(self, name: str, partitions: int = 3) -> None:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.plaintext)
        try:
            admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}})
            admin.wait_for_topics([name], timeout_ms=30_000)
        finally:
            admin.close()

    def stop(self) -> None:
        procs.stop(self.process, timeout=20)
        self.process = None


def start_private_broker() -> PrivateBroker:
    directory = Path(tempfile.mkdtemp(prefix="warehouse-kafka-broker-", dir=os.environ.get("TMPDIR", "/tmp")))
    broker = PrivateBroker(directory)
    try:
        broker.start()
    except Exception:
        broker.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return broker


def remove(broker: PrivateBroker) -> None:
    broker.stop()
    shutil.rmtree(broker.directory, ignore_errors=True)


__all__ = ["BrokerError", "PrivateBroker", "SCRAM_MECHANISM", "remove", "start_private_broker"]
