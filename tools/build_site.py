"""The static edition of the course: the committed, executed notebooks as a small HTML site.

    python tools/build_site.py                      # notebooks/*.ipynb -> build/site/ (make site)
    python tools/build_site.py --notebooks DIR --out DIR

Writes index.html (the contents: each notebook's title, from its first heading, and its learning
objectives) and one page per notebook (its text, code and outputs: figures, the derivations' LaTeX)
with links to the previous and the next notebook and to the contents. Nothing is executed: the
pages show the outputs committed in the notebooks.

Readable offline in any browser, without a kernel and without a network: nothing on a page is
loaded from elsewhere.
- Math: MathJax 3 (tex-svg-full.js, one file that holds every TeX extension and draws glyphs as
  SVG paths, so no font files), copied once into mathjax/ from the django-static-mathjax package,
  a plain copy of MathJax's release (installed by `pip install -e .[dev]`).
- Style: JupyterLab's notebook CSS (from nbconvert's lab template) and the code highlighting, once,
  in assets/notebook.css; figures are data URIs inside their page, as nbconvert writes them.
- Widgets: a widget output that carries a text/html version of itself (scratchnet.widgets'
  comparison does: the wipe in plain JavaScript) is shown as that; any other widget output
  (a progress bar, say) as a snapshot of the state the notebook saved, since nothing can run
  its Python side.
"""
from __future__ import annotations

import argparse
import copy
import html
import importlib.util
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2
import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

ROOT = Path(__file__).resolve().parents[1]
MARKER = ".scratchnet-site"  # a folder holding it was written here, and may be replaced
MATHJAX_FILE = "tex-svg-full.js"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
NOTEBOOK_NAME = re.compile(r"\d{2}_[A-Za-z0-9_]+\.ipynb")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
OBJECTIVES = re.compile(r"^learning objectives\b", re.IGNORECASE)

MATHJAX_CONFIG = """window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
        processEscapes: true, processEnvironments: true, tags: "ams"},
  options: {enableMenu: false},
  svg: {fontCache: "global"}
};"""

SITE_CSS = """
/* the static site: page frame and navigation (the notebook itself is styled by JupyterLab's CSS) */
body { margin: 0; background: var(--jp-layout-color0, #fff); }
main { max-width: 1100px; margin: 0 auto; padding: 8px 24px 24px; }
a.anchor-link { display: none; }
.jp-InputArea, .jp-InputArea-editor { overflow: hidden; }
.jp-Collapser { display: none; }
.jp-OutputArea-output pre { line-height: inherit; font-family: inherit; }
.jp-RenderedText pre { color: var(--jp-content-font-color1); font-size: var(--jp-code-font-size); }
.cm-editor.cm-s-jupyter .highlight pre { padding: var(--jp-code-padding) 4px; margin: 0;
  font-family: inherit; font-size: inherit; line-height: inherit; color: inherit; }
nav.site-nav { display: flex; gap: 16px; justify-content: space-between; align-items: baseline;
  max-width: 1100px; margin: 0 auto; padding: 10px 24px; font: 14px/1.4 system-ui, sans-serif;
  border-bottom: 1px solid #ddd; }
nav.site-nav.bottom { border-bottom: 0; border-top: 1px solid #ddd; }
nav.site-nav a { text-decoration: none; color: #1a5fb4; }
nav.site-nav a:hover { text-decoration: underline; }
nav.site-nav .prev, nav.site-nav .next { flex: 1; }
nav.site-nav .next { text-align: right; }
.site-contents { max-width: 900px; margin: 0 auto; padding: 16px 24px 40px;
  font: 15px/1.55 system-ui, sans-serif; color: #222; }
.site-contents ol.notebooks { list-style: none; padding: 0; }
.site-contents ol.notebooks > li { margin: 0 0 22px; padding: 12px 16px; border: 1px solid #e3e3e3;
  border-radius: 6px; }
.site-contents ol.notebooks > li > a { font-size: 18px; font-weight: 600; color: #1a5fb4;
  text-decoration: none; }
.site-contents .summary { margin-top: 6px; }
.site-contents .summary p { margin: 4px 0; }
.site-contents .summary ol, .site-contents .summary ul { margin: 4px 0; }
.widget-snapshot { font-size: 13px; }
.widget-snapshot progress { width: 160px; vertical-align: middle; }
.widget-snapshot-note { margin-top: 4px; font-style: italic; color: #666; }
"""

PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head -%}
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{{ resources.site.title | e }}</title>
<link rel="stylesheet" href="assets/notebook.css">
<script>{{ resources.site.mathjax_config }}</script>
<script id="MathJax-script" async src="mathjax/{{ resources.site.mathjax_file }}"></script>
{%- endblock html_head -%}
{%- block body_header -%}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{{ resources.site.nav_top }}
<main>
{%- endblock body_header -%}
{%- block body_footer -%}
</main>
{{ resources.site.nav_bottom }}
</body>
{%- endblock body_footer -%}
"""


@dataclass
class Page:
    """One notebook's page: its file names, its title and the HTML of its summary."""
    notebook: Path
    title: str
    summary_html: str

    @property
    def href(self) -> str:
        return self.notebook.with_suffix(".html").name


def plain(markdown: str) -> str:
    """The text of a one-line piece of Markdown (a heading): emphasis and code marks removed."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return re.sub(r"(\*\*|__|\*|_(?=\w)|(?<=\w)_|`)", "", text).strip()


def title_and_summary(nb: nbformat.NotebookNode, name: str) -> tuple[str, str]:
    """(title, summary Markdown): the title from the first heading, the summary the text under
    'Learning objectives' (before the next heading), else the first paragraph after the title."""
    markdown = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    headings = list(HEADING.finditer(markdown))
    if not headings:
        raise ValueError(f"{name}: no heading in any Markdown cell, so no title for the contents")
    title = plain(headings[0].group(2))
    for k, heading in enumerate(headings):
        if OBJECTIVES.match(plain(heading.group(2))):
            end = headings[k + 1].start() if k + 1 < len(headings) else len(markdown)
            return title, markdown[heading.end():end].strip()
    end = headings[1].start() if len(headings) > 1 else len(markdown)
    paragraphs = [p.strip() for p in markdown[headings[0].end():end].split("\n\n") if p.strip()]
    return title, paragraphs[0] if paragraphs else ""


CONTROLS = ("SliderModel", "DropdownModel", "SelectModel", "RadioButtonsModel", "ButtonModel",
            "ToggleButtonModel", "ToggleButtonsModel", "CheckboxModel", "TextModel", "PlayModel")
SNAPSHOT_NOTE = ("A saved view of an interactive widget: its controls need Python behind them. "
                 "Run the notebook in JupyterLab to use it.")


def widget_html(model_id: str, state: dict) -> tuple[str, bool]:
    """(HTML, has controls) of what a widget showed when its notebook was saved, drawn from the
    notebook's saved widget state: boxes as flex rows/columns, HTML and labels as text, progress
    bars as <progress>, images from their saved bytes, a control as its name and value."""
    model = state.get(model_id, {}).get("state", {})
    name = model.get("_model_name", "")
    description = model.get("description") or ""
    label = f"{html.escape(description)} " if description else ""
    if "children" in model:
        parts = [widget_html(c.removeprefix("IPY_MODEL_"), state) for c in model["children"]]
        column = name == "VBoxModel"
        inner = "".join(part for part, _ in parts)
        style = (f"display:flex;flex-direction:{'column' if column else 'row'};flex-wrap:wrap;"
                 f"gap:2px 12px;align-items:{'flex-start' if column else 'center'}")
        return f'<div style="{style}">{inner}</div>', any(c for _, c in parts)
    value = model.get("value")
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<span>{label}{value or ''}</span>", False
    if name in ("LabelModel", "TextModel", "TextareaModel"):
        return f"<span>{label}{html.escape(str(value or ''))}</span>", name != "LabelModel"
    if name in ("FloatProgressModel", "IntProgressModel"):
        low, high = float(model.get("min", 0)), float(model.get("max", 100))
        return (f'<span>{label}<progress max="{high - low:g}" value="{float(value or 0) - low:g}">'
                "</progress></span>"), False
    if name == "ImageModel":
        buffer = next((b for b in state[model_id].get("buffers", [])
                       if b.get("path") == ["value"] and b.get("encoding") == "base64"), None)
        kind = model.get("format", "png")
        if buffer is None or kind == "url":  # a URL would load from elsewhere: not shown
            return "", False
        size = "".join(f' {k}="{html.escape(str(model[k]))}"' for k in ("width", "height")
                       if model.get(k))
        return (f'<img alt="saved widget image" src="data:image/{html.escape(kind)};base64,'
                f'{buffer["data"]}"{size}>'), False
    if name.endswith(CONTROLS):
        if "_options_labels" in model:
            options, index = model["_options_labels"], model.get("index")
            value = options[index] if isinstance(index, int) and 0 <= index < len(options) else ""
        elif isinstance(value, list):
            value = " – ".join(str(v) for v in value)
        shown = "" if name.endswith("ButtonModel") else html.escape(str(value))
        return (f'<span style="border:1px solid #ccc;border-radius:3px;padding:0 6px">'
                f"{label}<b>{shown}</b></span>"), True
    return "", False


def static_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Copy of nb for a page without a kernel: a widget output shows its own text/html version if
    it has one, else a snapshot of its saved state (else its text/plain), and the notebook's
    widget state goes (nbconvert would load a widget manager from the web for it)."""
    nb = copy.deepcopy(nb)
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            view = data.pop(WIDGET_VIEW)
            if "text/html" in data:
                continue
            snapshot, controls = widget_html(view.get("model_id", ""), state)
            if snapshot:
                note = (f'<div class="widget-snapshot-note">{SNAPSHOT_NOTE}</div>'
                        if controls else "")
                data["text/html"] = f'<div class="widget-snapshot">{snapshot}{note}</div>'
    return nb


def local_links(page_html: str, names: set[str]) -> str:
    """Links to other notebooks of the series (03_x.ipynb#part) point at their pages."""
    def repl(match: re.Match) -> str:
        target, fragment = match.group(2), match.group(3) or ""
        name = Path(target).name
        if name in names:
            return f'{match.group(1)}"{Path(name).with_suffix(".html").name}{fragment}"'
        return match.group(0)
    return re.sub(r'(href=)"([^"#]*\.ipynb)(#[^"]*)?"', repl, page_html)


def nav(pages: list[Page], k: int, where: str) -> str:
    """The navigation bar of page k: previous, contents, next."""
    def link(page: Page, rel: str, text: str) -> str:
        return f'<a class="{rel}" rel="{rel}" href="{page.href}">{html.escape(text)}</a>'
    prev = link(pages[k - 1], "prev", f"← {pages[k - 1].title}") if k > 0 else ""
    nxt = link(pages[k + 1], "next", f"{pages[k + 1].title} →") if k + 1 < len(pages) else ""
    return (f'<nav class="site-nav {where}"><span class="prev">{prev}</span>'
            f'<a class="contents" rel="contents" href="index.html">Contents</a>'
            f'<span class="next">{nxt}</span></nav>')


def mathjax_source() -> Path:
    """MathJax's single-file TeX-to-SVG build, from the installed django-static-mathjax."""
    spec = importlib.util.find_spec("mathjax")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "static" / "mathjax" / "es5" / MATHJAX_FILE
        if path.is_file():
            return path
    raise SystemExit("build_site: MathJax not found; install the dev dependencies "
                     "(make setup, or pip install -e '.[dev]', which brings django-static-mathjax)")


def prepare(out: Path) -> None:
    """An empty out folder: a site written here before is replaced, anything else refused."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise SystemExit(f"build_site: {out} exists and is not a site written by this "
                             "script; choose another --out or remove it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by tools/build_site.py; replaced by the next build\n")


def contents_page(pages: list[Page], title: str) -> str:
    items = "\n".join(
        f'<li><a href="{p.href}">{html.escape(p.title)}</a>'
        f'<div class="summary">{p.summary_html}</div></li>' for p in pages)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="assets/notebook.css">
<script>{MATHJAX_CONFIG}</script>
<script id="MathJax-script" async src="mathjax/{MATHJAX_FILE}"></script>
</head>
<body>
<div class="site-contents">
<h1>{html.escape(title)}</h1>
<p>PyTorch's core, rebuilt from scratch, and a course that derives every line of it: the notebook
series with its outputs, to read without Jupyter. To run the code, do the exercises and drag the
widgets with Python behind them, open the notebooks in JupyterLab (<code>make lab</code>).</p>
<ol class="notebooks">
{items}
</ol>
</div>
</body>
</html>
"""


def build_site(notebooks: Path = ROOT / "notebooks", out: Path = ROOT / "build" / "site",
               title: str = "scratchnet: the course") -> list[Page]:
    """Write the site for notebooks/NN_*.ipynb into out; returns its pages in order."""
    paths = sorted(p for p in notebooks.glob("*.ipynb") if NOTEBOOK_NAME.fullmatch(p.name))
    if not paths:
        raise SystemExit(f"build_site: no notebooks named NN_name.ipynb in {notebooks}")
    loaded = [nbformat.read(p, as_version=4) for p in paths]
    pages = []
    for path, nb in zip(paths, loaded):
        heading, summary = title_and_summary(nb, path.name)
        pages.append(Page(path, heading, markdown2html_mistune(summary)))

    prepare(out)
    (out / "mathjax").mkdir()
    source = mathjax_source()
    shutil.copyfile(source, out / "mathjax" / MATHJAX_FILE)
    shutil.copyfile(source.parents[1] / "LICENSE", out / "mathjax" / "LICENSE")

    exporter = HTMLExporter(template_name="lab", template_file="site.html.j2",
                            extra_loaders=[jinja2.DictLoader({"site.html.j2": PAGE_TEMPLATE})],
                            exclude_anchor_links=True)
    names = {p.name for p in paths}
    highlight_css: list[str] = []
    for k, (page, nb) in enumerate(zip(pages, loaded)):
        site = {"title": page.title, "mathjax_config": MATHJAX_CONFIG,
                "mathjax_file": MATHJAX_FILE, "nav_top": nav(pages, k, "top"),
                "nav_bottom": nav(pages, k, "bottom")}
        body, resources = exporter.from_notebook_node(
            static_outputs(nb), resources={"site": site, "metadata": {"name": page.notebook.stem}})
        highlight_css = list(resources.get("inlining", {}).get("css", [])) or highlight_css
        (out / page.href).write_text(local_links(body, names), encoding="utf-8")

    lab_static = next(Path(p) / "static" for p in exporter.template_paths
                      if (Path(p) / "static" / "index.css").is_file() and Path(p).name == "lab")
    (out / "assets").mkdir()
    css = [(lab_static / "index.css").read_text(), (lab_static / "theme-light.css").read_text(),
           *highlight_css, SITE_CSS]
    # comments go: they name the web sites the colours came from, and nothing here links out
    css_text = re.sub(r"/\*.*?\*/", "", "\n".join(css), flags=re.DOTALL)
    (out / "assets" / "notebook.css").write_text(css_text, encoding="utf-8")
    (out / "index.html").write_text(contents_page(pages, title), encoding="utf-8")
    (out / "pages.json").write_text(json.dumps(
        [{"href": p.href, "title": p.title, "notebook": p.notebook.name} for p in pages],
        indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks",
                        help="folder of the executed NN_name.ipynb notebooks (default notebooks/)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site",
                        help="folder to write the site into (default build/site/)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pages = build_site(args.notebooks, args.out)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {len(pages)} pages and the contents to {args.out}/index.html "
          f"({size / 2**20:.1f} MiB, {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
