"""Questions from sentence patterns: what every rule shares, and the rules about works, events, names and kinds.

Each rule reads one sentence of an article and, when the sentence has its pattern
("... was founded in 1639 ...", "Its capital is Nairobi"), asks about one span of it
the way a person would ("When was Ulaanbaatar founded?"): it names the article by its
title and words the rest its own way, so the question seldom repeats the sentence.
The rules about places and sizes are ``tools.factqa_places``', those about people
``tools.factqa_people``'; the checks that every question must pass (the span, not the
title, no copied words) are ``tools.factqa_build``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..text import split_sentences
from .derived import _base_title, _is_person

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
YEAR = r"(?:\d{1,4} (?:BC|BCE|AD|CE)\b|AD \d{1,4}\b|(?<![\d,.])(?:1\d{3}|20[0-2]\d)(?![\d,]))"
# A day and month with a year ("10 December 1815", "December 10, 1815"), a month and year, or a year.
WHEN = rf"(?:\d{{1,2}} (?:{MONTHS}),? {YEAR}|(?:{MONTHS}) \d{{1,2}}, {YEAR}|(?:{MONTHS}) {YEAR}|{YEAR})"
NUMBER = (r"(?<![\d.,])(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?: (?:million|billion|thousand))?"
          r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
          r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty)\b")
# "about 17 million", "more than 460 million": the words that hedge a number, kept out of the answer.
ABOUT = (r"(?:an estimated |about |around |approximately |over |more than |nearly |almost |roughly |some |just over |"
         r"under )?")
# "from 1520 to 1566", "between 1115 and 1234": a span of years, its first and last in groups a and b.
SPAN = rf"(?:from|between) (?P<a>{YEAR}) (?:to|until|and) (?P<b>{YEAR})"
_CAP = r"[A-Z][\w'’\-]*\w|[A-Z]"
# A proper name: capitalised words, and the small words that names keep inside ("Isle of Man", "Vincent van Gogh").
_PARTICLE = r"of|the|de|da|di|del|della|des|du|van|von|der|den|la|le|al|bin|ibn|y|upon"
NAME = rf"(?<![\w'’-])(?:{_CAP})(?:\s(?:(?:{_PARTICLE})\s)*(?:{_CAP}))*(?![\w'’-])"
# After a whole name: neither another capitalised word nor a noun ("the Maya people": "Maya" is an adjective).
NAME_END = (r"(?! [A-Z])(?! (?!(?:and|or|in|on|at|from|for|with|who|which|whose|as|during|after|before|between|to|"
            r"of|that|under|since|based|but|while|until|by|is|was|are|were|has|had|where|near|along)\b)[a-z])")
# Who made something: "by the Italian artist Leonardo da Vinci" → "Leonardo da Vinci".
MAKER = rf"(?:the )?(?:(?:(?:{_CAP})[ -])*(?:(?!and |or )[a-z][\w-]+ ){{1,3}})??(?P<who>{NAME}){NAME_END}"
# Words that open a clause: after one, the sentence may be about something other than the article.
CLAUSE = re.compile(r"\b(?:which|who|whom|whose|where|while|whereas|although|though|because|if|that|when|"
                    r"after|before|until|unlike|like|whereby)\b|[;:–—]")
# "The city was founded in 1639": openings that name the article by what it is.
_GENERIC_NOUNS = ("city", "country", "state", "town", "capital", "island", "river", "lake", "mountain", "region",
                  "province", "university", "company", "empire", "kingdom", "dynasty", "war", "battle", "treaty",
                  "band", "group", "film", "novel", "book", "play", "opera", "painting", "work", "building",
                  "church", "cathedral", "temple", "palace", "bridge", "dam", "canal", "park", "organisation",
                  "organization", "party", "movement", "magazine", "newspaper", "language", "sea", "element",
                  "species", "genus", "family", "planet", "moon", "star", "galaxy", "museum", "school", "team")
_ORGANISATION = re.compile(r"\b(?:Company|Corporation|Inc|Ltd|University|Institute|Society|Association|Studios?|"
                           r"Records|Party|Agency|Council|Bank|Group|Foundation|Laboratories|Motors|Pictures|"
                           r"Academy|College|Church|Army|Navy|Organi[sz]ation|League|Club|Network|Systems|Games|"
                           r"Entertainment|Microsoft|Apple|Google|IBM|Sony|Nintendo)\b")


@dataclass(frozen=True)
class Subject:
    """An article as its questions name it: the name, whether it is a person, its tense, and what refers to it."""

    title: str
    name: str  # "Ulaanbaatar", "the Aswan High Dam", "Hausa" (for "Hausa language")
    person: bool
    past: bool  # its first sentence says "was", not "is"
    refs: tuple[str, ...]  # lower-cased sentence openings that refer to the article, longest first
    kind: str  # a living thing's name as a common noun: "the koala" (text: "The koala is ..."), else `name`

    @property
    def be(self) -> str:
        return "was" if self.past else "is"

    @property
    def do(self) -> str:
        return "did" if self.past else "does"

    @property
    def owner(self) -> str:
        """The name as a possessive: "Kenya's", "Mars'"."""
        return f"{self.name}'" if self.name.endswith("s") else f"{self.name}'s"


@dataclass(frozen=True)
class Question:
    """One question a rule asks: the answer is `answer`, at `start` in the article's text."""

    rule: str
    question: str
    answer: str
    start: int
    answer_type: str


# A rule yields (question, match, the match's group that holds the answer, the answer's type).
Found = Iterator[tuple[str, re.Match, str, str]]
Rule = Callable[[Subject, str, bool], Found]


def subject_of(article: dict) -> Subject:
    """How questions name an article, and which sentence openings refer to it."""
    title, text = article["title"], article["text"]
    base = _base_title(title)
    name = f"the {text[4:4 + len(base)]}" if text.lower().startswith(f"the {base.lower()}") else _inside(base, text)
    person = _is_person(article)
    first = re.match(r"[^.]{0,200}? (is|are|was|were) ", text)
    refs = {base.lower(), name.lower(), title.lower()}
    if first:
        opening = re.split(r",| \(", text[:first.start(1) - 1])[0].strip()
        if 0 < len(opening.split()) <= 6:
            refs.add(opening.lower())  # "tokyo", "eugen berthold friedrich brecht"
            if not person and f"{base.lower()} ".startswith(f"{opening.lower()} "):
                name = opening[0].lower() + opening[1:] if opening.startswith("The ") else opening  # "Hausa"
    if person:
        refs |= {"he", "she", base.split()[-1].lower()}
    else:
        refs |= {"it", "they"} | {f"the {noun}" for noun in _GENERIC_NOUNS}
    # "Swans are birds ...", "The koala is ...": the title is a common noun, so questions say "the swan".
    common = re.search(rf"\b{re.escape(base.lower())}s?\b", text) or re.match(rf"{re.escape(base)}s ", text)
    kind = f"the {base.lower()}" if common and not person else name
    return Subject(title, name, person, bool(first and first.group(1) in ("was", "were")),
                   tuple(sorted(refs, key=len, reverse=True)), kind)


def _inside(base: str, text: str) -> str:
    """A title as a sentence writes it inside: "cadmium", "organic farming"; "Kirchhoff's circuit laws" as it is."""
    lower = base[0].lower() + base[1:]
    if base == lower or base.split()[0].isupper():
        return base  # "iPhone", "NATO"
    inside = r"(?<=[\w,;)] )"
    first = re.escape(base.split()[0].removesuffix("'s"))
    if re.search(rf"{inside}{first}\b", text):
        return base  # a proper name: "... physicist Gustav Kirchhoff"
    if re.search(rf"{inside}{re.escape(lower)}\b", text) or not re.search(r"\b[A-Z]", base[1:]) and " " in base:
        return lower
    return base


def opening_length(subject: Subject, sentence: str) -> int:
    """The length of the words that open the sentence and name the article ("He", "The city"), or 0."""
    lower = sentence.lower()
    for ref in subject.refs:
        if lower.startswith(ref) and (len(lower) == len(ref) or not lower[len(ref)].isalnum()):
            return len(ref)
    return 0


def about_article(subject: Subject, sentence: str, at: int) -> bool:
    """Whether the sentence opens by naming the article, with no clause between that and position `at`."""
    opening = opening_length(subject, sentence[:at])
    return bool(opening) and not CLAUSE.search(sentence[opening:at])


def said_of(subject: Subject, sentence: str, at: int, first: bool) -> bool:
    """Whether what stands at `at` is said of the article: a sentence about it, or the first sentence's main clause."""
    return about_article(subject, sentence, at) or (first and not CLAUSE.search(sentence[:at]))


def when_type(span: str) -> str:
    """"year" for a bare year, "date" for one with a month."""
    return "date" if re.search(MONTHS, span) else "year"


def maker_type(name: str) -> str:
    """"organization" for a company, party or university that made something, else "person"."""
    return "organization" if _ORGANISATION.search(name) else "person"


def sentences(text: str) -> Iterator[tuple[int, str]]:
    """The sentences of a text, each with its offset."""
    position = 0
    for sentence in split_sentences(text):
        start = text.index(sentence, position)
        position = start + len(sentence)
        yield start, sentence


# ---------------------------------------------------------------------------
# When and by whom something was made
# ---------------------------------------------------------------------------

_FOUNDED = re.compile(rf"\b(?:was |were )?(founded|established|formed|built|completed|constructed|opened|"
                      rf"inaugurated|discovered|invented|first described|first published|published|premiered|"
                      rf"released|signed|ratified|adopted|coined|launched|dissolved|abolished)"
                      rf"(?: (?:in|on) (?P<when>{WHEN})| by {MAKER})")
_VERB_QUESTION = {  # verb → (when was it done, who did it)
    "founded": ("When was {name} founded?", "Who founded {name}?"),
    "established": ("When was {name} established?", "Who established {name}?"),
    "formed": ("In what year was {name} formed?", None),
    "built": ("When was {name} built?", "Who built {name}?"),
    "completed": ("In what year was {name} completed?", None),
    "constructed": ("When was {name} constructed?", None),
    "opened": ("When did {name} open?", None),
    "inaugurated": ("When was {name} inaugurated?", None),
    "discovered": ("When was {name} discovered?", "Who discovered {name}?"),
    "invented": ("When was {name} invented?", "Who invented {name}?"),
    "first described": ("When was {name} first described?", "Who first described {name}?"),
    "first published": ("When did {name} first appear in print?", None),
    "published": ("When did {name} come out?", "Who published {name}?"),
    "premiered": ("When did {name} have its premiere?", None),
    "released": ("When did {name} come out?", None),
    "signed": ("When was {name} signed?", None),
    "ratified": ("When was {name} ratified?", None),
    "adopted": ("In what year was {name} adopted?", None),
    "coined": ("When was the term {name} coined?", "Who coined the term {name}?"),
    "launched": ("When was {name} launched?", None),
    "dissolved": ("When was {name} dissolved?", None),
    "abolished": ("When was {name} abolished?", None),
}


def founded(subject: Subject, sentence: str, first: bool) -> Found:
    """"It was founded in 1639 / by the Romans" → "When was X founded?", "Who founded X?" (built, discovered ...)."""
    for m in _FOUNDED.finditer(sentence):
        if subject.person or not said_of(subject, sentence, m.start(), first):
            continue
        when_question, who_question = _VERB_QUESTION[m.group(1)]
        if m.group("when"):
            yield when_question.format(name=subject.name), m, "when", when_type(m.group("when"))
        elif who_question and m.group("who"):
            yield who_question.format(name=subject.name), m, "who", maker_type(m.group("who"))


_WORK = re.compile(rf"\b(?:is|was) an? (?:(?P<year>{YEAR}) )?(?:[\w-]+ ){{0,3}}?"
                   rf"(?P<kind>novel|novella|film|play|stage play|opera|painting|poem|epic poem|song|album|"
                   rf"symphony|ballet|book|musical|sculpture|fresco|comedy|tragedy|treatise|short story|series|sitcom)"
                   rf"(?![\w-])"
                   rf"(?: (?:written|directed|composed|painted|sculpted|created|produced|recorded))?"
                   rf"(?: by {MAKER})?")
_MAKER = {"novel": "wrote", "novella": "wrote", "play": "wrote", "stage play": "wrote", "poem": "wrote",
          "epic poem": "wrote", "book": "wrote", "treatise": "wrote", "short story": "wrote", "comedy": "wrote",
          "tragedy": "wrote", "film": "directed", "opera": "composed", "symphony": "composed", "ballet": "composed",
          "song": "recorded", "album": "recorded", "musical": "created", "painting": "painted",
          "fresco": "painted", "sculpture": "made", "series": "created", "sitcom": "created"}
_MADE = {"wrote": "written", "directed": "released", "composed": "composed", "recorded": "released",
         "created": "first shown", "painted": "painted", "made": "made"}


def work(subject: Subject, sentence: str, first: bool) -> Found:
    """"X is a 1949 stage play written by Arthur Miller" → "Who wrote X?", "In what year was X written?"."""
    m = _WORK.search(sentence) if first and not subject.person else None
    if not m or CLAUSE.search(sentence[:m.start()]):
        return
    verb = _MAKER[m.group("kind")]
    if m.group("who") and m.group("who") not in MONTHS.split("|"):
        yield f"Who {verb} {subject.name}?", m, "who", maker_type(m.group("who"))
    if m.group("year"):
        yield f"In what year was {subject.name} {_MADE[verb]}?", m, "year", "year"


_MADE_BY = re.compile(rf"\b(written|directed|composed|painted|designed|sculpted|invented|discovered|developed|"
                      rf"founded|created) by {MAKER}")
_WHO_MADE = {"written": "wrote", "sculpted": "sculpted"}


def made_by(subject: Subject, sentence: str, first: bool) -> Found:
    """"X ... directed by Victor Fleming" → "Who directed X?" (written, composed, designed, invented ...)."""
    for m in _MADE_BY.finditer(sentence):
        if not subject.person and said_of(subject, sentence, m.start(), first):
            verb = _WHO_MADE.get(m.group(1), m.group(1))
            yield f"Who {verb} {subject.name}?", m, "who", maker_type(m.group("who"))
            return


_CENTURY = re.compile(r"\b(?P<verb>originated|emerged|developed|flourished|began|appeared|arose|"
                      r"(?:was |were )(?:founded|built|established|written|composed|invented|introduced|formed))"
                      r"(?: [a-z]+){0,2}? in the (?P<century>(?:early |late |mid-)?\d+(?:st|nd|rd|th)[ -]century"
                      r"(?: BC| BCE| AD| CE)?)")
_CENTURY_BASE = {"originated": "originate", "emerged": "emerge", "developed": "develop", "flourished": "flourish",
                 "began": "begin", "appeared": "appear", "arose": "arise"}


def century(subject: Subject, sentence: str, first: bool) -> Found:
    """"Rum originated in the Caribbean in the 17th century" → "In which century did rum originate?"."""
    m = _CENTURY.search(sentence)
    if m and not subject.person and said_of(subject, sentence, m.start(), first):
        verb = m.group("verb")
        action = (f"{verb.split()[0]} {subject.name} {verb.split()[1]}" if " " in verb
                  else f"did {subject.name} {_CENTURY_BASE[verb]}")
        yield f"In which century {action}?", m, "century", "date"


# ---------------------------------------------------------------------------
# Other names
# ---------------------------------------------------------------------------

_ALIAS = re.compile(r"(?:also|commonly|often|sometimes|formerly|popularly|originally|informally|better)? ?"
                    r"(?:known|called|referred to|nicknamed) (?:as )?(?:simply )?(?:the )?[\"“]?(?P<alias>"
                    + NAME + r")[\"”]?(?=[,.;)]| or | and )")


def alias(subject: Subject, sentence: str, first: bool) -> Found:
    """", also known as the Red Planet," → "By what other name is X known?"."""
    for m in _ALIAS.finditer(sentence):
        found = m.group("alias")
        if not said_of(subject, sentence, m.start(), first) or len(found.split()) > 6:
            return
        if found.lower() not in subject.refs and found.lower() != subject.name.lower():
            yield f"By what other name {subject.be} {subject.name} known?", m, "alias", "other"
            return


# ---------------------------------------------------------------------------
# Kinds: living things, elements, languages, events
# ---------------------------------------------------------------------------

_TAXON = re.compile(r"\b(?:in|of|to|within|into|from) the (?:[a-z]+ ){0,2}?(?P<rank>family|genus|order|subfamily|"
                    r"class|phylum|superfamily|tribe|suborder|infraorder|subgenus|subclass|superorder) "
                    r"(?P<taxon>[A-Z][a-z]+)\b")


def taxon(subject: Subject, sentence: str, first: bool) -> Found:
    """"Azaleas are flowering shrubs in the genus Rhododendron" → "To which genus does the azalea belong?"."""
    m = _TAXON.search(sentence)
    if m and not subject.person and said_of(subject, sentence, m.start(), first):
        yield f"To which {m.group('rank')} does {subject.kind} belong?", m, "taxon", "other"


_ELEMENT = re.compile(r"\bsymbol (?P<symbol>[A-Z][a-z]?) and atomic number (?P<number>\d+)")


def element(subject: Subject, sentence: str, first: bool) -> Found:
    """"it has symbol Pd and atomic number 46" → "What is the atomic number of palladium?" and its symbol."""
    m = _ELEMENT.search(sentence) if first else None
    if m:
        yield f"Which chemical symbol stands for {subject.name.lower()}?", m, "symbol", "other"
        yield f"What is the atomic number of {subject.name.lower()}?", m, "number", "number"


_FAMILY = re.compile(r"^(?:[^,]+?)(?:, [^,]+,)? (?:is|was) an? (?:[a-z]+ )?(?P<family>(?:[A-Z][\w-]+ ){1,2}?)"
                     r"(?:language|languages|language family)\b")
_SPEAKERS = re.compile(rf"\b(?:spoken|used) by {ABOUT}(?P<n>{NUMBER}) (?:people|speakers|native speakers)"
                       rf"|(?P<n2>{NUMBER}) (?:native )?speakers\b")
_OFFICIAL = re.compile(rf"\b(?:[Ii]ts|[Tt]he)(?: (?:two|three|four|sole|only))? official languages? "
                       rf"(?:is|are|was|were|include) (?P<language>{NAME})")


def language(subject: Subject, sentence: str, first: bool) -> Found:
    """"Kazakh is a Turkic language" → "Which language family does Kazakh belong to?"; speakers; official language."""
    if subject.person:
        return
    if re.search(r"\blanguages?\b", subject.title + " " + sentence[:80]):
        if first and (m := _FAMILY.search(sentence)):
            yield f"Which language family {subject.do} {subject.name} belong to?", m, "family", "other"
        if (m := _SPEAKERS.search(sentence)) and said_of(subject, sentence, m.start(), first):
            yield f"How many people speak {subject.name}?", m, "n" if m.group("n") else "n2", "number"
    if m := _OFFICIAL.search(sentence):
        yield f"What is the official language of {subject.name}?", m, "language", "other"


_EVENT = re.compile(rf"\b(?P<verb>took place|occurred|happened|was fought|were fought|began|started|broke out|ended)"
                    rf"(?: [a-z]+){{0,2}}? (?:in|on|from|between) (?P<when>{WHEN})"
                    rf"|\b(?:gained|achieved|won|declared|regained|obtained|attained) (?:its |full )?independence"
                    rf"(?: from (?:the )?(?P<from>{NAME}))?(?: (?:in|on) (?P<independence>{WHEN}))")
_EVENT_QUESTION = {"took place": "When did {name} take place?", "occurred": "When did {name} take place?",
                   "happened": "When did {name} take place?", "was fought": "When was {name} fought?",
                   "were fought": "When were {name} fought?", "began": "When did {name} begin?",
                   "started": "When did {name} begin?", "broke out": "When did {name} break out?",
                   "ended": "When did {name} end?"}
_PERIOD_WORDS = re.compile(r"\b(?:war|wars|dynasty|empire|period|era|revolution|kingdom|caliphate|republic|sultanate|"
                           r"civilization|civilisation|age|crisis|reign|occupation|rebellion|uprising|siege|invasion|"
                           r"campaign|conflict|crusade|union|confederation|khanate|shogunate|state|movement)\b", re.I)
_SPAN = re.compile(rf"\b{SPAN}")


def event(subject: Subject, sentence: str, first: bool) -> Found:
    """"The battle was fought on 18 June 1815" → "When was X fought?"; independence; an era's first and last years."""
    if subject.person:
        return
    m = _EVENT.search(sentence)
    if m and said_of(subject, sentence, m.start(), first):
        if m.group("verb"):
            yield _EVENT_QUESTION[m.group("verb")].format(name=subject.name), m, "when", when_type(m.group("when"))
        else:
            yield f"When did {subject.name} become independent?", m, "independence", when_type(m.group("independence"))
            if m.group("from"):
                yield f"From which country did {subject.name} become independent?", m, "from", "place"
    m = _SPAN.search(sentence) if first and _PERIOD_WORDS.search(f"{subject.title} {sentence[:120]}") else None
    if m and not CLAUSE.search(sentence[:m.start()].replace("that existed", "")):
        yield f"When did {subject.name} begin?", m, "a", "year"
        yield f"When did {subject.name} come to an end?", m, "b", "year"


_NAMED = re.compile(r"\b(?:is|was|are|were) (?:also )?named (?:after|for|in honour of|in honor of) "
                    r"(?:the )?(?P<after>[^,.;()]{3,60}?)(?=[,.;(]| who | which | because | in \d| whose )")
_KNOWN_FOR = re.compile(r"\b(?:best |widely |most |well |chiefly |primarily |mainly |perhaps best |especially )?known "
                        r"(?:today |internationally )?for (?:his |her |its |their |the )?"
                        r"(?P<what>[^,;.()\"“”]{3,70}?)"
                        r"(?=[,;.(]| which | who | that | as well as | and for | in which | such as | including )")


def named_after(subject: Subject, sentence: str, first: bool) -> Found:
    """"The passage is named after Sir Francis Drake" → "What is X named after?"."""
    m = _NAMED.search(sentence)
    if m and about_article(subject, sentence, m.start()) and len(m.group("after").split()) <= 8:
        if not re.match(r"(?:him|her|it|them|his|its|their)\b", m.group("after")):
            yield f"What {subject.be} {subject.name} named after?", m, "after", "other"


_KNOWN_WORK = re.compile(rf"(?:[a-z-]+ ){{0,2}}?(?P<kind>novel|play|opera|film|poem|painting|book|symphony|album|"
                         rf"song|series|epic|essay|treatise)s? (?P<work>{NAME}){NAME_END}")


def known_for(subject: Subject, sentence: str, first: bool) -> Found:
    """"... best known for her advocacy of women's rights" → "What is X best known for?"; a work → which work."""
    m = _KNOWN_FOR.search(sentence)
    if not m or not said_of(subject, sentence, m.start(), first) or len(m.group("what").split()) > 10:
        return
    if work := _KNOWN_WORK.match(sentence, m.start("what")):
        yield f"Which {work.group('kind')} {subject.be} {subject.name} best known for?", work, "work", "work"
    else:
        yield f"What {subject.be} {subject.name} best known for?", m, "what", "other"


RULES: tuple[tuple[str, Rule], ...] = (
    ("founded", founded), ("work", work), ("made_by", made_by), ("century", century), ("alias", alias),
    ("taxon", taxon), ("element", element), ("language", language),
    ("event", event), ("named_after", named_after), ("known_for", known_for),
)
