"""TLS material for the mail listeners: generated once, or read from [tls]."""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.trial import unittest

from portaum_tx import tls
from portaum_tx.config import load_config


class TLSTests(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="portaum-tls-test-")
        self.addCleanup(shutil.rmtree, self.directory, True)

    def test_self_signed_pair_is_generated_once_and_reused(self):
        config = load_config(None, [f"storage.data_dir={self.directory}"])
        cert_path, key_path = tls.certificate_paths(config)
        self.assertEqual(os.path.dirname(cert_path), os.path.join(self.directory, "tls"))
        self.assertEqual(os.stat(key_path).st_mode & 0o777, 0o600)
        with open(cert_path, "rb") as handle:
            first = handle.read()
        self.assertEqual(tls.certificate_paths(config), (cert_path, key_path))
        with open(cert_path, "rb") as handle:
            self.assertEqual(handle.read(), first)
        self.assertIsNotNone(tls.context_factory(config).getContext())

    def test_configured_files_are_used_and_bad_ones_named(self):
        cert_pem, key_pem = tls.generate_self_signed("mail.example.net")
        cert_path = os.path.join(self.directory, "mail.crt")
        key_path = os.path.join(self.directory, "mail.key")
        with open(cert_path, "wb") as handle:
            handle.write(cert_pem)
        with open(key_path, "wb") as handle:
            handle.write(key_pem)
        config = load_config(None, [f"tls.certificate={cert_path}", f"tls.private_key={key_path}"])
        self.assertIsNotNone(tls.context_factory(config).getContext())
        with open(key_path, "wb") as handle:
            handle.write(b"not a key")
        with self.assertRaises(tls.TLSConfigError) as caught:
            tls.context_factory(config)
        self.assertIn(key_path, str(caught.exception))
        missing = load_config(None, ["tls.certificate=/nonexistent/mail.crt"])
        with self.assertRaises(tls.TLSConfigError) as caught:
            tls.context_factory(missing)
        self.assertEqual(str(caught.exception),
                         "[tls] certificate: cannot read /nonexistent/mail.crt: "
                         "No such file or directory")
