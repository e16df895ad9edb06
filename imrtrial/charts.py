"""Charts drawn as SVG text on the server, for the reports and the data manager's queue.

Here, in the lowest app, so that every app may draw one (an app imports only the apps before it).

Pure Python but for Django's translation of the few words it writes itself (titles and labels
come from the caller, translated there): the CSP allows no script and no inline style, so every
chart is geometry and presentation attributes, and the same numbers always give the same bytes (the
blinding tests compare bytes). Each chart carries a <title> and <desc> as its text alternative;
the pages put a table of the same numbers beside it.

Colours are the Okabe-Ito palette (distinguishable with colour-vision deficiency); lines also
differ by dash pattern, and bars carry their numbers, so nothing is told by colour alone.
"""

import math
from html import escape

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

NO_DATA = gettext_lazy("no data")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "4 4", "1 2", "10 4")
INK, MUTED, RULE, FILL, GRID = "#212529", "#495057", "#adb5bd", "#f1f3f5", "#dee2e6"
CHAR_W = 0.54  # average glyph width, in font sizes, for wrapping and fitting labels


def _e(text):
    return escape(str(text), quote=True)


def _n(x):
    """A coordinate as short, stable text (no float noise between runs)."""
    x = round(x, 1)
    return str(int(x)) if x == int(x) else f"{x:.1f}"


def _text(x, y, text, *, size=13, anchor="start", weight=None, fill=INK, extra=""):
    attrs = f'x="{_n(x)}" y="{_n(y)}" font-size="{size}" fill="{fill}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if weight:
        attrs += f' font-weight="{weight}"'
    return f"<text {attrs}{extra}>{_e(text)}</text>"


def wrap(text, max_chars):
    """Words into lines of at most max_chars (a longer word is cut)."""
    max_chars = max(int(max_chars), 4)
    lines, line = [], ""
    for word in str(text).split():
        while len(word) > max_chars:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[: max_chars - 1] + "-")
            word = word[max_chars - 1 :]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= max_chars:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line or not lines:
        lines.append(line)
    return lines


def fit(text, width, size):
    """The text cut (with an ellipsis) to fit `width` pixels at font `size`."""
    text = str(text)
    room = max(int(width / (size * CHAR_W)), 2)
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


def _open(svg_id, width, height, title, description):
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{svg_id}-title {svg_id}-desc" font-family="{_e(FONT)}" '
        f'class="report-chart">',
        f'<title id="{svg_id}-title">{_e(title)}</title>',
        f'<desc id="{svg_id}-desc">{_e(description)}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]


def nice_ticks(top, count=5):
    """Round tick values from 0 to at least `top` (about `count` steps)."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1:
        step = 1
    ticks, value = [], 0
    while value < top:
        ticks.append(value)
        value += step
    ticks.append(value)
    return [int(t) if float(t).is_integer() else t for t in ticks]


# --- CONSORT flow diagram ---------------------------------------------------------------------

BOX_PAD, LINE_H, BOX_FONT, INDENT = 8, 17, 13, 14
STAGE_H, GAP = 24, 26


def _box_lines(lines, width):
    """[(indent, text)] to [(x offset, text, bold)] wrapped to the box width. Indent 0 is a
    heading line (bold), deeper indents are its details."""
    out = []
    for indent, text in lines:
        room = (width - 2 * BOX_PAD - indent * INDENT) / (BOX_FONT * CHAR_W)
        for piece in wrap(text, room):
            out.append((BOX_PAD + indent * INDENT, piece, indent == 0))
    return out


def _box_height(wrapped):
    return 2 * BOX_PAD + len(wrapped) * LINE_H


def _draw_box(parts, x, y, width, wrapped, height):
    parts.append(
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}" rx="3" '
        f'fill="#ffffff" stroke="{INK}" stroke-width="1"/>'
    )
    for i, (dx, text, bold) in enumerate(wrapped):
        parts.append(
            _text(
                x + dx,
                y + BOX_PAD + (i + 1) * LINE_H - 4,
                text,
                size=BOX_FONT,
                weight="600" if bold else None,
            )
        )


def _arrow(parts, svg_id, x1, y1, x2, y2):
    parts.append(
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{INK}" '
        f'stroke-width="1.2" marker-end="url(#{svg_id}-arrow)"/>'
    )


def _line(parts, x1, y1, x2, y2):
    parts.append(
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{INK}" '
        f'stroke-width="1.2"/>'
    )


def consort_svg(diagram, *, svg_id="consort"):
    """The CONSORT flow diagram.

    diagram = {
      "title": str, "description": str,
      "assessed": lines, "excluded": lines, "randomized": lines,   # the enrolment boxes
      "stages": [{"label": str, "boxes": [lines or None, one per column]}],
      "notes": [str],                                              # printed under the diagram
    }
    where `lines` is [(indent, text)]. Every stage has the same number of columns; a None box
    lets the column's line run through that stage.
    """
    width, margin, col_gap = 980, 20, 40
    # A trial still without arms has no columns: lay it out as one.
    columns = max(len(diagram["stages"][0]["boxes"]) if diagram["stages"] else 1, 1)
    if columns == 1:
        col_w = 460
        col_x = [(width - col_w) / 2]
    else:
        col_w = (width - 2 * margin - (columns - 1) * col_gap) / columns
        col_x = [margin + i * (col_w + col_gap) for i in range(columns)]
    centre = width / 2

    bars, body = [], []  # drawn after the size is known; the stage bars underneath
    y = 16
    body.append(_text(margin, y + 14, diagram["title"], size=16, weight="600"))
    y += 30

    def stage_bar(label):
        nonlocal y
        bars.append(
            f'<rect x="{margin}" y="{_n(y)}" width="{width - 2 * margin}" height="{STAGE_H}" '
            f'fill="{FILL}" stroke="{RULE}" stroke-width="1"/>'
        )
        bars.append(_text(margin + 8, y + 17, label, size=13, weight="600", fill=MUTED))
        y += STAGE_H + 14

    # Enrolment: assessed, then the exclusions to the side, then randomized.
    stage_bar(_("Enrolment"))
    main_w = 340
    assessed = _box_lines(diagram["assessed"], main_w)
    h = _box_height(assessed)
    _draw_box(body, centre - main_w / 2, y, main_w, assessed, h)
    trunk_top = y + h
    y += h + 18
    side_x = centre + 50
    side_w = width - margin - side_x
    excluded = _box_lines(diagram["excluded"], side_w)
    h = _box_height(excluded)
    _draw_box(body, side_x, y, side_w, excluded, h)
    _arrow(body, svg_id, centre, y + min(h / 2, 30), side_x, y + min(h / 2, 30))
    y += h + 18
    randomized = _box_lines(diagram["randomized"], main_w)
    h = _box_height(randomized)
    _arrow(body, svg_id, centre, trunk_top, centre, y)
    _draw_box(body, centre - main_w / 2, y, main_w, randomized, h)
    y += h

    # Branch from "Randomized" to each column's first box.
    last_bottom = [None] * columns
    branch_y = y + 14
    _line(body, centre, y, centre, branch_y)
    if columns > 1:
        _line(body, col_x[0] + col_w / 2, branch_y, col_x[-1] + col_w / 2, branch_y)
    for i in range(columns):
        last_bottom[i] = branch_y
    y = branch_y + 16

    for stage in diagram["stages"]:
        bar_top = y
        stage_bar(stage["label"])
        wrapped = [_box_lines(b, col_w) if b is not None else None for b in stage["boxes"]]
        heights = [_box_height(w) for w in wrapped if w is not None]
        row_h = max(heights, default=0)
        for i, w in enumerate(wrapped):
            cx = col_x[i] + col_w / 2
            if w is None:
                continue
            # The column's line runs down from its last box, across the stage bar.
            _arrow(body, svg_id, cx, last_bottom[i], cx, y)
            h = _box_height(w)
            _draw_box(body, col_x[i], y, col_w, w, h)
            last_bottom[i] = y + h
        y += row_h + GAP if row_h else 0
        if not row_h:
            y = bar_top + STAGE_H + 14

    y += 4
    for note in diagram.get("notes", ()):
        for piece in wrap(note, (width - 2 * margin) / (12 * CHAR_W)):
            y += 16
            body.append(_text(margin, y, piece, size=12, fill=MUTED))
    height = int(y + 20)

    parts = _open(svg_id, width, height, diagram["title"], diagram["description"])
    parts.append(
        f'<defs><marker id="{svg_id}-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker></defs>'
    )
    # Stage bars first, so the column lines that cross them stay visible.
    parts += bars + body
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --- Line chart (recruitment) -----------------------------------------------------------------


def line_chart(
    x_labels, series, *, title, description, target=None, target_label="", svg_id="lines"
):
    """Lines over evenly spaced x labels.

    series = [{"label": str, "values": [number per x label], "strong": bool}]; a strong series
    (e.g. the total) is drawn thick and black. `target` draws a horizontal dashed rule."""
    width, height = 820, 380
    left, right, top, bottom = 56, width - 200, 44, height - 56
    parts = _open(svg_id, width, height, title, description)
    parts.append(_text(left, 24, title, size=15, weight="600"))
    highest = max([v for s in series for v in s["values"]] + [target or 0, 1])
    ticks = nice_ticks(highest)
    y_max = ticks[-1]

    def ypos(v):
        return bottom - (bottom - top) * v / y_max

    n = len(x_labels)

    def xpos(i):
        return (left + right) / 2 if n <= 1 else left + (right - left) * i / (n - 1)

    for t in ticks:
        parts.append(
            f'<line x1="{left}" y1="{_n(ypos(t))}" x2="{right}" y2="{_n(ypos(t))}" '
            f'stroke="{GRID if t else RULE}" stroke-width="1"/>'
        )
        parts.append(_text(left - 6, ypos(t) + 4, t, size=11, anchor="end", fill=MUTED))
    parts.append(
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="{RULE}" stroke-width="1"/>'
    )
    # At most about ten x labels; the last one always, in place of a neighbour too close to it.
    step = max(1, math.ceil(n / 10))
    shown = list(range(0, n, step))
    if shown and shown[-1] != n - 1:
        if n - 1 - shown[-1] < step / 2 and len(shown) > 1:
            shown.pop()
        shown.append(n - 1)
    for i in shown:
        parts.append(
            f'<line x1="{_n(xpos(i))}" y1="{bottom}" x2="{_n(xpos(i))}" '
            f'y2="{bottom + 4}" stroke="{RULE}" stroke-width="1"/>'
        )
        parts.append(_text(xpos(i), bottom + 18, x_labels[i], size=11, anchor="middle", fill=MUTED))
    if not n:
        parts.append(_text(left + 12, bottom - 12, _("Nobody randomized yet."), fill=MUTED))

    if target:
        ty = ypos(target)
        parts.append(
            f'<line x1="{left}" y1="{_n(ty)}" x2="{right}" y2="{_n(ty)}" stroke="{PALETTE[5]}" '
            f'stroke-width="2" stroke-dasharray="10 5"/>'
        )
        parts.append(
            _text(right - 4, ty - 6, target_label or f"Target {target}", size=12, anchor="end")
        )

    legend_y = top
    colour_index = 0
    for s in series:
        if s.get("strong"):
            colour, dash, stroke_w = INK, "", 3
        else:
            colour = PALETTE[colour_index % len(PALETTE)]
            dash = DASHES[colour_index % len(DASHES)]
            stroke_w = 2
            colour_index += 1
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        points = " ".join(f"{_n(xpos(i))},{_n(ypos(v))}" for i, v in enumerate(s["values"]))
        if len(s["values"]) > 1:
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" '
                f'stroke-width="{stroke_w}"{dash_attr} stroke-linejoin="round"/>'
            )
        if s["values"] and len(s["values"]) <= 36:
            for i, v in enumerate(s["values"]):
                parts.append(
                    f'<circle cx="{_n(xpos(i))}" cy="{_n(ypos(v))}" r="{stroke_w + 0.5}" '
                    f'fill="{colour}"/>'
                )
        last = s["values"][-1] if s["values"] else 0
        parts.append(
            f'<line x1="{right + 16}" y1="{legend_y}" x2="{right + 44}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="{stroke_w}"{dash_attr}/>'
        )
        parts.append(
            _text(right + 50, legend_y + 4, fit(f"{s['label']} ({last})", 140, 12), size=12)
        )
        legend_y += 20
    if target:
        parts.append(
            f'<line x1="{right + 16}" y1="{legend_y}" x2="{right + 44}" y2="{legend_y}" '
            f'stroke="{PALETTE[5]}" stroke-width="2" stroke-dasharray="10 5"/>'
        )
        parts.append(
            _text(right + 50, legend_y + 4, _("Target (%(target)s)") % {"target": target}, size=12)
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --- Horizontal bars --------------------------------------------------------------------------


def stacked_bars(rows, categories, *, title, description, svg_id="stacked", colours=PALETTE):
    """One horizontal bar per row, split into the categories' counts.

    rows = [{"label": str, "values": {category key: count}}]; categories = [(key, label)];
    `colours` (of PALETTE, in the categories' order) when their meaning suggests some (done in
    green)."""
    width, label_w, right_pad = 820, 220, 60
    bar_h, row_gap, top = 26, 14, 76
    height = top + len(rows) * (bar_h + row_gap) + 20
    parts = _open(svg_id, width, height, title, description)
    parts.append(_text(16, 24, title, size=15, weight="600"))
    # Legend: one line of swatches under the title.
    x = 16
    for i, (_code, label) in enumerate(categories):
        colour = colours[i % len(colours)]
        parts.append(
            f'<rect x="{_n(x)}" y="38" width="14" height="14" fill="{colour}" '
            f'stroke="{INK}" stroke-width="0.5"/>'
        )
        parts.append(_text(x + 19, 50, label, size=12))
        x += 19 + len(label) * 12 * CHAR_W + 18
    most = max([sum(r["values"].values()) for r in rows] + [1])
    span = width - label_w - right_pad
    y = top
    for row in rows:
        parts.append(_text(label_w - 8, y + 17, fit(row["label"], label_w - 16, 13), anchor="end"))
        x = label_w
        for i, (key, label) in enumerate(categories):
            count = row["values"].get(key, 0)
            if not count:
                continue
            w = span * count / most
            colour = colours[i % len(colours)]
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{bar_h}" '
                f'fill="{colour}" stroke="#ffffff" stroke-width="1">'
                f"<title>{_e(row['label'])}: {_e(label)} {count}</title></rect>"
            )
            if w >= 8 * len(str(count)) + 6:
                ink = "#ffffff" if colour in ("#0072B2", "#009E73", "#D55E00") else INK
                parts.append(_text(x + w / 2, y + 18, count, size=12, anchor="middle", fill=ink))
            x += w
        total = sum(row["values"].values())
        parts.append(_text(x + 6, y + 18, total, size=12, fill=MUTED))
        y += bar_h + row_gap
    if not rows:
        parts.append(_text(label_w, top + 18, _("Nothing to show yet."), fill=MUTED))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def value_bars(
    rows,
    *,
    title,
    description,
    low,
    high,
    ticks,
    fmt,
    tick_fmt=None,
    rules=(),
    svg_id="bars",
    empty=NO_DATA,
):
    """One horizontal bar per row from `low` to its value (None: `empty` is written instead).

    rows = [{"label": str, "value": number or None, "note": str}]; `rules` are (value, label)
    vertical reference lines (e.g. the lowest score of each fidelity band)."""
    width, label_w, right_pad = 820, 260, 110
    bar_h, row_gap = 20, 10
    top = 76 if len(rules) > 1 else 60
    height = top + len(rows) * (bar_h + row_gap) + 36
    parts = _open(svg_id, width, height, title, description)
    parts.append(_text(16, 24, title, size=15, weight="600"))
    span = width - label_w - right_pad
    bottom = top + len(rows) * (bar_h + row_gap)
    tick_fmt = tick_fmt or fmt

    def xpos(v):
        return label_w + span * (float(v) - low) / (high - low)

    for t in ticks:
        parts.append(
            f'<line x1="{_n(xpos(t))}" y1="{top - 6}" x2="{_n(xpos(t))}" y2="{_n(bottom)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(_text(xpos(t), bottom + 16, tick_fmt(t), size=11, anchor="middle", fill=MUTED))
    for i, (value, label) in enumerate(rules):
        # Labels of neighbouring rules on alternate lines, so close ones do not overlap.
        label_y = top - 16 - 12 * (i % 2)
        parts.append(
            f'<line x1="{_n(xpos(value))}" y1="{_n(label_y + 2)}" x2="{_n(xpos(value))}" '
            f'y2="{_n(bottom)}" stroke="{PALETTE[5]}" stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
        parts.append(_text(xpos(value) + 3, label_y, label, size=11, fill=MUTED))
    y = top
    for row in rows:
        parts.append(_text(label_w - 8, y + 15, fit(row["label"], label_w - 16, 13), anchor="end"))
        value = row["value"]
        if value is None:
            parts.append(_text(label_w + 4, y + 15, empty, size=12, fill=MUTED))
        else:
            w = max(xpos(value) - label_w, 0)
            parts.append(
                f'<rect x="{label_w}" y="{_n(y)}" width="{_n(w)}" height="{bar_h}" '
                f'fill="{PALETTE[0]}"><title>{_e(row["label"])}: {_e(fmt(value))}</title></rect>'
            )
            note = f"{fmt(value)} {row.get('note', '')}".strip()
            parts.append(_text(label_w + w + 6, y + 15, note, size=12))
        y += bar_h + row_gap
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
