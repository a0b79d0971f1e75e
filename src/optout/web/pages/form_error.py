"""A refused form as its page shows it again: the message, and the input it is about.

The page keeps what was typed in every input, puts the message beside the input at
fault, and links to it from the top of the page (`fragments/form_error.html`), so a
form far down a long page is not refused out of sight."""

from __future__ import annotations

from dataclasses import dataclass

from optout.errors import OptoutError


@dataclass(frozen=True)
class FormError:
    """What a template needs of an error: it reads as its message and is false when the
    form has none, so `{% if error %}{{ error }}` works as it did with a plain message."""

    message: str = ""
    field: str = ""  # the input it is about, as the error names it; "" for the whole form

    def __str__(self) -> str:
        return self.message

    def __bool__(self) -> bool:
        return bool(self.message)


NO_ERROR = FormError()


def form_error(error: OptoutError | None) -> FormError:
    if error is None:
        return NO_ERROR
    return FormError(error.message, error.field)
