import os
import tempfile

from twisted.trial import unittest

from portaum_tx.config import SECTIONS, ConfigError, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigTests(unittest.TestCase):
    def write(self, text):
        handle, path = tempfile.mkstemp(suffix=".conf")
        os.write(handle, text.encode())
        os.close(handle)
        self.addCleanup(os.unlink, path)
        return path

    def assertError(self, text, expected, overrides=()):
        path = self.write(text) if text is not None else None
        with self.assertRaises(ConfigError) as caught:
            load_config(path, overrides)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertEqual(message, expected.format(path=path))

    def test_defaults(self):
        config = load_config()
        self.assertEqual(config.storage.engine, "sqlite")
        self.assertEqual(config.sqlite_path, os.path.join("var", "portaum.sqlite"))
        self.assertEqual((config.sip.udp_port, config.sip.tcp_port), (5060, 5060))
        self.assertEqual((config.imap.port, config.imap.tls_port), (1143, 1993))
        self.assertEqual((config.pop3.port, config.pop3.tls_port), (1110, 1995))
        self.assertEqual((config.smtp.port, config.smtp.submission_port), (1025, 1587))
        self.assertEqual(config.web.port, 8080)
        self.assertEqual(config.smtp.max_message_size, 25 * 1024 * 1024)

    def test_file_values_and_overrides(self):
        path = self.write("[sip]\nudp_port = 5070\n\n[rtp]\ndead_peer_timeout = 2m\n"
                          "[imap]\nallow_plaintext_auth = yes\n")
        config = load_config(path, ["sip.udp_port=5080", "prompts.languages=es, en"])
        self.assertEqual(config.sip.udp_port, 5080)
        self.assertEqual(config.rtp.dead_peer_timeout, 120.0)
        self.assertIs(config.imap.allow_plaintext_auth, True)
        self.assertEqual(config.prompts.languages, ("es", "en"))

    def test_unknown_section(self):
        self.assertError("# hello\n[sipp]\nport = 1\n",
                         "{path}:2: [sipp]: unknown section; known sections are "
                         + ", ".join(SECTIONS))

    def test_unknown_key(self):
        self.assertError("[sip]\nudp_port = 5060\nudp_prot = 5\n",
                         "{path}:3: [sip] udp_prot: unknown option")

    def test_wrong_types(self):
        self.assertError("[sip]\nudp_port = fifty\n",
                         "{path}:2: [sip] udp_port: expected a port number 0-65535 (0 = off), "
                         "got 'fifty'")
        self.assertError("[imap]\nallow_plaintext_auth = maybe\n",
                         "{path}:2: [imap] allow_plaintext_auth: expected yes or no, got 'maybe'")
        self.assertError("[storage]\nengine = mysql\n",
                         "{path}:2: [storage] engine: expected one of sqlite, postgres, got 'mysql'")
        self.assertError("[smtp]\nmax_message_size = lots\n",
                         "{path}:2: [smtp] max_message_size: expected a size such as 100M, "
                         "512K or 2G, got 'lots'")
        self.assertError("[rtp]\nsend_ahead = 50\n",
                         "{path}:2: [rtp] send_ahead: expected 0-200 ms in steps of 20 "
                         "(the media tick), got '50'")
        self.assertError("[rtp]\nprompt_ahead = 410\n",
                         "{path}:2: [rtp] prompt_ahead: expected 0-2000 ms in steps of 20 "
                         "(the media tick), got '410'")
        self.assertError("[rtp]\nprompt_ahead = 2020\n",
                         "{path}:2: [rtp] prompt_ahead: expected 0-2000 ms in steps of 20 "
                         "(the media tick), got '2020'")
        self.assertError("[rtp]\ngc_thaw_interval = 0s\n",
                         "{path}:2: [rtp] gc_thaw_interval: expected a duration above 0, got '0s'")

    def test_syntax_errors(self):
        self.assertError("[sip\n", "{path}:1: malformed section header '[sip'")
        self.assertError("udp_port = 1\n", "{path}:1: option outside of any [section]")
        self.assertError("[sip]\nudp_port\n", "{path}:2: expected 'key = value', got 'udp_port'")
        self.assertError("[sip]\nudp_port = 1\nudp_port = 2\n",
                         "{path}:3: [sip] udp_port: set twice in the same section")

    def test_missing_file(self):
        with self.assertRaises(ConfigError) as caught:
            load_config("/nonexistent/tap.conf")
        self.assertEqual(str(caught.exception), "/nonexistent/tap.conf: configuration file not found")

    def test_bad_override(self):
        self.assertError(None, "command line: [sip] udp_port: expected a port number 0-65535 "
                         "(0 = off), got 'x'", ["sip.udp_port=x"])
        self.assertError(None, "command line: expected section.key=value, got 'nonsense'",
                         ["nonsense"])

    def test_consistency(self):
        self.assertError("[storage]\nengine = postgres\n",
                         "{path}: [storage] postgres_dsn: engine = postgres needs postgres_dsn")

    def test_example_documents_every_option(self):
        """tap.conf explains every option, with its default, in its own section."""
        path = os.path.join(ROOT, "tap.conf")
        with open(path) as handle:
            text = handle.read()
        section = None
        documented = set()
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                section = stripped[1:-1]
            elif section and "=" in stripped:
                documented.add((section, stripped.lstrip("#; ").split("=")[0].strip()))
        declared = {(name, option.name) for name, options in SECTIONS.items() for option in options}
        self.assertEqual(declared - documented, set())
        load_config(path)  # and the example itself is valid
