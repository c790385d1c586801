"""The email channel over TLS, as a real mail relay speaks it: aiosmtpd on 127.0.0.1 with a certificate made for
the test by a CA made for the test (cryptography), once with STARTTLS and once with implicit TLS; the client
trusts that CA through the CA-file setting and checks the server's name. A certificate it cannot verify is
refused: nothing is sent, the email stays queued with its retry, and goes once the server can be trusted."""

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django_tasks_db.models import DBTaskResult

from tasdid.messaging.models import Email
from tasdid.messaging.services import email_deliver, email_send
from tests.support.ports import free_port

pytestmark = pytest.mark.django_db


@dataclass
class Authority:
    """A CA for the test: it signs server certificates, its PEM file is what the client trusts."""

    name: str
    folder: Path
    key: ec.EllipticCurvePrivateKey = field(init=False)
    cert: x509.Certificate = field(init=False)

    def __post_init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem_file(self) -> Path:
        path = self.folder / f"{self.name}-ca.pem"
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def server_context(self, *, names: tuple[str, ...] = ("localhost",),
                       addresses: tuple[str, ...] = ("127.0.0.1",)) -> ssl.SSLContext:
        """A server's TLS context with a certificate from this CA for these names and addresses."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or addresses)[0])]))
            .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = self.folder / f"{self.name}-server.pem", self.folder / f"{self.name}-server.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context


class Relay:
    """What the SMTP server received, and whether each message came over TLS."""

    def __init__(self):
        self.received: list[tuple[bool, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        # STARTTLS records its TLS on the session; implicit TLS is the connection's own.
        over_tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.received.append((over_tls, envelope.original_content))
        return "250 Message accepted for delivery"


@pytest.fixture
def relay():
    """Start an SMTP server: ``start(mode, context)`` with mode "starttls" (STARTTLS required) or "tls"."""
    started = []

    def start(mode: str, context: ssl.SSLContext) -> tuple[Relay, int]:
        handler, port = Relay(), free_port()
        if mode == "starttls":
            controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=context,
                                    require_starttls=True)
        else:
            controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=context,
                                    server_hostname="localhost")
        controller.start()
        started.append(controller)
        return handler, port

    yield start
    for controller in started:
        controller.stop()


def use_relay(settings, *, port: int, security: str, ca_file: Path) -> None:
    settings.EMAIL_BACKEND = "tasdid.messaging.mail.SmtpBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = security == "starttls", security == "tls"
    settings.EMAIL_SSL_CAFILE = str(ca_file)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_email_goes_over_tls_to_a_server_whose_certificate_the_private_ca_signed(security, relay, settings, tmp_path):
    ca = Authority("tasdid-test", tmp_path)
    handler, port = relay(security, ca.server_context())
    use_relay(settings, port=port, security=security, ca_file=ca.pem_file)
    email = email_send(to="client@example.ma", subject="Votre reçu de paiement R2026-00000007", body_text="Merci.")

    assert email_deliver(email_id=email.pk) is True

    [(over_tls, raw)] = handler.received
    assert over_tls is True
    message = BytesParser(policy=default_policy).parsebytes(raw)
    assert message["Subject"] == "Votre reçu de paiement R2026-00000007"
    assert message.get_content().strip() == "Merci."
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 1, "")


def refused(email: Email, error: str) -> None:
    """Nothing sent, nothing lost: the email is queued again, its next try scheduled by a task."""
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("queued", 1)
    assert email.last_error.startswith(error)
    assert email.next_try_at is not None
    retry = DBTaskResult.objects.filter(task_path="tasdid.messaging.tasks.deliver_email").order_by("-enqueued_at")[0]
    assert retry.args_kwargs["kwargs"] == {"email_id": email.pk} and retry.run_after == email.next_try_at


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_certificate_from_another_ca_is_refused_and_the_email_waits_for_its_retry(security, relay, settings,
                                                                                     tmp_path):
    ours, impostor = Authority("tasdid-test", tmp_path), Authority("impostor", tmp_path)
    handler, port = relay(security, impostor.server_context())
    use_relay(settings, port=port, security=security, ca_file=ours.pem_file)
    email = email_send(to="client@example.ma", subject="Votre reçu de paiement R2026-00000008", body_text="Merci.")

    assert email_deliver(email_id=email.pk) is False

    assert handler.received == []
    refused(email, "SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED]")

    # The operator trusts the right CA (this server's): the retry sends it, once.
    settings.EMAIL_SSL_CAFILE = str(impostor.pem_file)
    assert email_deliver(email_id=email.pk) is True
    assert [over_tls for over_tls, _ in handler.received] == [True]
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 2)


def test_a_certificate_for_another_name_is_refused(relay, settings, tmp_path):
    ca = Authority("tasdid-test", tmp_path)
    handler, port = relay("starttls", ca.server_context(names=("mail.example.ma",), addresses=()))
    use_relay(settings, port=port, security="starttls", ca_file=ca.pem_file)
    email = email_send(to="client@example.ma", subject="Reçu", body_text="Merci.")

    assert email_deliver(email_id=email.pk) is False

    assert handler.received == []
    refused(email, "SSLCertVerificationError")
    assert "IP address mismatch" in email.last_error


def test_without_the_ca_file_a_private_ca_is_not_trusted(relay, settings, tmp_path):
    ca = Authority("tasdid-test", tmp_path)
    handler, port = relay("tls", ca.server_context())
    use_relay(settings, port=port, security="tls", ca_file=ca.pem_file)
    settings.EMAIL_SSL_CAFILE = ""  # the system's CAs only
    email = email_send(to="client@example.ma", subject="Reçu", body_text="Merci.")

    assert email_deliver(email_id=email.pk) is False

    assert handler.received == []
    refused(email, "SSLCertVerificationError")


def settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess:
    code = ("from django.conf import settings; "
            "print(settings.EMAIL_SECURITY, settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL, settings.EMAIL_SSL_CAFILE)")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TASDID_EMAIL_")}
    environment.update({"DJANGO_SETTINGS_MODULE": "tasdid.settings", "TASDID_SANDBOX": "1", **env})
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("env", "printed"), [
    ({}, "none False False "),
    ({"TASDID_EMAIL_SECURITY": "starttls", "TASDID_EMAIL_CA_FILE": "/etc/tasdid/ca.pem"},
     "starttls True False /etc/tasdid/ca.pem"),
    ({"TASDID_EMAIL_SECURITY": "TLS"}, "tls False True "),
    ({"TASDID_EMAIL_TLS": "1"}, "starttls True False "),  # the older switch
])
def test_the_security_setting(env, printed):
    result = settings_in_a_fresh_process(**env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip("\n") == printed


def test_an_unknown_security_setting_stops_the_start():
    result = settings_in_a_fresh_process(TASDID_EMAIL_SECURITY="ssl3")
    assert result.returncode != 0
    assert "TASDID_EMAIL_SECURITY must be none, starttls or tls, not 'ssl3'." in result.stderr
