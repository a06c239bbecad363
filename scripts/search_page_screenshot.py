"""Screenshot the search page on a video index after a query, in Debian's Chromium (the README's picture).

python scripts/search_page_screenshot.py s5vh-output/video-demo/index QUERY.mp4 docs/search-page.png
"""

from __future__ import annotations

import argparse
import shutil
import socket


def main() -> None:
    from playwright.sync_api import sync_playwright

    from s5vh_hf.app.collection import SearchCollection
    from s5vh_hf.app.page import launch_search_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index")
    parser.add_argument("query")
    parser.add_argument("out")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    page = launch_search_page(SearchCollection.from_index(args.index), port=port, block=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": args.width, "height": args.height})
        tab.goto(f"http://127.0.0.1:{port}/")
        tab.set_input_files("#upload input[type=file]", args.query)
        tab.wait_for_timeout(1000)
        tab.click("#search-upload")
        tab.wait_for_selector("#results .caption-label", timeout=60000)
        tab.query_selector_all("#results .thumbnail-item")[1].click()
        tab.wait_for_function("(() => { const v = document.querySelector('#player video'); "
                              "return v && v.readyState >= 2; })()", timeout=60000)  # fmt: skip
        tab.screenshot(path=args.out, full_page=True)
        browser.close()
    page.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
