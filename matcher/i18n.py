"""The one home of every text people read in their language (pages, emails, page refusals):
gettext catalogs in ``matcher/translations/<locale>/LC_MESSAGES/messages.po``
(``zh_Hans_CN``, ``en``), zh-CN (the
default) and en, keyed by stable message ids (``signin.locked``), never by English sentences.

The pages reach them through Flask-Babel (``matcher.web``); the emails, built in the scheduler
process outside any request, and the API's English texts through :func:`translate` here. No
Flask: services import this module.

The compiled ``messages.mo`` files are committed beside their ``.po`` files rather than built at
install time: an editable install (``make run``), the Dockerfile's wheel and a fresh clone then
all read the same files with nothing to build or download, and
``tests/test_i18n.py`` fails when a ``.mo`` no longer says what its ``.po`` says
(``pybabel compile -d matcher/translations`` remakes them; see the README).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from babel import Locale
from babel.support import Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import escape

CATALOGS = Path(__file__).parent / "translations"
DOMAIN = "messages"
DEFAULT_LOCALE = "zh-CN"
API_LOCALE = "en"  # the API's problem details and messages are English


def catalog_name(locale: str) -> str:
    """Babel's name of one of our locales, which names its catalog folder: ``zh-CN`` →
    ``zh_Hans_CN`` (Babel adds the script, and Flask-Babel looks for the folder by that
    name), ``en`` → ``en``."""
    return str(Locale.parse(locale, sep="-"))


@cache
def translations(locale: str) -> Translations:
    """The compiled catalog of ``locale``; the default locale's for a locale we have none of.

    Opened directly rather than through ``Translations.load``, which silently falls back to
    showing message ids when a file is missing.
    """
    path = CATALOGS / catalog_name(locale) / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if not path.is_file() and locale != DEFAULT_LOCALE:
        return translations(DEFAULT_LOCALE)
    with path.open("rb") as file:
        return Translations(file, domain=DOMAIN)


def translate(locale: str, msgid: str, **params: object) -> str:
    """The text of ``msgid`` in ``locale``, its ``%(name)s`` placeholders filled from
    ``params`` (the same rule as Flask-Babel's ``gettext``)."""
    text = translations(locale).gettext(msgid)
    return text % params if params else text


def install_gettext(env: Environment, lookup: Callable[[Context, str], str]) -> None:
    """Give ``env``'s templates ``_("id", name=value)``: ``lookup`` finds the text of an id for
    the template being rendered (the request's locale, or the email's).

    Catalogs hold text, not markup: in an autoescaped template the text is escaped like any
    other, and so are the values filled in, unless a value is markup itself (the ``<strong>``
    around a date in an email). So a quote or ``<`` in a translation never breaks a page.
    """

    @pass_context
    def gettext(context: Context, msgid: str) -> str:
        text = lookup(context, msgid)
        return escape(text) if context.eval_ctx.autoescape else text

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, n: int) -> str:
        return str(gettext(context, singular if n == 1 else plural))

    env.add_extension("jinja2.ext.i18n")
    # newstyle: placeholders are filled by ``_()`` itself, escaping values as above.
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]


def N_(msgid: str) -> str:  # noqa: N802 - gettext's conventional name for "mark, don't translate"
    """Mark a message id that is looked up later (under a name built from a value), so that
    ``pybabel extract`` finds it; returns it unchanged."""
    return msgid


@dataclass(frozen=True)
class Message:
    """A text a service hands back without wording it: a message id and its parameters. The
    API renders it in English (:meth:`english`), the pages and emails in the reader's locale."""

    id: str
    params: Mapping[str, object] = field(default_factory=dict)

    def render(self, locale: str) -> str:
        """The text in ``locale``."""
        return translate(locale, self.id, **self.params)

    def english(self) -> str:
        """The text as the API says it."""
        return self.render(API_LOCALE)
