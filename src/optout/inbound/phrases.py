"""Phrases in English, German, French and Spanish: asking to unsubscribe (R4) and
saying "I am away" automatically (R7). Pure: text in, evidence out.

Text is compared case- and accent-folded ("désabonner" and "desabonner" are one
phrase). An unsubscribe phrase counts only when no negation stands just before
it in the same clause ("please don't unsubscribe me", "bitte nicht abmelden",
"ne me désabonnez pas", "no quiero darme de baja").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_URL = re.compile(r"(https?://|mailto:|www\.)\S+", re.IGNORECASE)
_CLAUSE = re.compile(r"[.!?;,:\n()\[\]\"]+|\s[-\u2013\u2014]\s|\b(?:but|aber|mais|pero|sondern)\b")
_WORD = re.compile(r"[\w']+")
NEGATION_WINDOW = 4  # words before a phrase that may negate it


def fold(text: str) -> str:
    """Lower case without accents, with typographic apostrophes made plain."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'").replace("ß", "ss"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@dataclass(frozen=True)
class Phrase:
    name: str
    language: str
    pattern: re.Pattern[str]


def _phrases(language: str, *patterns: str) -> list[Phrase]:
    return [Phrase(p, language, re.compile(rf"\b(?:{p})\b")) for p in patterns]


UNSUBSCRIBE_PHRASES: tuple[Phrase, ...] = (
    *_phrases(
        "en",
        r"unsubscrib(?:e|ed|ing)",
        r"remove (?:me|us|my (?:e-?mail|address|name|details))",
        r"take (?:me|us|my (?:e-?mail|address|name)) off",
        r"stop (?:e-?mailing|mailing|contacting|sending|messaging|writing to)",
        r"(?:do not|don't|dont|never) (?:e-?mail|contact|write to|message) (?:me|us)",
        r"opt(?:ing)? (?:me )?out",
        r"no (?:more|further) (?:e-?mails|messages|mails)",
        r"(?:don't|do not|dont) (?:want|wish) to (?:receive|get) (?:any )?(?:more |further )?"
        r"(?:e-?mails|messages|these|this)",
        r"leave me alone",
        r"delete (?:me|my (?:e-?mail|address|data|details))",
    ),
    *_phrases(
        "de",
        r"abmelden",
        r"abmeldung",
        r"melden sie mich (?:bitte )?(?:davon )?ab",
        r"austragen",
        r"tragen sie mich (?:bitte )?(?:aus \w+ \w+ )?aus",
        r"abbestellen",
        r"(?:bitte )?keine (?:weiteren )?(?:e-?mails|mails|nachrichten|werbung)(?: mehr)?",
        r"nicht mehr (?:kontaktieren|anschreiben|anmailen|schreiben)",
        r"entfernen sie mich",
        r"(?:loschen|streichen) sie (?:mich|meine (?:daten|adresse|e-?mail(?:-adresse)?))",
    ),
    *_phrases(
        "fr",
        r"desabonn\w*",
        r"desinscri\w*",
        r"ne (?:plus|pas) (?:me )?(?:recevoir|contacter|ecrire)",
        r"ne (?:souhaite|veux|desire) plus (?:rien )?recevoir",
        r"retirez[- ]moi",
        r"supprimez[- ](?:moi|mon adresse|mes donnees)",
        r"arretez de m'?(?:envoyer|ecrire|contacter)",
        r"plus d'?e-?mails?",
    ),
    *_phrases(
        "es",
        r"dar(?:me|se)? de baja",
        r"den(?:me)? de baja",
        r"baja de (?:la|su|vuestra) lista",
        r"no me (?:envien|envies|manden|escriban|contacten|escribas) mas",
        r"no (?:quiero|deseo) recibir mas",
        r"eliminen?me de",
        r"borren?me de",
        r"cancelar (?:la |mi )?suscripcion",
        r"desuscribi\w*",
    ),
)

NEGATIONS = frozenset(
    {
        # English
        "not", "don't", "dont", "never", "no", "won't", "wont", "didn't", "doesn't",
        "shouldn't", "wouldn't", "isn't", "needn't", "without", "nor",
        # German
        "nicht", "kein", "nie", "niemals", "ohne",
        # French (ne / n' and pas / jamais)
        "ne", "pas", "jamais", "sans",
        # Spanish
        "nunca", "jamas", "sin", "tampoco",
    }
)  # fmt: skip
_NEGATION_AFTER = frozenset({"pas", "jamais", "nicht"})  # "ne me désabonnez pas"


@dataclass(frozen=True)
class PhraseHit:
    phrase: str
    language: str
    clause: str
    negated: bool


def unsubscribe_phrases(text: str) -> list[PhraseHit]:
    """Every unsubscribe phrase in `text`, each with its clause and whether it is negated."""
    hits: list[PhraseHit] = []
    for clause in _clauses(fold(_URL.sub(" ", text))):
        for phrase in UNSUBSCRIBE_PHRASES:
            for found in phrase.pattern.finditer(clause):
                before = _WORD.findall(clause[: found.start()])[-NEGATION_WINDOW:]
                after = _WORD.findall(clause[found.end() :])[:2]
                negated = any(_negates(word) for word in before) or any(
                    word in _NEGATION_AFTER for word in after
                )
                hits.append(PhraseHit(phrase.pattern.pattern, phrase.language, clause, negated))
                if len(hits) >= 50:
                    return hits
    return hits


def asks_to_unsubscribe(text: str) -> PhraseHit | None:
    """The first phrase that asks to unsubscribe and is not negated, if any."""
    return next((hit for hit in unsubscribe_phrases(text) if not hit.negated), None)


def _negates(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't") or word.startswith("n'")


def _clauses(text: str) -> list[str]:
    return [part.strip() for part in _CLAUSE.split(text[:50_000]) if part and part.strip()]


OUT_OF_OFFICE_SUBJECTS: tuple[Phrase, ...] = (
    *_phrases(
        "en",
        r"out of (?:the )?office",
        r"automatic reply",
        r"auto(?:matic)?[- ]?(?:reply|response)",
        r"autoreply",
        r"on (?:vacation|holiday|leave)",
    ),
    *_phrases("de", r"abwesenheitsnotiz", r"automatische antwort", r"abwesend"),
    *_phrases("fr", r"reponse automatique", r"absence", r"absent(?:e)?"),
    *_phrases(
        "es", r"respuesta automatica", r"fuera de (?:la )?oficina", r"ausente", r"de vacaciones"
    ),
)
_SUBJECT_START_ONLY = frozenset(
    {
        r"absence",
        r"absent(?:e)?",
        r"abwesend",
        r"ausente",
        r"de vacaciones",
        r"on (?:vacation|holiday|leave)",
    }
)
_AUTO_PREFIX = re.compile(r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:auto|autoreply|ooo)\s*:", re.IGNORECASE)


def out_of_office_subject(subject: str) -> Phrase | None:
    folded = fold(subject[:1000])
    if _AUTO_PREFIX.match(folded):
        return Phrase("Auto: prefix", "en", _AUTO_PREFIX)
    stripped = re.sub(r"^\s*(?:\[[^\]]{0,40}\]\s*)?", "", folded)
    for phrase in OUT_OF_OFFICE_SUBJECTS:
        if phrase.name in _SUBJECT_START_ONLY:
            if re.match(rf"(?:{phrase.name})\b", stripped):
                return phrase
        elif phrase.pattern.search(folded):
            return phrase
    return None


OUT_OF_OFFICE_BODIES: tuple[Phrase, ...] = (
    *_phrases(
        "en",
        r"this is an? automatic(?:ally generated)? (?:reply|response|message|e-?mail)",
        r"(?:i am|i'm) currently (?:out of (?:the )?office|away|on (?:annual |parental )?leave"
        r"|on vacation|on holiday|travell?ing)",
        r"i (?:am|will be) out of (?:the )?office (?:from|until|till|and will)",
        r"(?:i have|with) limited access to (?:my )?e-?mail",
    ),
    *_phrases(
        "de",
        r"automatische antwort",
        r"automatisch (?:generierte|erstellte) (?:nachricht|antwort)",
        r"ich bin (?:derzeit|zurzeit|momentan|leider) (?:nicht im (?:buro|hause)|abwesend|"
        r"im urlaub)",
        r"ich bin (?:bis|vom) .{1,40}? (?:nicht im (?:buro|hause)|abwesend|im urlaub)",
        r"vielen dank fur ihre (?:nachricht|e-?mail)\W+ich bin",
    ),
    *_phrases(
        "fr",
        r"reponse automatique",
        r"message automatique",
        r"je suis (?:actuellement )?absente? (?:du bureau|jusqu|et)",
        r"je suis actuellement (?:absente?|en conges|en vacances)",
    ),
    *_phrases(
        "es",
        r"respuesta automatica",
        r"mensaje automatico",
        r"(?:estoy|me encuentro) (?:actualmente )?fuera de (?:la )?oficina",
        r"(?:estoy|me encuentro) (?:actualmente )?de vacaciones",
    ),
)


def out_of_office_body(text: str) -> Phrase | None:
    """An out-of-office statement near the top of the new text (the first 1,000 characters)."""
    folded = re.sub(r"\s+", " ", fold(text[:1000]))
    return next((p for p in OUT_OF_OFFICE_BODIES if p.pattern.search(folded)), None)
