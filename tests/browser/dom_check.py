"""Opens an evl report page in headless Chromium (the system's, through Playwright; no browser
download) at a desktop and a narrow width, takes a screenshot of each, and prints one JSON
object of what the page's DOM shows, for tests/report_page.rs to assert on.

usage: dom_check.py CHROMIUM PAGE.html OUT_DIR

Every request the page makes is logged; the page may load only itself. Scripts are allowed
(Chromium's default), so an injected script would run and set window.pwned: the test checks
that it did not.
"""

import json
import pathlib
import sys

from playwright.sync_api import sync_playwright

WIDTHS = {"desktop": (1280, 900), "narrow": (390, 844)}


def inspect(page):
    return page.evaluate(
        """() => {
        const text = (sel) => Array.from(document.querySelectorAll(sel)).map(e => e.textContent.trim());
        return {
            title: document.title,
            verdict_word: document.querySelector('#verdict-word')?.textContent.trim() ?? null,
            verdict_line: document.querySelector('#verdict-line')?.textContent.trim() ?? null,
            as_of: document.querySelector('#as-of')?.textContent.trim() ?? null,
            blocker_codes: text('.blocker-code'),
            subjects: Array.from(document.querySelectorAll('.group[data-subject]')).map(e => e.dataset.subject),
            unblock: text('.blocker .clear'),
            actions: Array.from(document.querySelectorAll('#actions tr.action')).map(r => Array.from(r.cells).map(c => c.textContent.trim())),
            out_of_scope: text('tr.wl-out td.workload'),
            in_scope: text('tr.wl-in td.workload'),
            annotation_texts: text('.annotation-text'),
            replay_commands: text('pre.replay'),
            checkpoints: text('.disposition .checkpoint'),
            deadlines: text('tr.deadline'),
            svg_count: document.querySelectorAll('svg').length,
            lineage_edges: text('#lineage svg g.edge text'),
            lineage_nodes: document.querySelectorAll('#lineage svg g.node').length,
            timeline_windows: document.querySelectorAll('#timeline svg g.window').length,
            timeline_flips: text('#timeline svg g.marker.flip text'),
            scripts: document.querySelectorAll('script').length,
            images: document.querySelectorAll('img').length,
            elements_with_onerror: document.querySelectorAll('[onerror]').length,
            pwned: typeof window.pwned === 'undefined' ? null : String(window.pwned),
            body_text: document.body.innerText,
            scroll_width: document.documentElement.scrollWidth,
            client_width: document.documentElement.clientWidth,
        };
    }"""
    )


def main():
    chromium, page_path, out_dir = sys.argv[1], pathlib.Path(sys.argv[2]).resolve(), pathlib.Path(sys.argv[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    url = page_path.as_uri()
    result = {"url": url, "views": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for name, (w, h) in WIDTHS.items():
            context = browser.new_context(viewport={"width": w, "height": h})
            page = context.new_page()
            requests, console = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: console.append(m.text))
            page.goto(url, wait_until="load")
            page.wait_for_timeout(300)
            shot = out_dir / f"report-{name}.png"
            page.screenshot(path=str(shot), full_page=False)
            view = inspect(page)
            view["requests"] = requests
            view["console"] = console
            view["screenshot"] = str(shot)
            view["screenshot_bytes"] = shot.stat().st_size
            result["views"][name] = view
            context.close()
        browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
