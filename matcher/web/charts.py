"""Small charts as inline SVG made on the server: no JavaScript, no network, prints fine."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from matcher.services.run_report import Bin, UnitCount

WIDTH = 360  # viewBox units; CSS caps the drawn width so text stays ~12-16 px
INK, MUTED, GRID = "#1f2933", "#6b7785", "#e3e7ec"
RED, BLUE = "#b4232a", "#2f6db5"


def _svg(height: int, title: str, body: list[str]) -> Markup:
    """An SVG scaling to its container's width, labelled for screen readers."""
    # Every text put into ``body`` and ``title`` went through ``escape``; the rest is numbers.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="12" fill="{INK}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def histogram(bins: Sequence[Bin], *, title: str) -> Markup:
    """Proposals per score bin: bars with their counts, the score axis below."""
    height, top, bottom, left, right = 190, 22, 30, 30, 12
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = max((b.count for b in bins), default=0) or 1
    step = plot_w / max(1, len(bins))
    body = []
    for value in (0, peak):  # a baseline and the tallest bar's level
        y = top + plot_h - plot_h * value / peak
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{value}</text>'
        )
    for i, b in enumerate(bins):
        h = plot_h * b.count / peak
        x = left + i * step
        body.append(
            f'<rect x="{x + 2:.1f}" y="{top + plot_h - h:.1f}" width="{step - 4:.1f}" '
            f'height="{h:.1f}" rx="2" fill="{RED}"><title>{b.low:.1f}–{b.high:.1f}: '
            f"{b.count}</title></rect>"
        )
        if b.count:
            body.append(
                f'<text x="{x + step / 2:.1f}" y="{top + plot_h - h - 5:.1f}" '
                f'text-anchor="middle">{b.count}</text>'
            )
    for k in range(0, len(bins) + 1, 2):  # every other bin edge: 0.0, 0.2, ...
        edge = bins[k].low if k < len(bins) else bins[-1].high
        body.append(
            f'<text x="{left + k * step:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'fill="{MUTED}">{edge:.1f}</text>'
        )
    return _svg(height, title, body)


def unit_bars(
    counts: Sequence[UnitCount],
    *,
    title: str,
    craftsmen: str,
    apprentices: str,
    cap: int | None = None,
    floor: int | None = None,
    cap_label: str = "",
    floor_label: str = "",
) -> Markup:
    """Per unit, two bars: pairs its craftsmen give and pairs its apprentices get; a run's
    per-craftsman-unit cap and apprentice-unit floor as dashed lines across the bars."""
    label_w, row_h, top = 112, 44, 30
    height = top + row_h * max(1, len(counts)) + 6
    peak = max((max(c.craftsmen, c.apprentices) for c in counts), default=0)
    peak = max(peak, cap or 0, floor or 0) or 1
    bar_w = WIDTH - label_w - 40
    body = [
        f'<rect x="0" y="6" width="12" height="12" rx="2" fill="{RED}"/>'
        f'<text x="18" y="16">{escape(craftsmen)}</text>'
        f'<rect x="150" y="6" width="12" height="12" rx="2" fill="{BLUE}"/>'
        f'<text x="168" y="16">{escape(apprentices)}</text>'
    ]
    for i, c in enumerate(counts):
        y = top + i * row_h
        name = c.unit.name if len(c.unit.name) <= 8 else c.unit.name[:7] + "…"
        body.append(
            f'<text x="{label_w - 8}" y="{y + 24}" text-anchor="end">'
            f"<title>{escape(c.unit.name)}</title>{escape(name)}</text>"
        )
        for j, (value, colour) in enumerate(((c.craftsmen, RED), (c.apprentices, BLUE))):
            w = bar_w * value / peak
            by = y + 4 + j * 18
            body.append(
                f'<rect x="{label_w}" y="{by}" width="{max(w, 1):.1f}" height="15" rx="2" '
                f'fill="{colour}"/><text x="{label_w + w + 5:.1f}" y="{by + 12}" '
                f'fill="{MUTED}">{value}</text>'
            )
    # The rules: the cap crosses the craftsman bars, the floor the apprentice bars.
    for limit, colour, label, offset in ((cap, RED, cap_label, 4), (floor, BLUE, floor_label, 22)):
        if limit is None:
            continue
        x = label_w + bar_w * limit / peak
        lines = "".join(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + i * row_h + offset - 2}" '
            f'y2="{top + i * row_h + offset + 17}" stroke="{colour}" stroke-dasharray="3 2"/>'
            for i in range(len(counts))
        )
        body.append(f'<g class="rule"><title>{escape(label)} {limit}</title>{lines}</g>')
    return _svg(height, title, body)


def figure_bars(figures: Sequence[tuple[str, float]], *, title: str) -> Markup:
    """One unit's figures as labelled horizontal bars (each against the largest)."""
    label_w, row_h, top = 112, 22, 6
    height = top + row_h * max(1, len(figures)) + 4
    peak = max((value for _, value in figures), default=0) or 1
    bar_w = WIDTH - label_w - 46
    body = []
    for i, (label, value) in enumerate(figures):
        y = top + i * row_h
        w = bar_w * value / peak
        shown = f"{value:g}"
        body.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1):.1f}" height="14" rx="2" '
            f'fill="{BLUE if i % 2 else RED}"/><text x="{label_w + w + 5:.1f}" y="{y + 13}" '
            f'fill="{MUTED}">{shown}</text>'
        )
    return _svg(height, title, body)
