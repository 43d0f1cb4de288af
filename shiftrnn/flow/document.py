"""A report as blocks (headings, paragraphs, tables, images, code), rendered to Markdown and
to a self-contained HTML page (images embedded as base64 PNGs: it opens offline)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

__all__ = ["Doc", "fmt", "fmt_bpc"]


def fmt(v, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:  # NaN
            return "n/a"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return str(v)


def fmt_bpc(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


class Doc:
    """A document as blocks, rendered to Markdown and to HTML."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, head: list[str], rows: list[list], align: str | None = None):
        self.blocks.append(("table", head, [[fmt(c) if not isinstance(c, str) else c
                                             for c in r] for r in rows], align))

    def img(self, rel: str, alt: str):
        self.blocks.append(("img", rel, alt))

    def code(self, text: str, lang: str = ""):
        self.blocks.append(("code", text, lang))

    def bullets(self, items: list[str]):
        self.blocks.append(("ul", items))

    # ------------------------------------------------------------------ markdown
    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                head, rows, align = b[1], b[2], b[3] or ("l" + "r" * (len(b[1]) - 1))
                out.append("| " + " | ".join(head) + " |")
                out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
                out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |"
                        for r in rows]
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})")
            elif b[0] == "code":
                out.append(f"```{b[2]}\n{b[1].rstrip()}\n```")
            elif b[0] == "ul":
                out += [f"- {i}" for i in b[1]]
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    # ---------------------------------------------------------------------- html
    def html(self, title: str, folder: Path) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{_inline(b[1])}</p>")
            elif b[0] == "table":
                head, rows, align = b[1], b[2], b[3] or ("l" + "r" * (len(b[1]) - 1))
                cls = [' class="r"' if a == "r" else "" for a in align]
                t = ["<table>", "<tr>" + "".join(f"<th{c}>{_inline(h)}</th>"
                                                 for h, c in zip(head, cls, strict=True))
                     + "</tr>"]
                t += ["<tr>" + "".join(f"<td{c}>{_inline(str(x))}</td>"
                                       for x, c in zip(r, cls, strict=True)) + "</tr>"
                      for r in rows]
                body.append("\n".join(t) + "\n</table>")
            elif b[0] == "img":
                data = base64.b64encode((folder / b[1]).read_bytes()).decode()
                body.append(f'<figure><img alt="{html.escape(b[2])}" '
                            f'src="data:image/png;base64,{data}"><figcaption>'
                            f"{html.escape(b[2])}</figcaption></figure>")
            elif b[0] == "code":
                body.append(f"<pre><code>{html.escape(b[1])}</code></pre>")
            elif b[0] == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
        return _HTML.format(title=html.escape(title), body="\n".join(body))


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 62em;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }}
h1 {{ border-bottom: 2px solid #2a7ab0; padding-bottom: .2em; }}
h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .15em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; margin: .6em 0; }}
th, td {{ border: 1px solid #ccc; padding: .25em .6em; }}
th {{ background: #eef3f7; }}
td.r, th.r {{ text-align: right; font-variant-numeric: tabular-nums; }}
code {{ background: #f3f3f3; padding: 0 .2em; }}
pre {{ background: #f6f6f6; padding: .7em; overflow-x: auto; }}
figure {{ margin: 1em 0; }} figure img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ color: #555; font-size: .9em; }}
</style></head><body>
{body}
</body></html>
"""


def _inline(text: str) -> str:
    """Markdown-lite inline markup to HTML: `code`, **bold**, [text](link)."""
    out = html.escape(str(text), quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)
    return out
