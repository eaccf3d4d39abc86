"""Tests of ragutils.tools.dictd: dictd's base-64 numbers and a Jargon File entry cleaned to plain text."""

from ragutils.tools.dictd import dictd_number, jargon_entry


def test_dictd_numbers():
    assert dictd_number("A") == 0
    assert dictd_number("B") == 1
    assert dictd_number("BA") == 64
    assert dictd_number("Ph") == 15 * 64 + 33


def test_jargon_entry_cleaning():
    entry = ("TMTOWTDI\n /tim·toh'·dee/, abbrev.\n\n"
             "    There's More Than One Way To Do It, the motto of the programming language {Perl}. See {\n"
             "    hacker}.\n\n        for (;;) { x++; }\n        y--;\n\n")
    headword, text = jargon_entry(entry)
    assert headword == "TMTOWTDI"
    assert text == ("There's More Than One Way To Do It, the motto of the programming language Perl. See hacker."
                    "\n\nfor (;;) { x++; }\ny--;")
