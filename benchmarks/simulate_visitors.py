"""Seeded visitors for a running gallery app: they browse, like, and click recommended works over HTTP.

The app records every recommended list it shows and every click on one (impressions.csv next to the gallery's
source files), and the likes (likes.csv), so after a simulation the online_metrics asset has data to show:

    CURATORNET_LIKES_PER_MINUTE=1000 make serve &   # every simulated visitor comes from 127.0.0.1
    python benchmarks/simulate_visitors.py --url http://127.0.0.1:8000 --visitors 30 --seed 0
    curatornet materialize --job curatornet_online_metrics

Each visitor opens the gallery, likes a few works at random, then looks at their "For you" list and at the
"more like this" lists of the works they open. They click a recommended work with a chance that falls with its
position (``click_chance / position ** 0.7``, as real lists are clicked mostly at the top) and like a clicked
work with ``like_chance``. The same seed, app and snapshot give the same visits.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar

_CARD = re.compile(r'data-artwork="([^"]+)"')
_RECOMMENDED = re.compile(r'href="/artworks/([^"?]+)\?from=(\w+)&amp;pos=(\d+)"')


@dataclass
class Summary:
    visitors: int = 0
    pages: int = 0
    likes: int = 0
    clicks: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _Visitor:
    """One browser: keeps the app's visitor cookie."""

    def __init__(self, url: str, summary: Summary):
        self.url = url
        self.summary = summary
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, path: str) -> str:
        self.summary.pages += 1
        with self.opener.open(urllib.request.Request(self.url + path, headers={"Accept": "text/html"}), timeout=60) as r:
            return r.read().decode("utf-8")

    def like(self, artwork_id: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/artworks/{artwork_id}/like", method="POST", headers={"Accept": "application/json"}
        )
        with self.opener.open(request, timeout=60) as response:
            json.loads(response.read())
        self.summary.likes += 1


def recommended_links(page: str) -> list[tuple[str, str, int]]:
    """(artwork id, list, position) of each recommended work a page links to, once each, in page order."""
    seen: dict[tuple[str, str, int], None] = {}
    for artwork, kind, position in _RECOMMENDED.findall(page):
        seen.setdefault((html.unescape(artwork), kind, int(position)), None)
    return list(seen)


def simulate(
    url: str, visitors: int, seed: int, first_likes: int = 2, click_chance: float = 0.5, like_chance: float = 0.3,
    depth: int = 2,
) -> Summary:
    """Run ``visitors`` seeded visits against the app at ``url``; what they did."""
    rng = random.Random(seed)
    summary = Summary()
    for _ in range(visitors):
        visitor = _Visitor(url, summary)
        summary.visitors += 1
        catalogue = list(dict.fromkeys(html.unescape(a) for a in _CARD.findall(visitor.get("/"))))
        for artwork_id in rng.sample(catalogue, min(first_likes, len(catalogue))):
            visitor.like(artwork_id)
        page = visitor.get("/")  # now with a "For you" list
        for _ in range(depth):
            clicked = [
                (artwork, kind, position) for artwork, kind, position in recommended_links(page)
                if rng.random() < click_chance / position**0.7
            ]
            if not clicked:
                break
            artwork, kind, position = clicked[0]
            summary.clicks += 1
            page = visitor.get(f"/artworks/{urllib.request.quote(artwork)}?from={kind}&pos={position}")
            if rng.random() < like_chance:
                visitor.like(artwork)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running app")
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--click-chance", type=float, default=0.5, help="chance of a click at position 1")
    parser.add_argument("--like-chance", type=float, default=0.3, help="chance of a like after a click")
    args = parser.parse_args(argv)
    try:
        summary = simulate(args.url.rstrip("/"), args.visitors, args.seed, click_chance=args.click_chance,
                           like_chance=args.like_chance)
    except (urllib.error.URLError, OSError) as error:
        print(f"simulate_visitors: the app at {args.url} did not answer as expected ({error})", file=sys.stderr)
        return 1
    print(json.dumps(summary.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
