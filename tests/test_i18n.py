"""The catalogs (matcher/i18n.py): both locales complete with the same placeholders, exactly the
message ids the code and templates use, each family of ids built from a value covering its
values, and the committed ``.mo`` files compiled from the ``.po`` files as they stand."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_type_hints

import marshmallow as ma
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

import matcher
from matcher.algorithms.params import Objective
from matcher.api.mentorships import SummaryInputSchema
from matcher.api.programme import CheckInInputSchema
from matcher.i18n import CATALOGS, DEFAULT_LOCALE, Message, catalog_name, translate
from matcher.models import (
    ASSESSMENT_RESULTS,
    AUTHORS,
    CHECK_IN_OCCASIONS,
    END_REASONS,
    LOCALES,
    MENTORSHIP_STATUSES,
    OFFER_STATUSES,
    PROPOSAL_STATUSES,
    RUN_STATUSES,
    UNMATCHED_REASONS,
)
from matcher.services.review import CommitConflict
from matcher.services.run_report import SORTS
from matcher.web.labels import FAMILIES
from matcher.web.programme import ACTIVITY_SORTS
from matcher.web.runs import NUMBER_PARAMS, RULE_PARAMS, DecisionFormSchema

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# What the code passes ids to, as `make i18n` extracts them (babel.cfg and the Makefile).
KEYWORDS = {"_": None, "gettext": None, "N_": None, "Message": None, "translate": (2,)}
METHODS = [
    ("**.py", "python"),
    ("templates/**.html", "jinja2"),
    ("templates/**.txt", "jinja2"),
]


def _path(locale: str, extension: str) -> Path:
    return CATALOGS / catalog_name(locale) / "LC_MESSAGES" / f"messages.{extension}"


def _catalog(locale: str) -> Catalog:
    with _path(locale, "po").open("rb") as file:
        return read_po(file)


def _texts(catalog: Catalog) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in catalog if m.id}


def test_there_is_one_catalog_per_locale_of_the_models() -> None:
    folders = {p.name for p in CATALOGS.iterdir() if p.is_dir()}
    assert folders == {catalog_name(locale) for locale in LOCALES}
    assert DEFAULT_LOCALE in LOCALES


def test_both_catalogs_have_every_text_with_the_same_placeholders() -> None:
    texts = {locale: _texts(_catalog(locale)) for locale in LOCALES}
    chinese, english = texts["zh-CN"], texts["en"]
    assert set(chinese) == set(english)
    for locale, catalog in texts.items():
        assert not [i for i, text in catalog.items() if not text.strip()], f"{locale}: empty"
        for msgid, text in catalog.items():
            # Only %(name)s placeholders: a stray % or a str.format {name} would break or
            # show as written.
            rest = PLACEHOLDER.sub("", text)
            assert "%" not in rest and not re.search(r"\{\w*\}", rest), (locale, msgid, text)
    assert {i: set(PLACEHOLDER.findall(t)) for i, t in chinese.items()} == {
        i: set(PLACEHOLDER.findall(t)) for i, t in english.items()
    }
    assert not [m.id for locale in LOCALES for m in _catalog(locale) if m.id and m.fuzzy]


def test_the_catalogs_hold_exactly_the_ids_the_code_and_templates_use() -> None:
    package = Path(matcher.__file__).parent
    used = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            package, method_map=METHODS, keywords=KEYWORDS, comment_tags=()
        )
    }
    held = set(_texts(_catalog(DEFAULT_LOCALE)))
    assert sorted(used - held) == [], "used but in no catalog"
    assert sorted(held - used) == [], "in the catalogs but used nowhere"


# The new-run form's parameters (the API's schema judges them; the rest are API-only).
FORM_PARAMS = ("objective", *NUMBER_PARAMS, *RULE_PARAMS, "include_mentored")


def _choices(schema: ma.Schema, field: str) -> tuple[str, ...]:
    (one_of,) = [v for v in schema.fields[field].validators if isinstance(v, ma.validate.OneOf)]
    return tuple(str(choice) for choice in one_of.choices)


@pytest.mark.parametrize(
    ("family", "prefix", "values", "suffix"),
    [
        ("status", "status.", RUN_STATUSES + PROPOSAL_STATUSES, ""),
        ("objective", "objective.", get_args(Objective), ""),
        ("param", "param.", FORM_PARAMS, ""),
        ("param_hint", "param.", FORM_PARAMS, ".hint"),
        ("reason", "reason.", UNMATCHED_REASONS, ""),
        ("sort", "sort.", SORTS, ""),
        ("author", "", AUTHORS, ""),
        ("summary_field", "summary.", tuple(set(SummaryInputSchema().fields) - {"author"}), ""),
        ("flash", "flash.", _choices(DecisionFormSchema(), "action"), ""),
        ("conflict", "conflict.", get_args(get_type_hints(CommitConflict)["kind"]), ""),
        ("mentorship_status", "mentorship.status.", MENTORSHIP_STATUSES, ""),
        ("end_reason", "end_reason.", END_REASONS, ""),
        ("occasion", "occasion.", CHECK_IN_OCCASIONS, ""),
        ("offer_status", "offer.status.", OFFER_STATUSES, ""),
        ("activity", "activity.", ACTIVITY_SORTS, ""),
        ("assessment_result", "assessment.result.", ASSESSMENT_RESULTS, ""),
        (
            "check_in_field",
            "check_in.",
            tuple(set(CheckInInputSchema().fields) - {"author", "occasion"}),
            "",
        ),
    ],
)
def test_each_family_of_ids_built_from_a_value_covers_every_value(
    family: str, prefix: str, values: tuple[str, ...], suffix: str
) -> None:
    assert set(FAMILIES[family]) == {f"{prefix}{value}{suffix}" for value in values}


@pytest.mark.parametrize("locale", LOCALES)
def test_the_committed_mo_files_say_what_the_po_files_say(locale: str) -> None:
    with _path(locale, "mo").open("rb") as file:
        compiled = read_mo(file)
    assert _texts(compiled) == _texts(_catalog(locale)), "run `make i18n`"


def test_texts_fill_their_placeholders_and_an_unknown_locale_reads_the_default() -> None:
    assert translate("en", "run.title", id=7) == "Match run #7"
    assert translate("zh-CN", "run.title", id=7) == "匹配方案 #7"
    assert translate("fr", "nav.overview") == translate("zh-CN", "nav.overview") == "联盟总览"
    message = Message("review.no_free_slot")
    assert message.english() == "The craftsman has no free capacity left in this run."
    assert message.render("zh-CN") == "这位师傅在本方案中已没有空余名额。"


def test_the_catalogs_load_without_flask() -> None:
    """Emails are built in the scheduler process: the catalogs need no app and no request.
    (Measured beyond what ``import matcher`` itself loads, which issue 11 empties separately.)"""
    code = (
        "import sys, matcher\n"
        "before = set(sys.modules)\n"
        "import matcher.i18n as i\n"
        "i.translate('en', 'nav.overview')\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] == 'flask'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
