#!/usr/bin/env python3
"""Check the built documentation site for broken internal links and anchors.

    python tools/check_links.py [_docs]        # exit 1 and list them if any internal link or #anchor points nowhere

Every `href` / `src` of every HTML page that is not an outside address (http, https, mailto, data, javascript) must
name a file of the site, and a `#fragment` must be an `id` (or a legacy `name`) on the page it points to. Standard
library only: it runs wherever the docs are built.
"""
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL = ('http', 'https', 'mailto', 'data', 'javascript', 'tel', 'ftp')


class _Page(HTMLParser):
    "The ids and the links (href/src) of one HTML page."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ('id',) + (('name',) if tag == 'a' else ()):
            if a.get(k): self.ids.add(a[k])
        for k in ('href', 'src'):
            if a.get(k) is not None and not (tag == 'link' and a.get('rel') in ('preconnect', 'dns-prefetch')): self.links.append(a[k])


def _parse(p: Path) -> _Page:
    page = _Page(); page.feed(p.read_text(encoding='utf-8', errors='replace')); return page


def check(site: Path) -> list[str]:
    "The broken internal links of the site, as 'page: link (why)'."
    pages = {p.resolve(): _parse(p) for p in sorted(site.rglob('*.html'))}
    bad = []
    for p, page in pages.items():
        for link in page.links:
            u = urlsplit(link.strip())
            if u.scheme in EXTERNAL or u.netloc or link.startswith('//'): continue
            target = p if not u.path else (p.parent / unquote(u.path)).resolve()
            if u.path.endswith('/') or target.is_dir(): target = target / 'index.html'
            rel = p.relative_to(site.resolve())
            if not target.exists():
                bad.append(f"{rel}: {link} (no file {target.relative_to(site.resolve()) if target.is_relative_to(site.resolve()) else target})")
                continue
            frag = unquote(u.fragment)
            if frag and target.suffix == '.html':
                ids = pages[target].ids if target in pages else _parse(target).ids
                if frag not in ids: bad.append(f"{rel}: {link} (no id {frag!r} on {target.name})")
    return bad


if __name__ == '__main__':
    site = Path(sys.argv[1] if len(sys.argv) > 1 else '_docs')
    if not site.is_dir(): sys.exit(f"{site}: no such folder (build the site first: nbdev-docs)")
    bad = check(site)
    n = len(list(site.rglob('*.html')))
    if bad:
        print(f"{len(bad)} broken internal link(s) in {n} pages:", *bad, sep='\n  ')
        sys.exit(1)
    print(f"{n} pages, 0 broken internal links or anchors")
