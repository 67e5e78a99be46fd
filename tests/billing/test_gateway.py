"""The payment gateway client against a real twisted.web server on loopback (HTTPS with a
private certificate, and plain HTTP for the loopback-only exception)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, reactor, ssl
from twisted.trial import unittest
from twisted.web import resource, server

from portaum_tx.billing.gateway import (
    GatewayConfigError, GatewayUnavailable, PaymentGateway, mask_card,
)
from portaum_tx.config import load_config


def _certificate() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class GatewayPlayer(resource.Resource):
    """Plays the payment gateway: approves cards ending in an even digit, declines the rest."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.requests: list[dict] = []
        self.authorizations: list[bytes | None] = []
        self.answer_code = 200
        self.answer_body: bytes | None = None
        self.hold = False
        self.held: list = []

    def render_POST(self, request):
        self.authorizations.append(request.getHeader("authorization"))
        body = json.loads(request.content.read())
        self.requests.append(body)
        if self.hold:
            self.held.append(request)
            return server.NOT_DONE_YET
        request.setResponseCode(self.answer_code)
        if self.answer_body is not None:
            return self.answer_body
        if int(body["card_number"][-1]) % 2 == 0:
            answer = {"status": "approved", "transaction_id": f"T-{len(self.requests)}"}
        else:
            answer = {"status": "declined", "reason": "do not honour"}
        request.setHeader("content-type", "application/json")
        return json.dumps(answer).encode()


class GatewayTests(unittest.TestCase):
    def setUp(self):
        self.player = GatewayPlayer()
        cert_pem, key_pem = _certificate()
        self.trust = ssl.Certificate.loadPEM(cert_pem)
        context = ssl.PrivateCertificate.loadPEM(cert_pem + key_pem).options()
        site = server.Site(self.player)
        self.https = reactor.listenSSL(0, site, context, interface="127.0.0.1")
        self.addCleanup(self.https.stopListening)
        self.http = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.http.stopListening)

        def release_held():
            for request in self.player.held:
                if not request.finished and not request._disconnected:
                    request.finish()
        self.addCleanup(release_held)

    def gateway(self, **kwargs) -> PaymentGateway:
        kwargs.setdefault("trust_root", self.trust)
        port = self.https.getHost().port
        return PaymentGateway(reactor, f"https://localhost:{port}/charge", "portaum", "s3cret",
                              **kwargs)

    async def _charge(self, gateway, card="4111111111111112", amount=Decimal("10")):
        return await gateway.charge(reference="ref-1", account="12065557777", card_number=card,
                                    expiry="0929", amount=amount, currency="USD")

    @defer.inlineCallbacks
    def test_approved_over_https_with_basic_auth(self):
        payment = yield defer.ensureDeferred(self._charge(self.gateway()))
        self.assertTrue(payment.approved)
        self.assertEqual(payment.transaction_id, "T-1")
        self.assertEqual(payment.amount, Decimal("10"))
        self.assertEqual(self.player.requests, [{
            "reference": "ref-1", "account": "12065557777", "card_number": "4111111111111112",
            "expiry": "0929", "amount": "10.00", "currency": "USD"}])
        self.assertEqual(self.player.authorizations,
                         ["Basic " + base64.b64encode(b"portaum:s3cret").decode()])

    @defer.inlineCallbacks
    def test_declined_is_an_answer(self):
        payment = yield defer.ensureDeferred(self._charge(self.gateway(), card="4111111111111111"))
        self.assertFalse(payment.approved)
        self.assertEqual(payment.reason, "do not honour")
        self.assertIsNone(payment.transaction_id)

    @defer.inlineCallbacks
    def test_untrusted_certificate_is_refused(self):
        gateway = self.gateway(trust_root=None)
        error = yield self.assertFailure(defer.ensureDeferred(self._charge(gateway)),
                                         GatewayUnavailable)
        self.assertIn("unreachable", str(error))
        self.assertEqual(self.player.requests, [])

    @defer.inlineCallbacks
    def test_http_error_status(self):
        self.player.answer_code = 503
        self.player.answer_body = b"down for maintenance"
        error = yield self.assertFailure(defer.ensureDeferred(self._charge(self.gateway())),
                                         GatewayUnavailable)
        self.assertIn("HTTP 503", str(error))

    @defer.inlineCallbacks
    def test_answer_that_is_not_json(self):
        self.player.answer_body = b"<html>hello</html>"
        error = yield self.assertFailure(defer.ensureDeferred(self._charge(self.gateway())),
                                         GatewayUnavailable)
        self.assertIn("not JSON", str(error))

    @defer.inlineCallbacks
    def test_answer_without_status(self):
        self.player.answer_body = json.dumps({"ok": True}).encode()
        error = yield self.assertFailure(defer.ensureDeferred(self._charge(self.gateway())),
                                         GatewayUnavailable)
        self.assertIn("approved or declined", str(error))

    @defer.inlineCallbacks
    def test_approval_needs_a_transaction_id(self):
        self.player.answer_body = json.dumps({"status": "approved"}).encode()
        error = yield self.assertFailure(defer.ensureDeferred(self._charge(self.gateway())),
                                         GatewayUnavailable)
        self.assertIn("transaction_id", str(error))

    @defer.inlineCallbacks
    def test_timeout(self):
        self.player.hold = True
        gateway = self.gateway(timeout=0.3)
        error = yield self.assertFailure(defer.ensureDeferred(self._charge(gateway)),
                                         GatewayUnavailable)
        self.assertIn("did not answer within 0.3 s", str(error))
        self.assertNotIn("4111111111111112", str(error))

    @defer.inlineCallbacks
    def test_nothing_listening(self):
        port = self.http.getHost().port
        yield self.http.stopListening()
        gateway = PaymentGateway(reactor, f"http://127.0.0.1:{port}/charge", timeout=2)
        error = yield self.assertFailure(defer.ensureDeferred(self._charge(gateway)),
                                         GatewayUnavailable)
        self.assertIn("unreachable", str(error))

    @defer.inlineCallbacks
    def test_plain_http_allowed_on_loopback(self):
        port = self.http.getHost().port
        gateway = PaymentGateway(reactor, f"http://127.0.0.1:{port}/charge")
        payment = yield defer.ensureDeferred(self._charge(gateway))
        self.assertTrue(payment.approved)
        self.assertEqual(self.player.authorizations, [None])

    def test_plain_http_refused_elsewhere(self):
        with self.assertRaises(GatewayConfigError) as caught:
            PaymentGateway(reactor, "http://pay.example.com/charge")
        self.assertIn("must use https", str(caught.exception))
        with self.assertRaises(GatewayConfigError):
            PaymentGateway(reactor, "ftp://pay.example.com/")
        with self.assertRaises(GatewayConfigError):
            PaymentGateway(reactor, "https://pay.example.com/", timeout=0)

    def test_amount_must_be_positive_decimal(self):
        gateway = self.gateway()
        for amount in (Decimal(0), Decimal("-1"), 10.0):
            with self.assertRaises(ValueError):
                self._charge(gateway, amount=amount).send(None)

    def test_from_config(self):
        self.assertIsNone(PaymentGateway.from_config(load_config(), reactor))
        config = load_config(overrides=["payment.url=https://pay.example.com/v1/charge",
                                        "payment.username=u", "payment.password=p",
                                        "payment.timeout=5s"])
        gateway = PaymentGateway.from_config(config, reactor)
        self.assertEqual(gateway.url, "https://pay.example.com/v1/charge")
        self.assertEqual(gateway.timeout, 5.0)

    def test_mask_card(self):
        self.assertEqual(mask_card("4111111111111111"), "************1111")
        self.assertEqual(mask_card("12"), "12")
