"""Questions from sentence patterns: the rules that make the generated training questions of data/derived/factqa.

Each rule reads one sentence of an article and, when the sentence has its pattern
("... was founded in 1639 ...", "Its capital is Nairobi"), asks about one span of it
the way a person would ("When was Ulaanbaatar founded?"), naming the article by its
title and paraphrasing the rest, so the question rarely repeats the sentence. The
checks that every question must pass (span found, not the title, no copied words)
are ``tools.factqa_build``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..text import split_sentences
from .derived import _base_title, _is_person

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_YEAR = r"(?:\d{1,4} (?:BC|BCE|AD|CE)\b|AD \d{1,4}\b|(?<![\d,.])(?:1\d{3}|20[0-2]\d)(?![\d,]))"
# A day and month with a year ("10 December 1815", "December 10, 1815"), a month and year, or a year.
WHEN = (rf"(?:\d{{1,2}} (?:{MONTHS}),? {_YEAR}|(?:{MONTHS}) \d{{1,2}}, {_YEAR}|(?:{MONTHS}) {_YEAR}|{_YEAR})")
_NUMBER = (r"(?<![\d.,])(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?: (?:million|billion|thousand))?"
           r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
           r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|hundreds?)\b")
# A proper name: capitalised words, with the small words names keep inside ("Isle of Man", "Vincent van Gogh").
_CAP = r"[A-Z][\w'’\-]*\w|[A-Z]"
NAME = rf"(?:{_CAP})(?:\s(?:(?:of|the|de|da|di|del|della|des|du|van|von|der|den|la|le|al|bin|ibn|y|upon)\s)*(?:{_CAP}))*"
# Words that open a relative or subordinate clause: after one, the rest of the sentence may be about something else.
_CLAUSE = re.compile(r"\b(?:which|who|whom|whose|where|while|whereas|although|though|because|if|that|when|"
                     r"after|before|until|unlike|like|whereby)\b|[;:–—]")
_PRONOUN_OF = {"he": "person", "she": "person", "it": "thing", "they": "thing"}


@dataclass(frozen=True)
class Subject:
    """An article as questions name it: its title's name, whether it is a person, its tense."""

    title: str
    name: str  # "Ulaanbaatar", "the Aswan High Dam"
    person: bool
    past: bool  # the first sentence says "was", not "is"
    refs: tuple[str, ...]  # lower-cased openings of a sentence that refer to the article

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


def subject_of(article: dict) -> Subject:
    """How questions name an article, and which sentence openings refer to it."""
    title, text = article["title"], article["text"]
    base = _base_title(title)
    name = f"the {base}" if text.lower().startswith(f"the {base.lower()}") else base
    person = _is_person(article)
    first = re.match(r"[^.]{0,200}? (is|are|was|were) ", text)
    past = bool(first and first.group(1) in ("was", "were"))
    refs = {base.lower(), name.lower(), title.lower()}
    if first:
        opening = re.split(r",| \(", text[:first.start(1) - 1])[0].strip().lower()
        if 0 < len(opening.split()) <= 6:
            refs.add(opening)  # the subject of the first sentence: "tokyo metropolis", "eugen berthold brecht"
    if person:
        refs |= {"he", "she", base.split()[-1].lower()}
    else:
        refs |= {"it", "they"} | {f"the {noun}" for noun in _GENERIC_NOUNS}
    return Subject(title, name, person, past, tuple(sorted(refs, key=len, reverse=True)))


# "The city was founded in 1639": an opening that names the article by what it is.
_GENERIC_NOUNS = ("city", "country", "state", "town", "capital", "island", "river", "lake", "mountain", "region",
                  "province", "university", "company", "empire", "kingdom", "dynasty", "war", "battle", "treaty",
                  "band", "group", "film", "novel", "book", "play", "opera", "painting", "work", "building",
                  "church", "cathedral", "temple", "palace", "bridge", "dam", "canal", "park", "organisation",
                  "organization", "party", "movement", "magazine", "newspaper", "language", "sea", "element",
                  "species", "genus", "family", "planet", "moon", "star", "galaxy", "museum", "school", "team")


def about_article(subject: Subject, sentence: str, at: int) -> bool:
    """Whether the sentence opens by naming the article, with no clause in between, before position `at`."""
    head = sentence[:at]
    lower = head.lower()
    for ref in subject.refs:
        if lower.startswith(ref) and (len(lower) == len(ref) or not lower[len(ref)].isalnum()):
            return not _CLAUSE.search(head[len(ref):])
    return False


def when_type(span: str) -> str:
    """"year" for a bare year, "date" for one with a month."""
    return "date" if re.search(MONTHS, span) else "year"


# ---------------------------------------------------------------------------
# The rules. Each takes the subject, one sentence and whether it is the first,
# and yields (question, the match of the answer's group) pairs.
# ---------------------------------------------------------------------------

Found = Iterator[tuple[str, re.Match, str, str]]  # question, match, group, answer type


def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern)


_FOUNDED = _rx(rf"\b(?:was |were )?(founded|established|formed|built|completed|constructed|opened|inaugurated|"
               rf"discovered|invented|first described|first published|published|premiered|released|signed|"
               rf"ratified|adopted|coined|launched|dissolved|abolished)(?: (?:in|on) (?P<when>{WHEN})"
               rf"| by (?:the )?(?P<who>{NAME}))")
_VERB_QUESTION = {
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
    """"X was founded in 1639 / by the Romans" → "When was X founded?", "Who founded X?" (and built, discovered ...)."""
    if subject.person:
        return
    for m in _FOUNDED.finditer(sentence):
        if not (about_article(subject, sentence, m.start()) or (first and not _CLAUSE.search(sentence[:m.start()]))):
            continue
        when_q, who_q = _VERB_QUESTION[m.group(1)]
        if m.group("when"):
            yield when_q.format(name=subject.name), m, "when", when_type(m.group("when"))
        elif who_q and m.group("who"):
            yield who_q.format(name=subject.name), m, "who", "person"


_BY_WORK = _rx(rf"\b(?:is|was) an? (?:(?P<year>{_YEAR}) )?(?:[\w-]+ ){{0,3}}?"
               rf"(?P<kind>novel|novella|film|play|stage play|opera|painting|poem|epic poem|song|album|symphony|"
               rf"ballet|book|musical|sculpture|fresco|comedy|tragedy|treatise|short story|series|sitcom)"
               rf"(?: (?:written|directed|composed|painted|sculpted|created|produced|recorded))?"
               rf"(?: by (?:the )?(?:[\w-]+ ){{0,3}}?(?P<who>{NAME}))?")
_MAKER = {"novel": "wrote", "novella": "wrote", "play": "wrote", "stage play": "wrote", "poem": "wrote",
          "epic poem": "wrote", "book": "wrote", "treatise": "wrote", "short story": "wrote", "comedy": "wrote",
          "tragedy": "wrote", "film": "directed", "opera": "composed", "symphony": "composed", "ballet": "composed",
          "song": "recorded", "album": "recorded", "musical": "created", "painting": "painted",
          "fresco": "painted", "sculpture": "made", "series": "created", "sitcom": "created"}
_WORK_YEAR = {"wrote": "written", "directed": "released", "composed": "composed", "recorded": "released",
              "created": "first shown", "painted": "painted", "made": "made"}


def work(subject: Subject, sentence: str, first: bool) -> Found:
    """"X is a 1949 stage play written by Arthur Miller" → "Who wrote X?", "In what year was X written?"."""
    if not first or subject.person:
        return
    m = _BY_WORK.search(sentence)
    if not m or _CLAUSE.search(sentence[:m.start()]):
        return
    verb = _MAKER[m.group("kind")]
    if m.group("who") and m.group("who") not in MONTHS.split("|"):
        yield f"Who {verb} {subject.name}?", m, "who", "person"
    if m.group("year"):
        yield f"In what year was {subject.name} {_WORK_YEAR[verb]}?", m, "year", "year"


_MADE_BY = _rx(rf"\b(written|directed|composed|painted|designed|sculpted|invented|discovered|developed|"
               rf"founded|created|led|commanded) by (?:the )?(?:[a-z][\w-]+ ){{0,3}}?(?P<who>{NAME})")
_MADE_QUESTION = {"written": "Who wrote {name}?", "directed": "Who directed {name}?",
                  "composed": "Who composed {name}?", "painted": "Who painted {name}?",
                  "designed": "Who designed {name}?", "sculpted": "Who sculpted {name}?",
                  "invented": "Who invented {name}?", "discovered": "Who discovered {name}?",
                  "developed": "Who developed {name}?", "founded": "Who founded {name}?",
                  "created": "Who created {name}?", "led": "Who led {name}?", "commanded": "Who commanded {name}?"}


def made_by(subject: Subject, sentence: str, first: bool) -> Found:
    """"X ... directed by Victor Fleming" → "Who directed X?" (written, composed, designed, invented, led ...)."""
    if subject.person:
        return
    for m in _MADE_BY.finditer(sentence):
        if about_article(subject, sentence, m.start()) or (first and not _CLAUSE.search(sentence[:m.start()])):
            yield _MADE_QUESTION[m.group(1)].format(name=subject.name), m, "who", "person"
            return


_NATIONALITY = _rx(r"^(?:[^,]+?)(?:, [^,]+,)? (?:is|was) (?:an?|the) (?:(?:Ancient|ancient|Classical) )?"
                   r"(?P<nat>[A-Z][a-z]+(?:-[A-Z][a-z]+)?)(?= )")
_NOT_NATIONALITY = frozenset("Christian Catholic Franciscan Jesuit Dominican Benedictine Lutheran Protestant Jewish "
                             "Muslim Sunni Shia Hindu Buddhist Republican Democratic Victorian Elizabethan Marxist "
                             "Roman Renaissance Baroque Romantic Impressionist Hellenistic Byzantine Confucian "
                             "Carthaginian Athenian Spartan Macedonian Olympic Nobel Academy Grammy Major Late Early "
                             "Medieval Founding Chief Prime Supreme Grand Great Holy Reformed Orthodox Islamic Arab "
                             "Anglican Sufi Stoic Neoplatonic Calvinist Puritan Mughal Ottoman Mongol".split())


def nationality(subject: Subject, sentence: str, first: bool) -> Found:
    """"X was a German playwright" → "What nationality was X?"."""
    if not (first and subject.person):
        return
    m = _NATIONALITY.search(sentence)
    if m and m.group("nat") not in _NOT_NATIONALITY and re.search(r"(?:an|ese|ish|ch|i|ic|ek|ss|ai|ch|sh)$",
                                                                  m.group("nat").split("-")[0]):
        yield f"What nationality {subject.be} {subject.name}?", m, "nat", "other"


def full_name(subject: Subject, sentence: str, first: bool) -> Found:
    """"Hermann Karl Hesse was ..." (title Hermann Hesse) → "What was Hermann Hesse's full name?"."""
    if not (first and subject.person):
        return
    m = re.match(rf"(?P<full>{NAME})(?:,| was| is| \()", sentence)
    if not m:
        return
    full, short = m.group("full").split(), _base_title(subject.title).split()
    words = iter(full)
    if len(short) < len(full) <= 7 and all(word in words for word in short) and full[-1] == short[-1]:
        yield f"What {subject.be} {subject.owner} full name?", m, "full", "person"


_ALIAS = _rx(r"(?:also|commonly|often|sometimes|formerly|popularly|originally|informally|better)? ?"
             r"(?:known|called|referred to|nicknamed) (?:as )?(?:simply )?(?:the )?[\"“]?(?P<alias>"
             + NAME + r")[\"”]?(?=[,.;)]| or | and )")


def alias(subject: Subject, sentence: str, first: bool) -> Found:
    """", also known as the Red Planet," → "By what other name is X known?"."""
    if not first:
        return
    for m in _ALIAS.finditer(sentence):
        found = m.group("alias")
        if _CLAUSE.search(sentence[:m.start()]) or len(found.split()) > 6:
            return
        if found.lower() not in subject.refs and found.lower() != subject.name.lower():
            yield f"By what other name {subject.be} {subject.name} known?", m, "alias", "other"
            return


_CAPITAL_OF = _rx(rf"^(?:[^,]+?)(?:, [^,]+,)? (?:is|was) (?:also )?the (?:de facto |de jure |historical |former )?"
                  rf"capital(?: city)?(?:,? (?:and|as well as) (?:the )?(?:largest|most populous) city)? "
                  rf"(?:of|in) (?:the )?(?P<of>{NAME})")
_HAS_CAPITAL = _rx(rf"\b(?:[Ii]ts|[Tt]he|{{owner}}) capital(?: city)?(?: and (?:largest|most populous) city)? "
                   rf"(?:is|was|and largest city,) (?:the city of )?(?P<capital>{NAME})")
_LARGEST_CITY = _rx(rf"\b(?:[Ii]ts|[Tt]he) (?:largest|most populous) city (?:is|was) (?P<city>{NAME})")


def capital(subject: Subject, sentence: str, first: bool) -> Found:
    """"X is the capital of Kenya" → "Of which country is X the capital?"; "Its capital is Y" → "What is X's capital?"."""
    if subject.person:
        return
    if first and (m := _CAPITAL_OF.search(sentence)) and not _CLAUSE.search(sentence[:m.start("of")]):
        yield f"{subject.name} is the capital of which country or region?", m, "of", "place"
    owner = re.escape(subject.owner)
    for pattern, group, question in ((_HAS_CAPITAL, "capital", f"What is the capital of {subject.name}?"),
                                     (_LARGEST_CITY, "city", f"Which is the largest city of {subject.name}?")):
        m = re.search(pattern.pattern.replace("{owner}", owner), sentence)
        if m and (m.group(0)[:3].lower() == "its" or about_article(subject, sentence, m.start()) or
                  sentence.lower().startswith(subject.owner.lower())):
            yield question, m, group, "place"


_POPULATION = _rx(rf"\b(?:a |an |its |the )?(?:estimated |total |combined |recorded )?population "
                  rf"(?:of |was |is |at |stood at |reached )?(?:an estimated |about |around |approximately |over |"
                  rf"more than |nearly |almost |roughly |some |just over |under )?(?P<n>{_NUMBER})"
                  rf"(?! (?:km|sq|square|BC))")
_INHABITANTS = _rx(rf"\b(?:home to|has|had|with) (?:an estimated |about |around |approximately |over |more than |"
                   rf"nearly |almost |roughly |some )?(?P<n>{_NUMBER}) (?:inhabitants|residents|people)\b")


def population(subject: Subject, sentence: str, first: bool) -> Found:
    """"... a population of 2.04 million" → "What is the population of X?"."""
    if subject.person:
        return
    for pattern in (_POPULATION, _INHABITANTS):
        m = pattern.search(sentence)
        if m and not re.search(r"(?:metropolitan|metro|urban|greater|wider) (?:area )?(?:population|area)",
                               sentence[max(0, m.start() - 30):m.end()], re.I):
            if about_article(subject, sentence, m.start()) or (first and not _CLAUSE.search(sentence[:m.start()])):
                yield f"How many people live in {subject.name}?", m, "n", "number"
                return


_MEASURE = _rx(rf"\b(?P<n>(?:{_NUMBER})(?:[–-]\d+(?:\.\d+)?)? ?(?:km2|km²|square kilometres|square kilometers|"
               rf"sq mi|km|kilometres|kilometers|miles|mi|metres|meters|m|feet|ft))"
               rf"(?P<what> long| in length| high| tall| in height| above sea level| in diameter| wide| deep|)\b")
_MEASURE_QUESTION = {" long": "How long is {name}?", " in length": "How long is {name}?",
                     " high": "How high is {name}?", " tall": "How tall is {name}?",
                     " in height": "How tall is {name}?", " above sea level": "How high above sea level is {name}?",
                     " in diameter": "What is the diameter of {name}?", " wide": "How wide is {name}?",
                     " deep": "How deep is {name}?"}


def measure(subject: Subject, sentence: str, first: bool) -> Found:
    """"... 6,650 km long" → "How long is X?"; "an area of 105.4 km2" → "What is the area of X?"."""
    if subject.person:
        return
    for m in _MEASURE.finditer(sentence):
        before = sentence[max(0, m.start() - 40):m.start()].lower()
        if m.group("what"):
            question = _MEASURE_QUESTION[m.group("what")]
        elif re.search(r"\b(?:area|covers|covering)\b[^,]{0,20}$", before) and re.search(r"km2|km²|square|sq", m.group(0)):
            question = "What is the area of {name}?"
        else:
            continue
        if before.endswith("("):
            continue  # the same length in other units
        if about_article(subject, sentence, m.start()) or (first and not _CLAUSE.search(sentence[:m.start()])):
            yield question.format(name=subject.name), m, "n", "number"
            return


_BORN = _rx(rf"\b[Bb]orn (?:on |in )?(?:(?P<when>{WHEN}) )?(?:in |at )(?:the )?(?:(?:village|town|city) of )?"
            rf"(?P<place>{NAME})|\b[Bb]orn (?:on |in )?(?P<when2>{WHEN})")
_DEATH = _rx(rf"\b(?:(?:his|her) death|died|his assassination|her assassination|his execution|her execution)"
             rf"(?: (?:at|in) (?P<place>{NAME}))?(?: on| in) (?P<when>{WHEN})")


def born_died(subject: Subject, sentence: str, first: bool) -> Found:
    """"born in Ulm" → "Where was X born?"; "until his death in 1832" → "In what year did X die?"."""
    if not subject.person:
        return
    m = _BORN.search(sentence)
    if m and (about_article(subject, sentence, m.start()) or sentence.startswith("Born")):
        if m.group("place") and m.group("place") not in MONTHS.split("|"):
            yield f"Where was {subject.name} born?", m, "place", "place"
        for group in ("when", "when2"):
            if m.group(group):
                yield f"When was {subject.name} born?", m, group, when_type(m.group(group))
    m = _DEATH.search(sentence)
    if m and (about_article(subject, sentence, m.start()) or re.match(r"(?:His|Her) (?:death|assassination|execution)",
                                                                          sentence[m.start():])):
        event = re.search(r"assassination|execution", m.group(0))
        verb = {"assassination": "was {name} assassinated", "execution": "was {name} executed"}.get(
            event.group(0) if event else "", "did {name} die")
        yield f"In what year {verb.format(name=subject.name)}?", m, "when", when_type(m.group("when"))
        if m.group("place"):
            yield f"Where did {subject.name} die?", m, "place", "place"


_TERM = _rx(rf"\b(?P<verb>was|were|served as|reigned as|ruled as|became|is) (?P<role>(?:the |an? )?[^,;:()]{{3,60}}?)"
            rf" (?:from|between) (?P<a>{_YEAR}) (?:to|until|and) (?P<b>{_YEAR})")
_REIGN = _rx(rf"\b(?P<verb>reigned|ruled|served|lived|existed|lasted|flourished|governed)"
             rf"(?: [a-z]+)?(?: (?:from|between) (?P<a>{_YEAR}) (?:to|until|and) (?P<b>{_YEAR}))")
_PERIOD_WORDS = re.compile(r"\b(?:war|wars|dynasty|empire|period|era|revolution|kingdom|caliphate|republic|sultanate|"
                           r"civilization|civilisation|age|crisis|reign|occupation|rebellion|uprising|siege|invasion|"
                           r"campaign|conflict|crusade|union|confederation|khanate|shogunate|state|movement)\b", re.I)


def term(subject: Subject, sentence: str, first: bool) -> Found:
    """"X was the Ottoman sultan from 1520 to 1566" → "In what year did X become the Ottoman sultan?" and its end."""
    if subject.person:
        m = _TERM.search(sentence)
        if m and about_article(subject, sentence, m.start()) and len(m.group("role").split()) <= 7:
            role = m.group("role")
            if re.search(r"\b(?:his|her|their|its|he|she|in|at|on)\b|\d", role):
                return
            serve = m.group("verb") == "served as"
            yield (f"In what year did {subject.name} {'start serving as' if serve else 'become'} {role}?", m, "a",
                   "year")
            yield (f"Until what year did {subject.name} {'serve as' if serve else 'remain'} {role}?", m, "b",
                   "year")
            return
        m = _REIGN.search(sentence)
        if m and m.group("verb") in ("reigned", "ruled", "governed") and about_article(subject, sentence, m.start()):
            yield f"When did {subject.owner} reign begin?", m, "a", "year"
            yield f"When did {subject.owner} reign end?", m, "b", "year"
        return
    if not (first and _PERIOD_WORDS.search(subject.title + " " + sentence[:120])):
        return
    m = re.search(rf"\b(?:from|between) (?P<a>{_YEAR}) (?:to|until|and) (?P<b>{_YEAR})", sentence)
    if m and not _CLAUSE.search(sentence[:m.start()].replace("that existed", "")):
        yield f"When did {subject.name} begin?", m, "a", "year"
        yield f"When did {subject.name} come to an end?", m, "b", "year"


_EVENT = _rx(rf"\b(?P<verb>took place|occurred|happened|was fought|were fought|began|started|broke out|ended)"
             rf"(?: [a-z]+){{0,2}}? (?:in|on|from|between) (?P<when>{WHEN})")
_EVENT_QUESTION = {"took place": "When did {name} take place?", "occurred": "When did {name} take place?",
                   "happened": "When did {name} take place?", "was fought": "When was {name} fought?",
                   "were fought": "When were {name} fought?", "began": "When did {name} begin?",
                   "started": "When did {name} begin?", "broke out": "When did {name} break out?",
                   "ended": "When did {name} end?"}
_INDEPENDENCE = _rx(rf"\b(?:gained|achieved|won|declared|regained|obtained|attained) (?:its |full )?independence"
                    rf"(?: from (?:the )?(?P<from>{NAME}))?(?: (?:in|on) (?P<when>{WHEN}))")


def event(subject: Subject, sentence: str, first: bool) -> Found:
    """"The battle was fought on 18 June 1815" → "When was X fought?"; "gained independence in 1960"."""
    if subject.person:
        return
    for pattern in (_EVENT, _INDEPENDENCE):
        m = pattern.search(sentence)
        if not m or not (about_article(subject, sentence, m.start()) or
                         (first and not _CLAUSE.search(sentence[:m.start()]))):
            continue
        if pattern is _EVENT:
            yield _EVENT_QUESTION[m.group("verb")].format(name=subject.name), m, "when", when_type(m.group("when"))
        else:
            yield f"When did {subject.name} become independent?", m, "when", when_type(m.group("when"))
            if m.group("from"):
                yield f"From which country did {subject.name} become independent?", m, "from", "place"


_AWARD = _rx(rf"\b(?:won|received|was awarded|were awarded|awarded|winner of|recipient of|shared|was given) "
             rf"(?:the |a )?(?:(?P<year>{_YEAR}) )?(?P<prize>Nobel (?:Peace |Memorial )?Prize(?: in (?:[A-Z]\w+)"
             rf"(?: or [A-Z]\w+| Sciences)?)?|Pulitzer Prize|Fields Medal|Turing Award|Academy Award|Palme d'Or|"
             rf"Man Booker Prize|Booker Prize|Abel Prize|Wolf Prize|Presidential Medal of Freedom)"
             rf"(?: (?:for|in) [^,.]{{0,40}}?)?(?: in (?P<year2>{_YEAR}))?")


def award(subject: Subject, sentence: str, first: bool) -> Found:
    """"He received the 1921 Nobel Prize in Physics" → "In what year did X receive the Nobel Prize in Physics?"."""
    for m in _AWARD.finditer(sentence):
        group = "year" if m.group("year") else "year2" if m.group("year2") else None
        if group and (about_article(subject, sentence, m.start()) or first and not _CLAUSE.search(sentence[:m.start()])):
            yield f"In what year did {subject.name} win the {m.group('prize')}?", m, group, "year"
            return


_BECAME = _rx(rf"\b(?P<verb>became|moved to|emigrated to|settled in|returned to|married|joined|converted to|"
              rf"graduated from|entered|left|invaded|conquered|captured|annexed|visited|founded|defeated|"
              rf"succeeded|retired|abdicated|was crowned|was elected|was appointed|was exiled|was arrested|"
              rf"was knighted|was canonized|was canonised|was ordained|was baptized|was baptised|was imprisoned)"
              rf"(?P<obj>(?: [^\s,;:()]+){{0,5}}?) in (?P<when>{WHEN})(?=[,.;]| and | after | before | when | at )")
_BASE_FORM = {"became": "become", "moved to": "move to", "emigrated to": "emigrate to", "settled in": "settle in",
              "returned to": "return to", "married": "marry", "joined": "join", "converted to": "convert to",
              "graduated from": "graduate from", "entered": "enter", "left": "leave", "invaded": "invade",
              "conquered": "conquer", "captured": "capture", "annexed": "annex", "visited": "visit",
              "founded": "found", "defeated": "defeat", "succeeded": "succeed", "retired": "retire",
              "abdicated": "abdicate"}


def year_of(subject: Subject, sentence: str, first: bool) -> Found:
    """"In 1924 he moved to Berlin" / "he moved to Berlin in 1924" → "In what year did X move to Berlin?"."""
    for m in _BECAME.finditer(sentence):
        verb, obj = m.group("verb"), m.group("obj")
        if not about_article(subject, sentence, m.start()) or re.search(r"\b(?:and|or|but|which|who)\b|\d", obj):
            continue
        if verb.startswith("was "):
            question = f"In what year was {subject.name} {verb[4:]}{obj}?"
        else:
            question = f"In what year did {subject.name} {_BASE_FORM[verb]}{obj}?"
        yield question, m, "when", "year"
    m = re.match(rf"In (?P<when>{_YEAR}), (?:he|she|it|they) (?P<verb>{'|'.join(_BASE_FORM)})(?P<obj>(?: [^\s,;:()]+){{1,4}})[,.]",
                 sentence)
    if m and not re.search(r"\b(?:and|or|but|which|who|his|her|its|their)\b|\d", m.group("obj")):
        yield f"In what year did {subject.name} {_BASE_FORM[m.group('verb')]}{m.group('obj')}?", m, "when", "year"


_TAXON = _rx(r"\b(?:in|of|to|within|into|from) the (?:[a-z]+ ){0,2}?(?P<rank>family|genus|order|subfamily|class|"
             r"phylum|superfamily|tribe|suborder|infraorder|subgenus|subclass|superorder) (?P<taxon>[A-Z][a-z]+)\b")


def taxon(subject: Subject, sentence: str, first: bool) -> Found:
    """"Azaleas are flowering shrubs in the genus Rhododendron" → "To which genus does the azalea belong?"."""
    if subject.person:
        return
    lower = _base_title(subject.title).lower()
    name = f"the {lower}" if re.search(rf"\b{re.escape(lower)}\b", sentence) else subject.name
    for m in _TAXON.finditer(sentence):
        if about_article(subject, sentence, m.start()) or (first and not _CLAUSE.search(sentence[:m.start()])):
            yield f"To which {m.group('rank')} does {name} belong?", m, "taxon", "other"
            return


_ELEMENT = _rx(r"\bsymbol (?P<symbol>[A-Z][a-z]?) and atomic number (?P<number>\d+)")


def element(subject: Subject, sentence: str, first: bool) -> Found:
    """"it has symbol Pd and atomic number 46" → "What is the atomic number of palladium?" and its symbol."""
    m = _ELEMENT.search(sentence)
    if m and first:
        name = subject.name.lower()
        yield f"Which chemical symbol stands for {name}?", m, "symbol", "other"
        yield f"What is the atomic number of {name}?", m, "number", "number"


_COUNTABLE = ("species|genera|families|subfamilies|states|provinces|regions|districts|counties|islands|members|"
              "moons|satellites|countries|municipalities|departments|prefectures|cantons|parishes|books|chapters|"
              "movements|acts|strings|keys|players|sections|volumes|episodes|seasons|children|sons|daughters|"
              "languages|dialects|isotopes|parties|campuses|faculties|colleges|stations|lines|emirates|republics|"
              "oblasts|boroughs|wards|divisions|governorates|atolls|cities|towns|villages|lakes|stories|floors|"
              "pockets|arms|legs|wings|teeth|chromosomes|sides|faces|vertices|edges|letters|vowels|consonants")
_COUNT = _rx(rf"\b(?P<verb>has|had|have|comprises|comprised|consists of|consisted of|contains|contained|includes|"
             rf"included|is divided into|was divided into|are divided into|is made up of|with) (?:about |around |"
             rf"approximately |over |more than |nearly |some |roughly )?(?P<n>{_NUMBER}) "
             rf"(?P<noun>(?:[a-z]+ )?(?:{_COUNTABLE}))\b")


def count(subject: Subject, sentence: str, first: bool) -> Found:
    """"The family contains 120 species" → "How many species are there in X?"; "has 16 states" → "How many states ..."."""
    m = _COUNT.search(sentence)
    if not m or not (about_article(subject, sentence, m.start()) or first and not _CLAUSE.search(sentence[:m.start()])):
        return
    noun, verb = m.group("noun"), m.group("verb")
    if "divided" in verb:
        question = f"Into how many {noun} {verb.split()[0]} {subject.name} divided?"
    elif verb in ("consists of", "consisted of", "is made up of", "comprises", "comprised"):
        question = f"How many {noun} make up {subject.name}?"
    else:
        question = f"How many {noun} {'did' if verb in ('had', 'contained', 'included') else 'does'} {subject.name} have?"
    yield question, m, "n", "number"


_FAMILY = _rx(r"^(?:[^,]+?)(?:, [^,]+,)? (?:is|was) an? (?:[a-z]+ )?(?P<family>(?:[A-Z][\w-]+ ){1,2}?)"
              r"(?:language|languages|language family)\b")
_SPEAKERS = _rx(rf"\b(?:spoken|used) by (?:about |around |over |approximately |more than |some |roughly |nearly )?"
                rf"(?P<n>{_NUMBER}) (?:people|speakers|native speakers)|(?P<n2>{_NUMBER}) (?:native )?speakers\b")
_OFFICIAL = _rx(rf"\b(?:[Ii]ts|[Tt]he)(?: (?:two|three|four|sole|only))? official languages? (?:is|are|was|were|include) "
                rf"(?P<language>{NAME})")


def language(subject: Subject, sentence: str, first: bool) -> Found:
    """"Kazakh is a Turkic language" → "Which language family does Kazakh belong to?"; speakers; official language."""
    if re.search(r"\blanguages?\b", subject.title + " " + sentence[:80]) and not subject.person:
        m = _FAMILY.search(sentence)
        if first and m:
            yield f"Which language family {subject.do} {subject.name} belong to?", m, "family", "other"
        m = _SPEAKERS.search(sentence)
        if m and (about_article(subject, sentence, m.start()) or first):
            yield f"How many people speak {subject.name}?", m, "n" if m.group("n") else "n2", "number"
    m = _OFFICIAL.search(sentence)
    if m and not subject.person:
        yield f"What is the official language of {subject.name}?", m, "language", "other"


_DIRECTIONS = "north|south|east|west|northeast|northwest|southeast|southwest|north-east|north-west|south-east|south-west"
_BORDER_BY = _rx(rf"(?<![,\w] )(?<!and )(?<!of )(?:the )?\b(?P<place>{NAME}) (?:to|on) the (?P<dir>{_DIRECTIONS})\b"
                 rf"(?! of)")
_BORDER_TO = _rx(rf"\bto the (?P<dir>{_DIRECTIONS}) by (?:the )?(?P<place>{NAME})(?! and)")


def borders(subject: Subject, sentence: str, first: bool) -> Found:
    """"It is bordered by Zambia to the west" → "What borders X to the west?"."""
    if subject.person or not re.search(r"\b(?:border|bound)", sentence):
        return
    if not (about_article(subject, sentence, len(sentence)) or first or sentence.startswith(("It ", "It,"))):
        return
    seen = set()
    for pattern in (_BORDER_BY, _BORDER_TO):
        for m in pattern.finditer(sentence):
            if m.group("dir") in seen or re.search(r"[A-Za-z]\w* and $", sentence[:m.start("place")]):
                continue
            seen.add(m.group("dir"))
            yield f"What borders {subject.name} to the {m.group('dir')}?", m, "place", "place"


_RIVER = _rx(rf"\b(?:on|along|astride|straddles|straddling) the (?:banks of the |mouth of the )?(?:(?:river|River) "
             rf"(?P<r1>{NAME})|(?P<r2>{NAME} [Rr]iver))")
_LOCATED = _rx(rf"(?:^(?:[^,]+?)(?:, [^,]+,)? (?:is|was) an? (?:[a-z-]+ ){{0,4}}(?:city|town|country|state|province|"
               rf"region|island|village|municipality|river|lake|mountain|range|university|museum|desert|peninsula|"
               rf"port|capital|archipelago|volcano|building|cathedral|mosque|temple|palace|church|site|park|"
               rf"monument|castle|bridge|dam|canal|strait|gulf|bay|sea|metropolis|nation) (?:located |situated )?in"
               rf"|\b(?:located|situated|lies|lying|sits) (?:mainly |mostly |partly |entirely )?in) (?:the )?"
               rf"(?:(?:far |extreme )?(?:north|south|east|west|central|northern|southern|eastern|western|"
               rf"north-?eastern|north-?western|south-?eastern|south-?western|north-?central|south-?central|"
               rf"east-?central|west-?central|coastal|interior|inland|present-day|modern-day|modern) )?"
               rf"(?P<place>{NAME}(?:, {NAME}){{0,2}})(?![\w'’-])")


def place(subject: Subject, sentence: str, first: bool) -> Found:
    """"Mombasa is a coastal city in southeastern Kenya" → "In which country or region is Mombasa?"; its river."""
    if subject.person:
        return
    m = _LOCATED.search(sentence)
    if m and (first and m.group(0)[0] != " " and not _CLAUSE.search(sentence[:m.start("place")])
              or about_article(subject, sentence, m.start())):
        yield f"Where {subject.be} {subject.name}?", m, "place", "place"
    m = _RIVER.search(sentence)
    if m and (first or about_article(subject, sentence, m.start())) and not _CLAUSE.search(sentence[:m.start()]):
        yield f"On which river {subject.be} {subject.name}?", m, "r1" if m.group("r1") else "r2", "place"


_NAMED = _rx(r"\b(?:is|was|are|were) (?:also )?named (?:after|for|in honour of|in honor of) "
             r"(?:the )?(?P<after>[^,.;()]{3,60}?)(?=[,.;(]| who | which | because | in \d| whose )")
_PARENT = _rx(rf"\b(?:the |a )?(?:eldest |youngest |second |third |only |only surviving |illegitimate )?"
              rf"(?P<kin>son|daughter) of (?:the )?(?:[a-z]+ ){{0,3}}?(?P<parent>{NAME})")
_KNOWN_FOR = _rx(r"\b(?:best |widely |most |well |chiefly |primarily |mainly |perhaps best |especially )?known "
                 r"(?:today |internationally )?for (?:his |her |its |their |the )?(?P<what>[^,;.()\"“”]{3,70}?)"
                 r"(?=[,;.(]| which | who | that | as well as | and for | in which )")


def named_after(subject: Subject, sentence: str, first: bool) -> Found:
    """"The passage is named after Sir Francis Drake" → "What is X named after?"."""
    m = _NAMED.search(sentence)
    if m and about_article(subject, sentence, m.start()) and len(m.group("after").split()) <= 8:
        if not re.match(r"(?:him|her|it|them|his|its|their)\b", m.group("after")):
            yield f"What {subject.be} {subject.name} named after?", m, "after", "other"


def parent(subject: Subject, sentence: str, first: bool) -> Found:
    """"he was the son of Su Xun" → "Whose son was X?"."""
    m = _PARENT.search(sentence)
    if subject.person and m and (about_article(subject, sentence, m.start()) or
                                 re.match(r"(?:As|The) (?:a |the |eldest )?(?:son|daughter) of", sentence)):
        yield f"Whose {m.group('kin')} {subject.be} {subject.name}?", m, "parent", "person"


def known_for(subject: Subject, sentence: str, first: bool) -> Found:
    """"... best known for her advocacy of women's rights" → "What is X best known for?"."""
    m = _KNOWN_FOR.search(sentence)
    if m and (about_article(subject, sentence, m.start()) or first and not _CLAUSE.search(sentence[:m.start()])):
        if 1 <= len(m.group("what").split()) <= 10:
            yield f"What {subject.be} {subject.name} best known for?", m, "what", "other"


RULES: tuple[tuple[str, Callable[[Subject, str, bool], Found]], ...] = (
    ("founded", founded), ("work", work), ("made_by", made_by), ("nationality", nationality),
    ("full_name", full_name), ("alias", alias), ("capital", capital), ("population", population),
    ("measure", measure), ("born_died", born_died), ("term", term), ("event", event), ("award", award),
    ("year_of", year_of), ("taxon", taxon), ("element", element), ("count", count), ("language", language),
    ("borders", borders), ("place", place), ("named_after", named_after), ("parent", parent),
    ("known_for", known_for),
)


def sentences(text: str) -> Iterator[tuple[int, str]]:
    """The sentences of a text with the offset of each."""
    position = 0
    for sentence in split_sentences(text):
        start = text.index(sentence, position)
        position = start + len(sentence)
        yield start, sentence


def article_questions(article: dict) -> Iterator[Question]:
    """Every question the rules ask about one article, in sentence order, unchecked."""
    subject = subject_of(article)
    for n, (offset, sentence) in enumerate(sentences(article["text"])):
        for rule, ask in RULES:
            for question, match, group, answer_type in ask(subject, sentence, n == 0):
                answer = match.group(group).strip(" \"'“”‘’")
                start = offset + match.start(group) + match.group(group).index(answer)
                question = question[0].upper() + question[1:]
                yield Question(rule, question, answer, start, answer_type)
