"""The certificate (出师证书) as an A4 PDF, made by WeasyPrint from an HTML template.

The text is set in a CJK font found on the system through fontconfig (Noto Serif / Sans CJK,
Debian's ``fonts-noto-cjk``; the Dockerfile installs it); WeasyPrint embeds the subset of
glyphs used, so the PDF reads the same on any machine. Nothing is fetched at run time: the
template has no external resource, and the URL fetcher refuses every URL.
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask import render_template
from flask_babel import force_locale

from matcher.i18n import DEFAULT_LOCALE, catalog_name
from matcher.services.programme import CertificateView


def _no_fetching(url: str, *_args: Any, **_kwargs: Any) -> NoReturn:
    raise ValueError(f"the certificate fetches nothing, not {url}")


def render_certificate_pdf(view: CertificateView, url: str) -> bytes:
    """The certificate's PDF bytes (A4, one page)."""
    import weasyprint  # heavy: loaded by the first certificate, not by every process

    with force_locale(catalog_name(DEFAULT_LOCALE)):  # a certificate of a Chinese alliance
        html = render_template("pdf/certificate.html", certificate=view, url=url, locale="zh-CN")
    pdf: bytes = weasyprint.HTML(string=html, url_fetcher=_no_fetching).write_pdf()
    return pdf
