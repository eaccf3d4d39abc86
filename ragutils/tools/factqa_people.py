"""Questions from sentence patterns about people (nationality, profession, birth, death, offices, prizes), and years.

The same kind of rules as ``tools.factqa_rules`` (which holds what they share), for the
articles about a person: "Bertolt Brecht was a German playwright" gives "What
nationality was Bertolt Brecht?" and "What was Bertolt Brecht's profession?".
"""

from __future__ import annotations

import re

from .derived import _base_title
from .factqa_rules import (CLAUSE, MONTHS, NAME, SPAN, WHEN, YEAR, Found, Rule, Subject, about_article,
                           opening_length, when_type)

_NATIONALITY = re.compile(r"^(?:[^,]+?)(?:, [^,]+,)? (?:is|was) (?:an?|the) (?:(?:Ancient|ancient|Classical) )?"
                          r"(?P<nat>[A-Z][a-z]+(?:-[A-Z][a-z]+)?)(?:-born| (?:and|or) [A-Z][a-z]+(?:-[A-Z][a-z]+)?)?"
                          r"(?: (?P<job>(?:[a-z-]+ ){0,2}?[a-z-]+)(?=,| and | who | known | best | whose | of | from "
                          r"| in |\.))?(?=[ ,.-])")
_NOT_NATIONALITY = frozenset(
    "Christian Catholic Franciscan Jesuit Dominican Benedictine Lutheran Protestant Jewish Muslim Sunni Shia Hindu "
    "Buddhist Republican Democratic Victorian Elizabethan Marxist Roman Renaissance Baroque Romantic Impressionist "
    "Hellenistic Byzantine Confucian Olympic Nobel Academy Grammy Major Late Early Medieval Founding Chief Prime "
    "Supreme Grand Great Holy Reformed Orthodox Islamic Anglican Sufi Stoic Neoplatonic Calvinist Puritan".split())
_NATIONALITY_ENDING = re.compile(r"(?:an|ese|ish|ch|i|ic|ek|ss|ai|sh)$")
_NOT_JOB = re.compile(r"\b(?:the|a|an|his|her|their|born|who|was|is|and|one|first|member|leader of)\b")


def nationality(subject: Subject, sentence: str, first: bool) -> Found:
    """"X was a German playwright" → "What nationality was X?" and "What was X's profession?"."""
    m = _NATIONALITY.search(sentence) if first and subject.person else None
    if not m or m.group("nat") in _NOT_NATIONALITY or not _NATIONALITY_ENDING.search(m.group("nat").split("-")[0]):
        return
    yield f"What nationality {subject.be} {subject.name}?", m, "nat", "other"
    if m.group("job") and not _NOT_JOB.search(m.group("job")):
        yield f"What {subject.be} {subject.owner} profession?", m, "job", "other"


_HONORIFICS = frozenset("Sir Dame Lord Lady Saint St Captain Admiral General King Queen Pope Emperor Prince Princess "
                        "Duke Count Baron Dr President Chairman Mahatma Imam Sheikh Shaykh Rabbi Father".split())


def full_name(subject: Subject, sentence: str, first: bool) -> Found:
    """"Hermann Karl Hesse was ..." (title Hermann Hesse) → "What was Hermann Hesse's full name?"."""
    m = re.match(rf"(?P<full>{NAME})(?:,| was| is| \()", sentence) if first and subject.person else None
    if not m:
        return
    full, short = m.group("full").split(), _base_title(subject.title).split()
    words = iter(full)
    if (len(short) < len(full) <= 7 and full[0] not in _HONORIFICS and full[-1] == short[-1]
            and all(word in words for word in short)):
        yield f"What {subject.be} {subject.owner} full name?", m, "full", "person"


_BORN = re.compile(rf"\b[Bb]orn (?:on |in )?(?:(?P<when>{WHEN}) )?(?:in |at )(?:the )?(?:(?:village|town|city) of )?"
                   rf"(?P<place>{NAME})|\b[Bb]orn (?:on |in )?(?P<when2>{WHEN})")
_DEATH = re.compile(rf"\b(?:(?:his|her) death|died|(?:his|her) (?P<how>assassination|execution))"
                    rf"(?: (?:at|in) (?P<place>{NAME}))?(?: on| in) (?P<when>{WHEN})")


def born_died(subject: Subject, sentence: str, first: bool) -> Found:
    """"born in Ulm" → "Where was X born?"; "until his death in 1832" → "In what year did X die?"."""
    if not subject.person:
        return
    m = _BORN.search(sentence)
    if m and (about_article(subject, sentence, m.start()) or sentence.startswith("Born")):
        if m.group("place") and m.group("place") not in MONTHS.split("|"):
            yield f"Where was {subject.name} born?", m, "place", "place"
        when = "when" if m.group("when") else "when2" if m.group("when2") else None
        if when:
            yield f"When was {subject.name} born?", m, when, when_type(m.group(when))
    m = _DEATH.search(sentence)
    if m and (about_article(subject, sentence, m.start()) or re.match(r"(?:His|Her) (?:death|assassination|execution)",
                                                                          sentence[m.start():])):
        how = {"assassination": "was {name} assassinated", "execution": "was {name} executed"}
        yield (f"In what year {how.get(m.group('how'), 'did {name} die').format(name=subject.name)}?", m, "when",
               when_type(m.group("when")))
        if m.group("place"):
            yield f"Where did {subject.name} die?", m, "place", "place"


_TERM = re.compile(rf"\b(?P<verb>was|were|served as|reigned as|ruled as|became|is) "
                   rf"(?P<role>(?:the |an? )?[^,;:()]{{3,60}}?) {SPAN}")
_REIGN = re.compile(rf"\b(?:reigned|ruled|governed)(?: [a-z]+)? {SPAN}")


def term(subject: Subject, sentence: str, first: bool) -> Found:
    """"X was the Ottoman sultan from 1520 to 1566" → "In what year did X become the Ottoman sultan?" and its end."""
    if not subject.person:
        return
    m = _TERM.search(sentence)
    if m and about_article(subject, sentence, m.start()) and len(m.group("role").split()) <= 7:
        role = m.group("role")
        if not re.search(r"\b(?:his|her|their|its|he|she|in|at|on)\b|\d", role):
            serve = m.group("verb") == "served as"
            role = re.sub(r"^(?:also|later|then|briefly|again|once) ", "", role)
            yield f"In what year did {subject.name} {'start serving as' if serve else 'become'} {role}?", m, "a", "year"
            yield f"Until what year did {subject.name} {'serve as' if serve else 'remain'} {role}?", m, "b", "year"
        return
    m = _REIGN.search(sentence)
    if m and about_article(subject, sentence, m.start()):
        yield f"When did {subject.owner} reign begin?", m, "a", "year"
        yield f"When did {subject.owner} reign end?", m, "b", "year"


_AWARD = re.compile(rf"\b(?:won|received|was awarded|were awarded|awarded|winner of|recipient of|shared|was given) "
                    rf"(?:the |a )?(?:(?P<year>{YEAR}) )?(?P<prize>Nobel (?:Peace |Memorial )?Prize(?: in (?:[A-Z]\w+)"
                    rf"(?: or [A-Z]\w+| Sciences)?)?|Pulitzer Prize|Fields Medal|Turing Award|Academy Award|"
                    rf"Palme d'Or|Man Booker Prize|Booker Prize|Abel Prize|Wolf Prize|Presidential Medal of Freedom)"
                    rf"(?: (?:for|in) [^,.]{{0,40}}?)?(?: in (?P<year2>{YEAR}))?")


def award(subject: Subject, sentence: str, first: bool) -> Found:
    """"He received the 1921 Nobel Prize in Physics" → "In what year did X win the Nobel Prize in Physics?"."""
    for m in _AWARD.finditer(sentence):
        group = "year" if m.group("year") else "year2" if m.group("year2") else None
        if group and (about_article(subject, sentence, m.start()) or first and not CLAUSE.search(sentence[:m.start()])):
            yield f"In what year did {subject.name} win the {m.group('prize')}?", m, group, "year"
            return


# The past forms that lead leads use with a year, and their base forms ("moved to Berlin" → "move to Berlin").
_BASE_FORM = dict(pair.split("=") for pair in """
    abdicated=abdicate abolished=abolish achieved=achieve acquired=acquire added=add adopted=adopt annexed=annex
    appeared=appear assumed=assume attained=attain became=become began=begin brought=bring built=build
    captured=capture claimed=claim coined=coin completed=complete composed=compose conquered=conquer
    converted=convert created=create declared=declare defeated=defeat designed=design developed=develop
    directed=direct discovered=discover emigrated=emigrate entered=enter established=establish expanded=expand
    fought=fight founded=found gained=gain governed=govern graduated=graduate granted=grant held=hold
    hosted=host introduced=introduce invaded=invade invented=invent joined=join landed=land launched=launch
    led=lead left=leave lost=lose made=make married=marry met=meet moved=move opened=open overthrew=overthrow
    painted=paint performed=perform played=play proclaimed=proclaim produced=produce proposed=propose
    published=publish reached=reach received=receive recorded=record released=release replaced=replace
    retired=retire returned=return ruled=rule seized=seize settled=settle shared=share signed=sign sold=sell
    spent=spend started=start succeeded=succeed taught=teach took=take visited=visit went=go won=win
    wrote=write""".split())
_INTRANSITIVE = frozenset({"abdicated", "retired", "emigrated"})
_NOT_EVENT = frozenset({"known", "based", "located", "situated", "used", "considered", "regarded", "called",
                        "named", "described", "listed", "estimated"})
_ADVERB = r"(?: (?:also|later|then|first|finally|eventually|officially|formally|again|soon|subsequently|briefly|only))?"
_ACTION = (rf"{_ADVERB} (?:(?P<aux>was|were) (?P<participle>[a-z]+ed|built|made|held|won|written|taken|given|born|"
           rf"sold|fought|laid|led|brought|taught|chosen|drawn)|(?P<verb>[a-z]+))(?P<obj>(?: [^\s,;:()]+){{0,6}}?)")
_DID_IN = re.compile(rf"{_ACTION} in (?P<when>{WHEN})"
                     rf"(?=[,.;:]| (?:and|after|before|when|where|at|with|by|as|following|under|during)\b)")
_IN_WHEN = re.compile(rf"In (?P<when>{WHEN}), ")
_DID = re.compile(rf"{_ACTION}(?=[,.])")
_NOT_OBJECT = re.compile(r"\b(?:and|or|but|which|who|whom|that)\b|\d|^ (?:by|in|on|at|as|to be)\b")


def year_of(subject: Subject, sentence: str, first: bool) -> Found:
    """"He moved to Berlin in 1924" / "In 1924, he moved to Berlin." → "In what year did X move to Berlin?"."""
    lead = _IN_WHEN.match(sentence)
    start = lead.end() if lead else 0
    opening = opening_length(subject, sentence[start:])
    m = (_DID if lead else _DID_IN).match(sentence, start + opening) if opening else None
    if not m or _NOT_OBJECT.search(m.group("obj")) or m.group("participle") in _NOT_EVENT:
        return
    verb, obj = m.group("verb"), m.group("obj")
    if verb and (verb not in _BASE_FORM or not obj and verb not in _INTRANSITIVE):
        return
    action = (f"{m.group('aux')} {subject.name} {m.group('participle')}" if m.group("aux")
              else f"did {subject.name} {_BASE_FORM[verb]}")
    found = lead or m
    kind = when_type(found.group("when"))
    yield f"{'When' if kind == 'date' else 'In what year'} {action}{obj}?", found, "when", kind


_PARENT = re.compile(rf"\b(?:the |a )?(?:eldest |youngest |second |third |only |only surviving |illegitimate )?"
                     rf"(?P<kin>son|daughter) of (?:the )?(?:[a-z]+ ){{0,3}}?(?P<parent>{NAME})")


def parent(subject: Subject, sentence: str, first: bool) -> Found:
    """"he was the son of Su Xun" → "Whose son was X?"."""
    m = _PARENT.search(sentence) if subject.person else None
    if m and (about_article(subject, sentence, m.start()) or
              re.match(r"(?:As|The) (?:a |the |eldest )?(?:son|daughter) of", sentence)):
        yield f"Whose {m.group('kin')} {subject.be} {subject.name}?", m, "parent", "person"


RULES: tuple[tuple[str, Rule], ...] = (
    ("nationality", nationality), ("full_name", full_name), ("born_died", born_died), ("term", term),
    ("award", award), ("year_of", year_of), ("parent", parent),
)
