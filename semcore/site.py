"""A static site of a profile's executed notebooks, and its check in a real browser.

`make html` writes outputs/<profile>/site/: one page per executed notebook (nbconvert's lab
template; images are embedded, so a page is one file) and an index that maps each notebook to
the paper's sections, tables and figures. That map is the README's "Notebooks and the paper"
table, read from the README, so the two never disagree. Each page leaves out the parameters
cell (every setting declared as None) but keeps papermill's injected cell, which shows what the
run set, and drops progress-bar widgets, whose rendering needs JavaScript from the network.

`make check-html` opens the index and every page it links to in Debian's Chromium, driven by
Playwright, and fails on an image the browser could not decode or a link to a missing file or
anchor. A browser, not an HTML parser, because what matters is what the browser shows.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from semcore import paths

README_SECTION = "## Notebooks and the paper"
WIDGET = "application/vnd.jupyter.widget-view+json"
CHROMIUM = "/usr/bin/chromium"
STYLE = ("body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;"
         "vertical-align:top;text-align:left}code{font-size:90%}")


def paper_table(readme: Path = paths.REPO / "README.md") -> list[str]:
    """The README's notebook ↔ paper table, as its markdown lines."""
    text = readme.read_text()
    if README_SECTION not in text:
        raise ValueError(f"{readme.name} has no section {README_SECTION!r} to map notebooks to the paper")
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def index_page(profile: str, pages: list[str]) -> str:
    """The index: the paper table with each executed notebook's name linked to its page."""
    import mistune

    rows = []
    for line in paper_table():
        notebook = re.match(r"\| `(\d\d_\w+)` \|", line)
        if notebook and notebook.group(1) in pages:
            stem = notebook.group(1)
            line = line.replace(f"`{stem}`", f"[{stem}]({stem}.html)", 1)
        rows.append(line)
    table = mistune.create_markdown(plugins=["table"])("\n".join(rows))
    name = html.escape(profile)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>semcore: {name}"
            f"</title><style>{STYLE}</style></head><body>\n<h1>semcore walkthrough: the "
            f"<code>{name}</code> profile</h1>\n<p>The executed notebooks of <code>make reproduce "
            f"PROFILE={name}</code>, each beside the part of the SemCORE paper it reproduces.</p>\n"
            f"{table}</body></html>\n")


def notebook_page(executed: Path, neighbours: tuple[str | None, str | None]) -> str:
    """One executed notebook as HTML, with links to the index and the previous and next page."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor, enabled=True)  # a bar's last state only
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": executed.stem, "path": str(executed.parent)}})
    links = ["<a href='index.html'>index</a>"] + [
        f"<a href='{n}.html'>{label} {n}</a>" for n, label in zip(neighbours, ("←", "→")) if n]
    nav = f"<nav style='font:14px system-ui;padding:.5rem 1rem'>{' · '.join(links)}</nav>"
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)


def build(profile: str) -> Path:
    """Write outputs/<profile>/site/ from the profile's executed notebooks."""
    from semcore import cache

    outputs = paths.outputs(profile)
    executed = sorted(outputs.glob("[0-9][0-9]_*.ipynb"))
    if not executed:
        raise SystemExit(f"no executed notebooks in outputs/{profile}/: run `make reproduce "
                         f"PROFILE={profile}` first")
    site = outputs / "site"
    names = [e.stem for e in executed]
    for i, e in enumerate(executed):
        neighbours = (names[i - 1] if i else None, names[i + 1] if i + 1 < len(names) else None)
        cache.atomic_write_text(site / f"{e.stem}.html", notebook_page(e, neighbours))
    cache.atomic_write_text(site / "index.html", index_page(profile, names))
    return site


def check(index: Path, chromium: str = CHROMIUM) -> list[str]:
    """Open the index and every page it links to in headless Chromium; return what is broken:
    images the browser did not decode, links to missing files or anchors. Requests that leave
    the site (CDN scripts, web links) are blocked, so the check runs offline."""
    from playwright.sync_api import sync_playwright

    if not Path(chromium).is_file():
        raise SystemExit(f"no Chromium at {chromium}: install Debian's package (apt-get install chromium)")
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        page = browser.new_page()
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                   else route.abort())

        def failed(request) -> None:
            if request.url.startswith("file:"):
                problems.append(f"failed to load {request.url}")
        page.on("requestfailed", failed)
        todo, seen = [index.resolve()], set()
        while todo:
            current = todo.pop(0)
            if current in seen:
                continue
            seen.add(current)
            page.goto(current.as_uri(), wait_until="load")
            for src in page.eval_on_selector_all(
                    "img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"):
                problems.append(f"{current.name}: broken image {src[:80]}")
            for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
                url = urlparse(href)
                if url.scheme != "file":
                    continue  # a web link: not checked offline
                target = Path(unquote(url.path))
                if not target.is_file():
                    problems.append(f"{current.name}: link to missing {target.name}")
                elif target == current and url.fragment and not page.evaluate(  # as browsers do:
                        "ids => ids.some(id => document.getElementById(id) !== null)",  # raw or decoded
                        [url.fragment, unquote(url.fragment)]):
                    problems.append(f"{current.name}: link to missing anchor #{url.fragment}")
                elif current == index.resolve() and target.suffix == ".html":
                    todo.append(target)
        browser.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--check", action="store_true", help="check the built site in Chromium")
    args = parser.parse_args()
    site = paths.outputs(args.profile) / "site"
    if not args.check:
        site = build(args.profile)
        print(f"site in outputs/{args.profile}/site/index.html")
        return
    if not (site / "index.html").is_file():
        raise SystemExit(f"no site in outputs/{args.profile}/site/: run `make html PROFILE={args.profile}` first")
    problems = check(site / "index.html")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        raise SystemExit(f"{len(problems)} broken image(s) or link(s) in outputs/{args.profile}/site/")
    print(f"outputs/{args.profile}/site/: every image and link of the index and its pages works")


if __name__ == "__main__":
    main()
