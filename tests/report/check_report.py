#!/usr/bin/env python3
"""check_report.py - checks a `memprof report` page, statically and in
headless Chromium (Debian's `chromium` package).

Usage: check_report.py [--screenshot PNG] [--window-size W,H]
                       REPORT.html [ID:TEXT ...]

1. The file is self-contained: a Content-Security-Policy with
   default-src 'none', no URL (http:, https:, ftp:, //host), no src
   attribute, no <link>, <img>, <iframe>, <object>, <embed>, url() or
   @import; its only </script> end the data and the code.
2. Chromium loads it (file://, --dump-dom) and prints no console message
   at all (the page logs nothing; an exception, a CSP violation or a
   blocked load each print one as a CONSOLE line with --enable-logging).
3. In the DOM after the scripts ran: <html data-ready="yes">, no element of
   class "error", every href an in-page #anchor, and for each ID:TEXT
   argument, TEXT in the text of the element with that id (the page's
   ids: summary, live, allocated, timeline, top, leaks, cycles, records).

With --screenshot, also writes a PNG of the page (docs/report.png is
made this way). Exits 0 when every check passes, 1 with one line per
failure on stderr, 77 when no Chromium is installed (set CHROMIUM to
choose one). Uses only the standard library.
"""

import html.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}


def find_chromium():
    env = os.environ.get("CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def static_checks(text):
    errors = []
    csp = re.findall(r'<meta http-equiv="Content-Security-Policy" '
                     r'content="([^"]*)"', text)
    if len(csp) != 1 or "default-src 'none'" not in csp[0]:
        errors.append("no Content-Security-Policy with default-src 'none'")
    elif "unsafe" in csp[0]:
        errors.append("the Content-Security-Policy allows unsafe sources")
    for pat, what in ((r"(?i)\b(?:https?|ftp):", "a URL"),
                      (r"(?i)\b(?:src|href|action|poster)\s*=\s*[\"']?//",
                       "a protocol-relative URL"),
                      (r"(?i)\bsrc\s*=", "a src attribute"),
                      (r"(?i)<(?:link|img|iframe|object|embed|base)\b",
                       "an element that loads something"),
                      (r"(?i)\burl\(", "a CSS url()"),
                      (r"(?i)@import", "a CSS @import")):
        m = re.search(pat, text)
        if m:
            errors.append("the file holds %s: %r" % (
                what, text[max(0, m.start() - 30):m.end() + 30]))
    if text.count("</script>") != 2:
        errors.append("expected 2 </script> (data and code), found %d" %
                      text.count("</script>"))
    return errors


class Dom(html.parser.HTMLParser):
    """Text of every element with an id, and what the checks look at."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, id)
        self.text = {}
        self.ready = False
        self.errors = []
        self.hrefs = []
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html" and a.get("data-ready") == "yes":
            self.ready = True
        if "error" in (a.get("class") or "").split():
            self.errors.append(tag)
        if "href" in a:
            self.hrefs.append(a["href"])
        if "src" in a:
            self.srcs.append(a["src"])
        if tag in VOID:
            return
        ident = a.get("id")
        if ident is not None:
            self.text.setdefault(ident, [])
        self.stack.append((tag, ident))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        for _, ident in self.stack:
            if ident is not None:
                self.text[ident].append(data)


def chromium(browser, profile, args, url):
    cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--no-first-run",
           "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0"]
    return subprocess.run(cmd + args + [url], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=90)


def main(argv):
    shot = None
    size = "1280,1600"
    while argv and argv[0].startswith("--"):
        opt = argv.pop(0)
        if opt == "--screenshot" and argv:
            shot = argv.pop(0)
        elif opt == "--window-size" and argv:
            size = argv.pop(0)
        else:
            print("check_report.py: bad option %s" % opt, file=sys.stderr)
            return 2
    if not argv:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = os.path.abspath(argv[0])
    expects = []
    for e in argv[1:]:
        ident, sep, text = e.partition(":")
        if not sep:
            print("check_report.py: expected ID:TEXT, not %r" % e,
                  file=sys.stderr)
            return 2
        expects.append((ident, text))

    with open(path, encoding="utf-8") as f:
        errors = static_checks(f.read())

    browser = find_chromium()
    if not browser:
        for e in errors:
            print("report: " + e, file=sys.stderr)
        print("chromium is not installed (apt-get install chromium): "
              "the page was not loaded", file=sys.stderr)
        return 1 if errors else 77

    url = "file://" + path
    with tempfile.TemporaryDirectory(prefix="memprof-chromium-") as prof:
        r = chromium(browser, prof, ["--dump-dom"], url)
        out = r.stdout.decode("utf-8", "replace")
        err = r.stderr.decode("utf-8", "replace")
        if r.returncode != 0 or "<html" not in out:
            errors.append("chromium failed (status %d): %s" %
                          (r.returncode, err.strip()[-2000:]))
        for line in err.splitlines():
            if ":CONSOLE" in line:
                errors.append("console: " + line.split("] ", 1)[-1])
        dom = Dom()
        dom.feed(out)
        dom.close()
        if out and not dom.ready:
            errors.append("the page's script did not finish "
                          "(no data-ready=\"yes\")")
        for tag in dom.errors:
            errors.append("a part of the page failed to draw (<%s "
                          "class=\"error\">)" % tag)
        for href in dom.hrefs:
            if not href.startswith("#"):
                errors.append("a link out of the page: %r" % href)
        for src in dom.srcs:
            errors.append("an element loads %r" % src)
        for ident, text in expects:
            if ident not in dom.text:
                errors.append("no element with id %r in the page" % ident)
            elif text not in "".join(dom.text[ident]):
                errors.append("%r not found in #%s" % (text, ident))
        if shot:
            r = chromium(browser, prof, ["--hide-scrollbars",
                                         "--window-size=" + size,
                                         "--screenshot=" +
                                         os.path.abspath(shot)], url)
            if r.returncode != 0 or not os.path.exists(shot):
                errors.append("no screenshot: %s" %
                              r.stderr.decode("utf-8", "replace")[-500:])
    for e in errors:
        print("report: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
