"""The new text of a reply and the phrases read in it (R4, R7): pure, no database."""

from __future__ import annotations

import pytest

from optout.inbound.newtext import extract, html_to_text
from optout.inbound.phrases import (
    asks_to_unsubscribe,
    out_of_office_body,
    out_of_office_subject,
    unsubscribe_phrases,
)


@pytest.mark.parametrize(
    "text",
    [
        "Please unsubscribe me.",
        "Remove me from your list, thanks",
        "take me off your mailing list",
        "Stop emailing me!",
        "Please don't contact me again.",
        "No thanks. Unsubscribe",
        "I don't want to receive these emails",
        "Bitte abmelden.",
        "Bitte keine E-Mails mehr.",
        "Melden Sie mich bitte ab.",
        "Tragen Sie mich bitte aus.",
        "Bitte austragen, danke.",
        "Merci de me désabonner.",
        "Je souhaite me désinscrire de votre liste.",
        "Je ne souhaite plus recevoir vos e-mails.",
        "Retirez-moi de votre liste.",
        "Quiero darme de baja.",
        "Por favor, denme de baja",
        "No me envíen más correos.",
        "Elimíneme de su lista por favor",
    ],
)
def test_R4_unsubscribe_requests_in_four_languages(text: str) -> None:
    assert asks_to_unsubscribe(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Please don't unsubscribe me - this is useful.",
        "I do not want to unsubscribe.",
        "I never asked to be removed, please don't remove me",
        "No need to unsubscribe me, I changed teams.",
        "Bitte nicht abmelden, das ist interessant.",
        "Ich möchte mich nicht austragen.",
        "Ne me désabonnez pas, merci.",
        "Je ne veux pas me désinscrire.",
        "No quiero darme de baja, gracias.",
        "Nunca pedí darme de baja.",
        "Thanks, interested!",
        "Not interested right now, maybe next quarter.",
        "Can you send the pricing?",
    ],
)
def test_R4_negated_or_absent_unsubscribe_is_no_request(text: str) -> None:
    assert asks_to_unsubscribe(text) is None


def test_R4_each_phrase_hit_records_its_clause_and_negation() -> None:
    (hit,) = unsubscribe_phrases("Please don't unsubscribe me")
    assert hit.negated
    assert hit.clause == "please don't unsubscribe me"
    assert hit.language == "en"


def test_R4_links_do_not_count_as_words() -> None:
    assert asks_to_unsubscribe("See https://example.com/unsubscribe-center for details") is None


@pytest.mark.parametrize(
    ("quoted", "answer"),
    [
        (
            "Thanks!\n\nOn Mon, Nov 2, 2026 at 10:00 AM Sam <s@x.io> wrote:\n> unsubscribe",
            "Thanks!",
        ),
        ("Gern.\n\nAm Mo., 2. Nov. 2026 um 10:00 Uhr schrieb Sam <s@x.io>:\n> abmelden", "Gern."),
        ("Oui.\n\nLe lun. 2 nov. 2026 à 10:00, Sam <s@x.io> a écrit :\n> désabonner", "Oui."),
        ("Sí.\n\nEl lun, 2 nov 2026 a las 10:00, Sam (<sam@x.com>) escribió:\n> baja", "Sí."),
        ("Ok.\n\n-----Original Message-----\nFrom: Sam\nunsubscribe", "Ok."),
        ("Ok.\n\n-----Ursprüngliche Nachricht-----\nVon: Sam\nabmelden", "Ok."),
        ("Ok.\n\nFrom: Sam <s@x.io>\nSent: Monday\nTo: Ann\nunsubscribe", "Ok."),
        ("Ok.\n\nDe : Sam\nEnvoyé : lundi\nÀ : Ann\ndésabonner", "Ok."),
        ("Ok.\n\n________________________________\nunsubscribe", "Ok."),
        ("Ok.\n-- \nAnn\nunsubscribe from our news", "Ok."),
        ("Ok.\n\nSent from my iPhone\n\nunsubscribe", "Ok."),
        ("Ok.\nUnsubscribe: https://links.example.com/u/abc", "Ok."),
    ],
)
def test_R4_quoted_history_signatures_and_footers_are_cut(quoted: str, answer: str) -> None:
    text, _, cut = extract(quoted)
    assert text == answer
    assert cut


def test_R5_interleaved_answers_are_kept_and_bottom_posting_is_read() -> None:
    text, _, _ = extract("> Are you free Monday?\nYes, 10am.\n> And the budget?\nApproved.")
    assert text == "Yes, 10am.\nApproved."
    bottom = "On Mon, Nov 2, 2026 Sam <s@x.io> wrote:\n> Hi Ann\n\nHi Sam, sure."
    assert extract(bottom)[0] == "Hi Sam, sure."


def test_R4_forwarded_block_is_cut_and_flagged() -> None:
    text, forwarded, _ = extract(
        "FYI\n\n---------- Forwarded message ---------\nFrom: Sam\n\nunsubscribe"
    )
    assert (text, forwarded) == ("FYI", True)
    text, forwarded, _ = extract(
        "Zur Info\n\nVon: Sam\nGesendet: Montag\nabmelden", forward_subject=True
    )
    assert (text, forwarded) == ("Zur Info", True)


def test_R4_html_quote_containers_and_unsubscribe_links_are_dropped() -> None:
    html = (
        "<div>Sounds good</div><div class='gmail_quote'>On Mon <b>Sam</b> wrote:"
        "<blockquote>unsubscribe</blockquote></div>"
        "<p><a href='https://x/u/t'>Unsubscribe</a></p>"
    )
    assert html_to_text(html) == "Sounds good"
    outlook = "<p>Yes</p><div id='divRplyFwdMsg'>From: Sam</div><div>remove me</div>"
    assert html_to_text(outlook) == "Yes"
    assert html_to_text("<p>broken <b>markup <blockquote>q") == "broken markup"


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Quick question",
        "Out of Office: Quick question",
        "Auto: Quick question",
        "Abwesenheitsnotiz: Kurze Frage",
        "Automatische Antwort: Kurze Frage",
        "Réponse automatique : Une question",
        "Absence : Une question",
        "Respuesta automática: Una pregunta",
        "Fuera de la oficina",
    ],
)
def test_R7_out_of_office_subjects(subject: str) -> None:
    assert out_of_office_subject(subject) is not None


@pytest.mark.parametrize(
    "subject", ["Re: Quick question", "Re: absence policy", "AW: Kurze Frage", "Re: vacaciones"]
)
def test_R7_ordinary_subjects_are_not_out_of_office(subject: str) -> None:
    assert out_of_office_subject(subject) is None


def test_R7_out_of_office_wording_needs_an_automatic_statement() -> None:
    assert out_of_office_body("I am currently out of the office until Monday.")
    assert out_of_office_body("Ich bin derzeit nicht im Büro.")
    assert out_of_office_body("Je suis actuellement absente du bureau.")
    assert out_of_office_body("Estoy fuera de la oficina hasta el lunes.")
    assert out_of_office_body("Let's talk when I'm back in the office next week.") is None
