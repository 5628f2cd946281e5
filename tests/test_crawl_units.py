"""The crawler's single-job pieces without a browser: retries, politeness, robots.txt,
the frontier in the catalog and the static server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from catalog import Catalog, Config, Workspace
from scraper.cli.crawl import move_origin
from scraper.engine import Engine
from scraper.frontier import Entry, Frontier
from scraper.politeness import Politeness
from scraper.pool import Job
from scraper.response import NavigationLog, usual_response
from scraper.retry import RetryPolicy, is_retryable, parse_retry_after, retry_delay
from scraper.robots import Robots
from scraper.scope import Seed
from scraper.serve import StaticServer

UA = "webseg-pipeline/0.1 (+https://github.com/webseg/webseg-pipeline)"

# -- what a page says of its own navigation -----------------------------------------------

URL = "http://example.org/a?x=1"


@pytest.mark.parametrize("head, usual", [
    ([900, 200, 0, "text/html", URL], True),
    ([900, 203, 0, "application/xhtml+xml", "HTTP://Example.org:80/a?x=1#top"], True),
    ([900, 0, 0, "text/html", URL], False),  # status unknown
    ([900, 404, 0, "text/html", URL], False),
    ([900, 200, 1, "text/html", URL], False),  # a same-origin redirect
    ([900, 200, 0, "text/html", "http://example.org/b"], False),  # elsewhere: not committed
    ([900, 200, 0, "image/png", URL], False),
    ([900, 200, 0, "text/html", "chrome-error://chromewebdata/"], False),
])
def test_only_a_2xx_html_page_at_its_address_spares_the_log(head: list, usual: bool) -> None:
    resp = usual_response(head, URL)
    assert (resp is not None) == usual
    if resp is not None:
        assert (resp.status, resp.content_type, resp.redirects) == (head[1], head[3], [])


def test_navigation_log_is_drained_before_it_could_mislead() -> None:
    log, drains = NavigationLog(limit=3), []
    u = "http://example.org/".__add__

    def visit(path: str, shown: str | None = "", read: bool = False) -> bool:
        must = log.before_navigate(u(path), lambda: drains.append(path))
        log.after(u(path), u(path) if shown == "" else shown, read=read or must)
        return must

    assert not visit("a") and not visit("b") and drains == []
    assert visit("b") and drains == ["b"]  # still showing: a 204 would leave it there
    assert not visit("c") and not visit("a") and drains == ["b"]  # "a" was drained
    assert not visit("d") and drains == ["b"]
    assert not visit("e") and drains == ["b", "e"]  # three unread pages: drained
    assert visit("e") and drains == ["b", "e", "e"]
    assert not visit("f", read=True) and log.unread == set()
    # A download of "x" leaves "f" showing: "f" asked for again must read the log.
    assert not visit("x", shown=u("f"), read=True) and visit("f")
    # What shows after a timeout is not known: the next page reads the log.
    assert not visit("g", shown=None, read=True) and visit("h")


# -- links --------------------------------------------------------------------------------


def test_links_are_judged_once_per_run_and_per_seed(tmp_path: Path) -> None:
    a, b = "http://127.0.0.1:8001/a/", "http://127.0.0.1:8001/b/"
    engine = Engine(Config(), Workspace(tmp_path / "ws").ensure(), [Seed(a), Seed(b, "host")])
    engine.catalog = Catalog(engine.ws.catalog_path)
    engine.frontier = Frontier(engine.catalog)
    engine._load_state()
    engine._refresh_seed_hosts()

    def links(seed: str, *urls: str) -> list[str]:
        return [x.url for x in engine._links(Entry(seed, "desktop", 0, seed, "", ""), list(urls))]

    assert links(a, a + "x", b + "y", a + "x#top") == [a + "x"]
    # What seed a refused is still open to seed b (its scope is the host); what a queued
    # is in b's scope too, but the frontier holds it already: not offered again.
    assert links(b, b + "y", a + "x") == [b + "y"]
    assert links(a, a + "x", b + "y") == []
    # A seed that redirected widens its scope: what it refused before is judged again.
    assert links(a, "http://127.0.0.1:8001/c/z") == []
    engine._add_seed_alias(a, "http://127.0.0.1:8001/c/")
    assert links(a, "http://127.0.0.1:8001/c/z") == ["http://127.0.0.1:8001/c/z"]
    engine.catalog.close()


# -- retries ----------------------------------------------------------------------------

statuses = st.sampled_from(["ok", "http_error", "timeout", "not_html", "unreachable", "browser_error"])
http = st.one_of(st.none(), st.integers(100, 599))


@given(st.integers(1, 10), statuses, http, st.one_of(st.none(), st.floats(0, 500)))
def test_retry_policy_properties(attempt: int, status: str, code: int | None,
                                 retry_after: float | None) -> None:
    policy = RetryPolicy(retries=3, backoff=2.0, max_retry_after=120.0)
    delay = retry_delay(policy, attempt, status, code, retry_after)
    if attempt > policy.retries or not is_retryable(status, code):
        assert delay is None
    elif retry_after is not None and retry_after > policy.max_retry_after:
        assert delay is None  # a server asking for hours is not waited for
    else:
        assert delay is not None
        assert delay >= policy.backoff * 2 ** (attempt - 1)  # exponential backoff
        assert retry_after is None or delay >= retry_after  # Retry-After honoured


@pytest.mark.parametrize("status,code,expected", [
    ("http_error", 429, True), ("http_error", 503, True), ("http_error", 500, True),
    ("http_error", 404, False), ("http_error", 403, False), ("timeout", None, True),
    ("not_html", 200, False), ("ok", 200, False), ("unreachable", None, True),
])
def test_what_is_retried(status: str, code: int | None, expected: bool) -> None:
    assert is_retryable(status, code) is expected


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == pytest.approx(20.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# -- politeness -------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_per_host_concurrency() -> None:
    gate = Politeness(delay=2.0, concurrency=1, loopback_delay=0.0, loopback_concurrency=0)
    assert gate.acquire("a.com", 100.0)
    assert not gate.acquire("a.com", 100.5)  # its one slot is taken
    assert gate.acquire("b.com", 100.5)  # another host is not held up
    gate.release("a.com")
    assert gate.acquire("a.com", 100.6)
    # Loopback: no concurrency limit.
    assert all(gate.acquire("127.0.0.1:8000", 100.0) for _ in range(5))


def test_delay_counts_between_request_starts() -> None:
    clock = FakeClock(100.0)
    gate = Politeness(delay=2.0, concurrency=2)
    gate.start("a.com", clock, clock.sleep)
    assert clock.now == 100.0  # the first request goes at once
    assert not gate.acquire("a.com", 101.0)  # handed out no sooner than its turn
    gate.start("a.com", clock, clock.sleep)  # a second browser waits for the turn
    assert clock.now >= 102.0
    gate.start("b.com", clock, clock.sleep)
    assert clock.now < 102.5  # other hosts do not wait
    loop = FakeClock(0.0)
    for _ in range(3):
        gate.start("127.0.0.1:8000", loop, loop.sleep)
    assert loop.now == 0.0  # no delay on loopback


def test_crawl_delay_and_push_back() -> None:
    clock = FakeClock(0.0)
    gate = Politeness(delay=0.5, concurrency=2)
    gate.set_crawl_delay("a.com", 5.0)
    gate.start("a.com", clock, clock.sleep)
    gate.start("a.com", clock, clock.sleep)
    assert clock.now >= 5.0
    # Learnt from robots.txt while the first request was out: counts from that request.
    gate.start("late.com", clock, clock.sleep)
    first = clock.now
    gate.set_crawl_delay("late.com", 3.0)
    gate.start("late.com", clock, clock.sleep)
    assert clock.now >= first + 3.0
    gate.push_back("b.com", 60.0)  # a 429 with Retry-After: 60
    assert gate.ready_at("b.com", 0.0) == 60.0 and not gate.acquire("b.com", 59.0)
    gate.set_crawl_delay("127.0.0.1:80", 1.0)  # robots' Crawl-delay holds on loopback too
    assert gate.delay_for("127.0.0.1:80") == 1.0


# -- robots.txt ---------------------------------------------------------------------------


class RobotsServer:
    """Answers /robots.txt with whatever the test sets; records user agents."""

    def __init__(self) -> None:
        self.status, self.body, self.agents = 200, "", []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.agents.append(self.headers.get("User-Agent", ""))
                body = outer.body.encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def robots_server() -> Iterator[RobotsServer]:
    server = RobotsServer()
    yield server
    server.httpd.shutdown()


def test_robots_rules_crawl_delay_and_user_agent(robots_server: RobotsServer) -> None:
    robots_server.body = (
        "User-agent: *\nDisallow: /private/\nCrawl-delay: 3\n\n"
        "User-agent: webseg-pipeline\nDisallow: /no-webseg/\nCrawl-delay: 1.5\n"
    )
    robots = Robots(UA)
    assert robots.check(f"{robots_server.url}/page.html").allowed
    assert robots.check(f"{robots_server.url}/private/x.html").allowed  # our group wins
    verdict = robots.check(f"{robots_server.url}/no-webseg/x.html")
    assert not verdict.allowed and verdict.retry_at is None
    assert verdict.crawl_delay == 1.5
    assert robots_server.agents == [UA]  # fetched once, with the crawl's user agent


@pytest.mark.parametrize("status", [404, 403, 410])
def test_robots_4xx_allows_everything(robots_server: RobotsServer, status: int) -> None:
    robots_server.status, robots_server.body = status, "User-agent: *\nDisallow: /\n"
    assert Robots(UA).check(f"{robots_server.url}/x").allowed


def test_robots_5xx_disallows_for_a_while_then_asks_again(robots_server: RobotsServer) -> None:
    robots_server.status = 503
    robots = Robots(UA, error_wait=0.5)
    verdict = robots.check(f"{robots_server.url}/x")
    assert not verdict.allowed and verdict.retry_at is not None
    robots_server.status, robots_server.body = 200, "User-agent: *\nAllow: /\n"
    assert not robots.check(f"{robots_server.url}/x").allowed  # still within the wait
    time.sleep(0.6)
    assert robots.check(f"{robots_server.url}/x").allowed
    assert len(robots_server.agents) == 2


def test_unreachable_robots_allows() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    assert Robots(UA, timeout=2).check(f"http://127.0.0.1:{port}/x").allowed


# -- frontier ---------------------------------------------------------------------------


def _entry(url: str, depth: int = 0) -> Entry:
    return Entry(url, "1280x800", depth, "http://a.com/", "a.com", "a.com")


def test_frontier_add_is_idempotent_and_recover_requeues(tmp_path: Path) -> None:
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        frontier = Frontier(catalog)
        assert frontier.add([_entry("http://a.com/"), _entry("http://a.com/b")]) == 2
        assert frontier.add([_entry("http://a.com/b", 3)]) == 0  # seen: not queued again
        first = frontier.candidates(now=time.time())[0]
        frontier.set_state(first, "in_flight")
        assert frontier.state_counts()["in_flight"] == 1
        assert frontier.recover() == 1  # the crawl was killed with this page loading
        assert frontier.state_counts() == {"queued": 2, "in_flight": 0, "done": 0,
                                           "failed": 0, "skipped": 0}


def test_a_shorter_path_lowers_the_depth_of_a_page_still_to_fetch(tmp_path: Path) -> None:
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        frontier = Frontier(catalog)
        deep = [_entry("http://a.com/x", 9), _entry("http://a.com/y", 9),
                _entry("http://a.com/z", 9), _entry("http://a.com/w", 1)]
        assert frontier.add(deep) == 4
        for e in deep[1:]:
            frontier.set_state(e, {"y": "in_flight", "z": "done", "w": "queued"}[e.url[-1]])
        # Found again two links from the seed: x (queued) and y (loading) take that depth;
        # z was fetched already, and w is shallower than the new path.
        assert frontier.add([_entry(f"http://a.com/{c}", 2) for c in "xyzw"]) == 0
        depths = dict(catalog.execute("SELECT url, depth FROM frontier").fetchall())
        assert depths == {"http://a.com/x": 2, "http://a.com/y": 2, "http://a.com/z": 9,
                          "http://a.com/w": 1}
        # ... and x now comes before pages found at depth 3 since.
        frontier.add([_entry("http://a.com/v", 3)])
        assert [e.url for e in frontier.candidates(time.time())] == [
            "http://a.com/w", "http://a.com/x", "http://a.com/v"]
        plan = " ".join(r[3] for r in catalog.execute(
            "EXPLAIN QUERY PLAN UPDATE frontier SET depth=?1 WHERE url=?2 AND viewport=?3"
            " AND depth>?1 AND state IN ('queued','in_flight')", (1, "u", "v")))
        assert "USING INDEX" in plan and "SCAN" not in plan, plan


def test_a_link_found_by_a_shorter_path_is_offered_again(tmp_path: Path) -> None:
    seed = "http://127.0.0.1:8001/"
    engine = Engine(Config(), Workspace(tmp_path / "ws").ensure(), [Seed(seed)])
    engine.catalog = Catalog(engine.ws.catalog_path)
    engine.frontier = Frontier(engine.catalog)
    engine._load_state()
    vp = next(iter(engine.viewports))
    loading = engine._entry(seed + "b", vp, 8, seed)
    engine.in_flight = {(loading.url, vp): Job(loading, engine.viewports[vp])}

    def links(depth: int, *paths: str) -> list[tuple[str, int]]:
        found = engine._links(Entry(seed, vp, depth, seed, "", ""), [seed + p for p in paths])
        return [(x.url[len(seed):], x.depth) for x in found]

    assert links(6, "a", "b") == [("a", 7), ("b", 7)]
    assert links(6, "a") == [] and links(8, "a") == []  # no shorter: not offered again
    assert links(1, "a", "b") == [("a", 2), ("b", 2)]
    # The page already loading follows its links from the shorter path's depth.
    assert loading.depth == 2
    engine.catalog.close()


def test_served_folder_on_a_new_port_moves_its_urls(tmp_path: Path) -> None:
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        frontier = Frontier(catalog)
        old = "http://127.0.0.1:4000"
        frontier.add([Entry(f"{old}/", "1280x800", 0, f"{old}/", "127.0.0.1:4000", "127.0.0.1:4000"),
                      Entry(f"{old}/a.html", "1280x800", 1, f"{old}/", "127.0.0.1:4000",
                            "127.0.0.1:4000")])
        move_origin(catalog, old, "http://127.0.0.1:5000")
        rows = catalog.execute("SELECT url, seed, host, site FROM frontier ORDER BY url").fetchall()
        assert [tuple(r) for r in rows] == [
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5000/", "127.0.0.1:5000", "127.0.0.1:5000"),
            ("http://127.0.0.1:5000/a.html", "http://127.0.0.1:5000/", "127.0.0.1:5000",
             "127.0.0.1:5000"),
        ]


# -- static server ------------------------------------------------------------------------


def test_static_server_types_and_port_reuse(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>café</p>", encoding="utf-8")
    (tmp_path / "data.json").write_text("{}")
    with StaticServer(tmp_path) as server:
        page = requests.get(server.url, timeout=5)
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert page.text == "<p>café</p>"
        assert requests.get(server.url + "data.json", timeout=5).headers["Content-Type"] == \
            "application/json"
        port = server.port
    with StaticServer(tmp_path, port) as again:  # a resumed crawl gets the same URLs
        assert again.port == port
    with pytest.raises(ValueError, match="no such folder"):
        StaticServer(tmp_path / "missing")


# -- seeds and flags ------------------------------------------------------------------------


def _args(*argv: str):
    import argparse

    from scraper.cli.crawl import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["crawl", *argv])


def test_seeds_come_from_the_command_line_and_file_else_the_config(tmp_path: Path) -> None:
    from catalog import Config
    from scraper.cli.crawl import apply_flags, build_seeds, seed_lines
    from scraper.seeds import SeedLine

    config = Config()
    config.crawl.seeds = ["https://config.example/docs/"]
    assert seed_lines(config, _args()) == [SeedLine("https://config.example/docs/",
                                                    "[crawl] seeds entry 1")]
    listing = tmp_path / "seeds.txt"
    listing.write_text("# mine\nhttps://a.example/x/ host\n\nhttps://b.example/\n")
    lines = seed_lines(config, _args("https://c.example/", "--seeds", str(listing)))
    assert [line.where for line in lines] == ["argument 1", *(f"{listing}:{n}" for n in range(1, 5))]
    seeds, bad = build_seeds(lines, config)
    assert bad == []
    assert [(s.url, s.scope) for s in seeds] == [
        ("https://c.example/", "prefix"), ("https://a.example/x/", "host"),
        ("https://b.example/", "prefix")]
    # '/path' seeds are relative to the served folder.
    served, _ = build_seeds([SeedLine("/lang.html", "argument 1")], config,
                            "http://127.0.0.1:4000/")
    assert served[0].url == "http://127.0.0.1:4000/lang.html"
    # Flags override the config file.
    args = _args("--max-pages", "7", "--scope", "domain", "--browsers", "3", "--no-robots",
                 "--viewport", "phone", "--timeout", "4")
    apply_flags(config, args)
    assert (config.crawl.max_pages, config.crawl.scope, config.crawl.browsers) == (7, "domain", 3)
    assert not config.crawl.obey_robots and config.capture.viewports == ["phone"]
    assert config.capture.timeout == 4.0
    with pytest.raises(ValueError, match="--browsers"):
        apply_flags(config, _args("--browsers", "0"))


def test_serve_command_serves_a_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "index.html").write_text("<h1>mirror</h1>")
    proc = subprocess.Popen([sys.executable, "-m", "scraper", "serve", str(tmp_path)],
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(url, timeout=5).text == "<h1>mirror</h1>"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_status_of_a_missing_workspace_says_what_to_do(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "scraper", "status", "--workspace",
                           str(tmp_path / "none")], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: no catalog in {tmp_path / 'none'}: run `make crawl` (or pass --workspace)"
