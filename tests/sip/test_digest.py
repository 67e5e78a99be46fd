"""Digest authentication: RFC 2617/7616 vectors, UAC credentials, stateless server."""

from twisted.trial import unittest

from portaum_tx.sip.digest import (
    Challenge, DigestError, DigestServer, VerifyResult, build_authorization, compute_ha1,
    parse_challenge, parse_credentials, select_challenge,
)
from portaum_tx.sip.headers import AuthHeader


class FakeTime:
    def __init__(self, start=1_700_000_000.0):
        self.value = start

    def __call__(self):
        return self.value


class VectorTests(unittest.TestCase):
    def test_rfc2617_md5(self):
        challenge = Challenge("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                              qop=["auth", "auth-int"], opaque="5ccc069c403ebaf9f0171e9517f40e41")
        header = build_authorization(challenge, "Mufasa", "Circle Of Life", "GET",
                                     "/dir/index.html", nc=1, cnonce="0a4f113b")
        self.assertEqual(header.params["response"], "6629fae49393a05397450978507c4ef1")
        self.assertEqual(header.params["nc"], "00000001")
        self.assertEqual(header.params["qop"], "auth")

    def test_rfc7616_sha256_and_md5(self):
        nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
        cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
        for algorithm, expected in [
                ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
                ("MD5", "8ca523f5e9506fed4657c9700eebdbec")]:
            challenge = Challenge("http-auth@example.org", nonce, algorithm, ["auth"])
            header = build_authorization(challenge, "Mufasa", "Circle of Life", "GET",
                                         "/dir/index.html", cnonce=cnonce)
            self.assertEqual(header.params["response"], expected, algorithm)

    def test_no_qop(self):
        challenge = Challenge("r", "n")
        header = build_authorization(challenge, "u", "p", "REGISTER", "sip:r")
        self.assertNotIn("qop", header.params)
        self.assertNotIn("nc", header.params)


class ChallengeParsingTests(unittest.TestCase):
    def test_parse(self):
        challenge = parse_challenge('Digest realm="biloxi.com", qop="auth,auth-int", '
                                    'nonce="dcd98b", opaque="5ccc", algorithm=sha-256, stale=TRUE')
        self.assertEqual(challenge.realm, "biloxi.com")
        self.assertEqual(challenge.qop, ["auth", "auth-int"])
        self.assertEqual(challenge.algorithm, "SHA-256")
        self.assertTrue(challenge.stale)

    def test_unusable(self):
        for bad in ['Basic realm="x"', 'Digest realm="x"', 'Digest realm="x", nonce="y", algorithm=SHA-1',
                    'Digest realm="unterminated']:
            self.assertRaises(DigestError, parse_challenge, bad)

    def test_select_prefers_sha256(self):
        chosen = select_challenge(['Digest realm="r", nonce="a", algorithm=MD5',
                                   'Digest realm="r", nonce="a", algorithm=SHA-256',
                                   'NoOneKnowsThisScheme opaque-data=here'])
        self.assertEqual(chosen.algorithm, "SHA-256")
        self.assertRaises(DigestError, select_challenge, ["Basic abc"])

    def test_credentials(self):
        creds = parse_credentials(str(build_authorization(
            Challenge("r", "n", qop=["auth"], opaque="o"), "alice", "pw", "INVITE", "sip:bob@r")))
        self.assertEqual((creds.username, creds.uri, creds.qop, creds.nc, creds.opaque),
                         ("alice", "sip:bob@r", "auth", "00000001", "o"))
        for bad in ["NoOneKnowsThisScheme opaque-data=here", 'Digest username="a"',
                    'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth']:
            self.assertRaises(DigestError, parse_credentials, bad)


class ServerTests(unittest.TestCase):
    def setUp(self):
        self.clock = FakeTime()
        self.server = DigestServer("example.com", b"cluster-secret", now=self.clock)
        self.ha1 = {"MD5": compute_ha1("alice", "example.com", "wonderland", "MD5"),
                    "SHA-256": compute_ha1("alice", "example.com", "wonderland", "SHA-256")}

    def answer(self, password="wonderland", prefer=None, server=None):
        values = [str(v) for v in (server or self.server).challenge()]
        if prefer:
            values = [v for v in values if prefer in v]
        challenge = select_challenge(values)
        header = build_authorization(challenge, "alice", password, "REGISTER", "sip:example.com")
        return parse_credentials(str(header))

    def test_challenge_shape(self):
        values = self.server.challenge()
        self.assertEqual([v.params["algorithm"] for v in values], ["SHA-256", "MD5"])
        self.assertEqual(values[0].params["nonce"], values[1].params["nonce"])
        self.assertEqual(values[0].params["qop"], "auth")
        self.assertNotIn("stale", values[0].params)
        self.assertEqual(self.server.challenge(stale=True)[0].params["stale"], "true")
        self.assertIn('realm="example.com"', str(values[0]))
        self.assertIn("algorithm=SHA-256", str(values[0]))

    def test_ok_both_algorithms(self):
        for algorithm in ("SHA-256", "MD5"):
            creds = self.answer(prefer=algorithm)
            self.assertEqual(creds.algorithm, algorithm)
            self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.OK)
            self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1[algorithm]),
                             VerifyResult.OK)

    def test_wrong_password_and_method(self):
        creds = self.answer(password="guess")
        self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.INVALID)
        creds = self.answer()
        self.assertEqual(self.server.verify(creds, "INVITE", self.ha1), VerifyResult.INVALID)

    def test_stale_after_lifetime(self):
        creds = self.answer()
        self.clock.value += 299
        self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.OK)
        self.clock.value += 2
        self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.STALE)

    def test_other_node_same_secret(self):
        other = DigestServer("example.com", b"cluster-secret", now=self.clock)
        creds = self.answer(server=other)
        self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.OK)

    def test_foreign_or_forged_nonce(self):
        foreign = DigestServer("example.com", b"another-secret", now=self.clock)
        creds = self.answer(server=foreign)
        self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.INVALID)
        creds = self.answer()
        creds.nonce = creds.nonce[:-2] + ("AA" if creds.nonce[-2:] != "AA" else "BB")
        self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.INVALID)
        creds.nonce = "not base64 !"
        self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.INVALID)

    def test_wrong_realm_or_missing_ha1(self):
        creds = self.answer()
        creds.realm = "elsewhere"
        self.assertEqual(self.server.verify(creds, "REGISTER", self.ha1), VerifyResult.INVALID)
        creds = self.answer(prefer="SHA-256")
        self.assertEqual(self.server.verify(creds, "REGISTER", {"MD5": self.ha1["MD5"]}),
                         VerifyResult.INVALID)

    def test_unknown_scheme_in_request(self):
        # RFC 4475 regaut01: parses, and is simply not usable Digest.
        self.assertRaises(DigestError, parse_credentials,
                          AuthHeader.parse("NoOneKnowsThisScheme opaque-data=here"))

    def test_empty_secret_refused(self):
        self.assertRaises(ValueError, DigestServer, "r", b"")
