"""Tests of ragutils.tools.rst: reST markup becomes the text a reader sees, and FAQ sections their questions."""

from ragutils.tools.rst import is_question, rst_blocks, rst_inline, rst_sections


def test_rst_cleaning():
    refs = {"why-self": "Why must 'self' be used?"}
    assert rst_inline(":func:`len` and :meth:`~str.join`", refs) == "len() and join()"
    assert rst_inline("``x = 1`` and :mod:`os` and :pep:`8`", refs) == "x = 1 and os and PEP 8"
    assert rst_inline("`Python <https://python.org>`_ and :ref:`why-self`", refs) == \
        "Python and Why must 'self' be used?"
    assert rst_inline(":ref:`the tutorial <tutorial-index>` *really* **is** f(*args)", refs) == \
        "the tutorial really is f(*args)"
    body = [
        "Use this idiom::", "", "   for x in y:", "       pass", "",
        ".. note::", "   It is :term:`hashable`.", "",
        "* one", "* two with", "  more", "",
        ".. index:: single: nothing",
    ]
    assert rst_blocks(body, refs) == [
        "Use this idiom:", "    for x in y:\n        pass", "Note: It is hashable.", "- one\n- two with more",
    ]


def test_sections_titled_by_questions():
    text = ("=====\nFAQ\n=====\n\nIntro\n=====\n\n"
            "Why so?\n-------\n\nBecause.\n\nHow to do it\n------------\n\nLike so.\n")
    sections = rst_sections(text)
    assert [title for title, _ in sections] == ["FAQ", "Intro", "Why so?", "How to do it"]
    assert [is_question(title) for title, _ in sections] == [False, False, True, True]
