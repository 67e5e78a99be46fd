"""Keypad matching of surnames and the list of choices in both modes."""

import dataclasses

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.ivr import directory


@dataclasses.dataclass
class Entry:
    extension: str
    first_name: str
    last_name: str
    excluded: bool = False


STAFF = [Entry("116", "John", "Brown"), Entry("145", "Mary", "Broslavsky"),
         Entry("100", "Cecil", "Asok"), Entry("101", "Ann", "Cooper"),
         Entry("900", "Chief", "Executive", excluded=True), Entry("102", "No", "")]


class KeypadTests(unittest.TestCase):
    def test_name_keys(self):
        self.assertEqual(directory.name_keys("Brown"), "27696")
        self.assertEqual(directory.name_keys("O'Brién-Quinn"), "627436" + "78466")
        self.assertEqual(directory.name_keys("Wxyz pqrs"), "99997777")

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=30))
    def test_every_name_has_keys_of_digits_2_to_9(self, name):
        keys = directory.name_keys(name)
        self.assertTrue(set(keys) <= set("23456789"))
        self.assertEqual(len(keys), len(directory.plain_letters(name)))

    def test_search(self):
        self.assertEqual([e.last_name for e in directory.search(STAFF, "276")], ["Asok", "Broslavsky", "Brown"])
        self.assertEqual([e.last_name for e in directory.search(STAFF, "266")], ["Cooper"])
        self.assertEqual(directory.search(STAFF, "393"), [])  # Executive is excluded
        self.assertEqual(directory.search(STAFF, "999"), [])
        self.assertEqual(directory.search(STAFF, ""), [])
        self.assertEqual(directory.search(STAFF, "2*6"), [])


class ChoiceTests(unittest.TestCase):
    def test_extension_mode(self):
        options = directory.choices(directory.search(STAFF, "276"), hide_extensions=False)
        self.assertEqual([o.key for o in options], ["100", "145", "116"])
        self.assertEqual(directory.pick(options, "116").entry.last_name, "Brown")
        self.assertIsNone(directory.pick(options, "1"))
        self.assertEqual(directory.longest_key(options), 3)

    def test_sequence_mode(self):
        options = directory.choices(directory.search(STAFF, "276"), hide_extensions=True)
        self.assertEqual([(o.key, o.entry.extension) for o in options], [("1", "100"), ("2", "145"), ("3", "116")])
        self.assertEqual(directory.pick(options, "3").entry.extension, "116")
        self.assertIsNone(directory.pick(options, "116"))
        self.assertEqual(directory.longest_key(options), 1)
        many = directory.choices([Entry(str(200 + n), "A", "Brown") for n in range(12)], True)
        self.assertEqual(directory.longest_key(many), 2)

    def test_checks_and_import_names(self):
        self.assertEqual(directory.check_names(" John ", " Brown "), ("John", "Brown"))
        with self.assertRaisesRegex(directory.DirectoryError, "last name must contain letters"):
            directory.check_names("John", "42")
        with self.assertRaisesRegex(directory.DirectoryError, "extension must be 1-15 digits"):
            directory.check_extension("11a")
        self.assertEqual(directory.names_from_email("john.brown@example.com"), ("John", "Brown"))
        self.assertEqual(directory.names_from_email("mary_ann_broslavsky@x"), ("Mary", "Broslavsky"))
        self.assertEqual(directory.names_from_email("sales@example.com"), ("", ""))
        self.assertEqual(directory.names_from_email(None), ("", ""))
        self.assertEqual(directory.full_name(Entry("1", "", "Brown")), "Brown")
