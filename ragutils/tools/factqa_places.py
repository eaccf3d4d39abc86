"""Questions from sentence patterns about places and sizes: capitals, location, borders, population, area, counts.

The same kind of rules as ``tools.factqa_rules`` (which holds what they share):
"Nairobi is the capital and largest city of Kenya" gives "Nairobi is the capital of
which country or region?", "It is bordered by Zambia to the west" gives "What borders
Malawi to the west?".
"""

from __future__ import annotations

import re

from .factqa_rules import ABOUT, CLAUSE, NAME, NAME_END, NUMBER, Found, Rule, Subject, about_article, said_of

_CAPITAL_OF = re.compile(rf"^(?:[^,]+?)(?:, [^,]+,)? (?:is|was) (?:also )?the (?:de facto |historical |former )?"
                         rf"capital(?: city)?(?:,? (?:and|as well as) (?:the )?(?:largest|most populous) city)? "
                         rf"(?:of|in) (?:the )?(?P<of>{NAME})")
_HAS_CAPITAL = re.compile(rf"\b(?:[Ii]ts|[Tt]he) capital(?: city)?(?: and (?:largest|most populous) city)? "
                          rf"(?:is|was) (?:the city of )?(?P<capital>{NAME})")
_LARGEST_CITY = re.compile(rf"\b(?:[Ii]ts|[Tt]he) (?:largest|most populous) city (?:is|was) (?P<city>{NAME})")


def capital(subject: Subject, sentence: str, first: bool) -> Found:
    """"X is the capital of Kenya" → "X is the capital of which country or region?"; "Its capital is Y" likewise."""
    if subject.person:
        return
    if first and (m := _CAPITAL_OF.search(sentence)) and not CLAUSE.search(sentence[:m.start("of")]):
        yield f"{subject.name} is the capital of which country or region?", m, "of", "place"
    for pattern, group, question in ((_HAS_CAPITAL, "capital", f"What is the capital of {subject.name}?"),
                                     (_LARGEST_CITY, "city", f"Which is the largest city of {subject.name}?")):
        m = pattern.search(sentence)
        if m and (m.group(0)[:3].lower() == "its" or about_article(subject, sentence, m.start())):
            yield question, m, group, "place"


_POPULATION = re.compile(rf"\b(?:estimated |total |combined |recorded )?population (?:of |was |is |at |stood at |"
                         rf"reached )?{ABOUT}(?P<n>{NUMBER})(?! (?:km|sq|square|BC))"
                         rf"|\b(?:home to|has|had|with) {ABOUT}(?P<n2>{NUMBER}) (?:inhabitants|residents|people)\b")


def population(subject: Subject, sentence: str, first: bool) -> Found:
    """"... a population of 2.04 million" → "How many people live in X?"."""
    m = _POPULATION.search(sentence)
    if not m or subject.person or re.search(r"(?:metropolitan|metro|urban|greater|wider) (?:area )?(?:population|area)",
                                            sentence[max(0, m.start() - 30):m.end()], re.I):
        return
    if said_of(subject, sentence, m.start(), first):
        yield f"How many people live in {subject.name}?", m, "n" if m.group("n") else "n2", "number"


_MEASURE = re.compile(rf"\b(?P<n>(?:{NUMBER})(?:[–-]\d+(?:\.\d+)?)? ?(?:km2|km²|square kilometres|square kilometers|"
                      rf"sq mi|km|kilometres|kilometers|miles|mi|metres|meters|m|feet|ft))"
                      rf"(?P<what> long| in length| high| tall| in height| above sea level| in diameter| wide| deep|)"
                      rf"\b")
_MEASURE_QUESTION = {" long": "How long is {name}?", " in length": "How long is {name}?",
                     " high": "How high is {name}?", " tall": "How tall is {name}?",
                     " in height": "How tall is {name}?", " above sea level": "How high above sea level is {name}?",
                     " in diameter": "What is the diameter of {name}?", " wide": "How wide is {name}?",
                     " deep": "How deep is {name}?", "": "What is the area of {name}?"}


def measure(subject: Subject, sentence: str, first: bool) -> Found:
    """"... 6,650 km long" → "How long is X?"; "an area of 105.4 km2" → "What is the area of X?"."""
    for m in _MEASURE.finditer(sentence) if not subject.person else ():
        before = sentence[max(0, m.start() - 40):m.start()].lower()
        if before.endswith("("):
            continue  # the same length in other units
        area = re.search(r"\b(?:area|covers|covering)\b[^,]{0,20}$", before) and re.search(r"km2|km²|sq", m.group(0))
        if (m.group("what") or area) and said_of(subject, sentence, m.start(), first):
            yield _MEASURE_QUESTION[m.group("what")].format(name=subject.name), m, "n", "number"
            return


_LOCATED = re.compile(
    rf"(?:^(?:[^,]+?)(?:, [^,]+,)? (?:is|was) (?:an?|the) (?:[a-z-]+ ){{0,4}}(?:city|town|country|state|province|"
    rf"region|island|village|municipality|river|lake|mountain|range|university|museum|desert|peninsula|port|capital|"
    rf"archipelago|volcano|building|cathedral|mosque|temple|palace|church|site|park|monument|castle|bridge|dam|"
    rf"canal|strait|gulf|bay|sea|metropolis|nation|county|district|territory) (?:located |situated )?(?:in|of)"
    rf"|\b(?:located|situated|lies|lying|sits|headquartered|based) (?:mainly |mostly |partly |entirely )?in"
    rf"|\b(?P<native>native to|originated in|originates in|endemic to)) (?:the )?"
    rf"(?:(?:far |extreme )?(?:north|south|east|west|central|northern|southern|eastern|western|north-?eastern|"
    rf"north-?western|south-?eastern|south-?western|north-?central|south-?central|coastal|present-day|modern-day|"
    rf"modern|tropical|temperate|sub-Saharan) )?(?P<place>{NAME}(?:, {NAME}){{0,2}})(?![\w'’-])")
_RIVER = re.compile(rf"\b(?:on|along|astride|straddles|straddling) the (?:banks of the |mouth of the )?"
                    rf"(?:(?:river|River) (?P<r1>{NAME})|(?P<r2>{NAME} [Rr]iver))")


def place(subject: Subject, sentence: str, first: bool) -> Found:
    """"Mombasa is a coastal city in southeastern Kenya" → "Where is Mombasa?"; "native to Africa"; its river."""
    if subject.person:
        return
    m = _LOCATED.search(sentence)
    if m and (first and m.group(0)[0] != " " and not CLAUSE.search(sentence[:m.start("place")])
              or about_article(subject, sentence, m.start())):
        native = m.group("native") or ""
        question = (f"Where {subject.do} {subject.name} come from?" if native.startswith("origin")
                    else f"Where {subject.be} {subject.kind} native to?" if native else
                    f"Where {subject.be} {subject.name}?")
        yield question, m, "place", "place"
    m = _RIVER.search(sentence)
    if m and said_of(subject, sentence, m.start(), first):
        yield f"On which river {subject.be} {subject.name}?", m, "r1" if m.group("r1") else "r2", "place"


_DIRECTIONS = ("north|south|east|west|northeast|northwest|southeast|southwest|north-east|north-west|south-east|"
               "south-west")
_BORDER = re.compile(rf"(?<![,\w] )(?<!and )(?<!of )(?:the )?\b(?P<place>{NAME}) (?:to|on) the (?P<dir>{_DIRECTIONS})"
                     rf"\b(?! of)|\bto the (?P<dir2>{_DIRECTIONS}) by (?:the )?(?P<place2>{NAME})(?! and)")


_DISTANCE = re.compile(rf"\b(?P<n>(?:{NUMBER}) ?(?:km|kilometres|kilometers|miles|mi)) (?:\([^()]*\) )?"
                       rf"(?:(?:due )?(?:{_DIRECTIONS}) of|from) (?P<the>the )?(?P<place>{NAME})(?!\.\w|[–-])"
                       rf"{NAME_END}")


def distance(subject: Subject, sentence: str, first: bool) -> Found:
    """"... 140 km (87 mi) to the south of Tehran" → "How far is Qom from Tehran?"."""
    m = _DISTANCE.search(sentence)
    if m and not subject.person and said_of(subject, sentence, m.start(), first):
        yield f"How far {subject.be} {subject.name} from {m.group('the') or ''}{m.group('place')}?", m, "n", "number"


def borders(subject: Subject, sentence: str, first: bool) -> Found:
    """"It is bordered by Zambia to the west" → "What borders X to the west?"."""
    verb = re.search(r"\b(?:border|bound)", sentence)
    if subject.person or not verb or not said_of(subject, sentence, verb.start(), first):
        return
    seen = set()
    for m in _BORDER.finditer(sentence):
        direction, group = (m.group("dir"), "place") if m.group("dir") else (m.group("dir2"), "place2")
        if direction not in seen and not re.search(r"\w and $", sentence[:m.start(group)]):
            seen.add(direction)
            yield f"What borders {subject.name} to the {direction}?", m, group, "place"


_COUNTABLE = ("species|genera|families|subfamilies|states|provinces|regions|districts|counties|islands|members|"
              "moons|satellites|countries|municipalities|departments|prefectures|cantons|parishes|books|chapters|"
              "movements|acts|strings|keys|players|sections|volumes|episodes|seasons|children|sons|daughters|"
              "languages|dialects|isotopes|parties|campuses|faculties|colleges|stations|lines|emirates|republics|"
              "oblasts|boroughs|wards|divisions|governorates|atolls|cities|towns|villages|lakes|stories|floors|"
              "pockets|arms|legs|wings|teeth|chromosomes|sides|faces|vertices|edges|letters|vowels|consonants|"
              "championships|titles|medals|awards|goals")
_COUNT = re.compile(rf"\b(?P<verb>has|had|have|comprises|comprised|consists of|consisted of|contains|contained|"
                    rf"includes|included|won|is divided into|was divided into|are divided into|is made up of) "
                    rf"{ABOUT}(?P<n>{NUMBER}) "
                    rf"(?P<noun>(?:[A-Za-z]+ )?(?:{_COUNTABLE}))\b")


def count(subject: Subject, sentence: str, first: bool) -> Found:
    """"The family contains 120 species" → "How many species does X have?"; "won four NBA championships"."""
    m = _COUNT.search(sentence)
    if not m or not said_of(subject, sentence, m.start(), first):
        return
    noun, verb = m.group("noun"), m.group("verb")
    if "divided" in verb:
        question = f"Into how many {noun} {verb.split()[0]} {subject.kind} divided?"
    elif verb in ("consists of", "consisted of", "is made up of", "comprises", "comprised"):
        question = f"How many {noun} make up {subject.kind}?"
    elif verb == "won":
        has, win = ("did", "win") if subject.past else ("has", "won")
        question = f"How many {noun} {has} {subject.name} {win}?"
    else:
        did = "did" if verb in ("had", "contained", "included") else "does"
        question = f"How many {noun} {did} {subject.kind} have?"
    yield question, m, "n", "number"



RULES: tuple[tuple[str, Rule], ...] = (
    ("capital", capital), ("population", population), ("measure", measure), ("place", place),
    ("borders", borders), ("distance", distance), ("count", count),
)
