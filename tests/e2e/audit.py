"""Every page a browser test visits is checked with axe-core and photographed.

A page counts as visited once the browser has navigated to it: after `goto`, `go_back`, `reload`,
and, on a page that navigated since its last check, before the test's next action (a click, a
fill, a check...), before the next `goto`, and before the page or its context closes. The check waits for the page to be
quiet (loaded, no htmx request, swap or settle in flight, nothing aria-busy, no finite
animation running), runs
axe-core (tests/e2e/assets/axe.min.js, injected through the DevTools protocol, so the page's
strict CSP stays as it is), and runs it again should htmx swap anything while axe was reading.
A serious or critical violation fails the test with the rule, the page and the nodes.

Each checked page is saved as a full-page screenshot under
test-artifacts/screenshots/<role>/<page>.png (the role of the signed-in user, "public" for a
visitor; pages narrower than 500 px get a "-phone" suffix), listed in index.html and index.json.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ASSETS = Path(__file__).resolve().parent / "assets"
AXE_SOURCE = (ASSETS / "axe.min.js").read_text(encoding="utf-8")
FAILING_IMPACTS = ("serious", "critical")
PHONE_MAX_WIDTH = 500
QUIET_TIMEOUT_MS = 8000
ATTEMPTS = 3
# CRM_AXE_REPORT_ONLY=1 lists violations in test-artifacts/axe-violations.jsonl instead of
# failing: a way to see every page's violations in one run while fixing them.
REPORT_ONLY = os.environ.get("CRM_AXE_REPORT_ONLY") == "1"

# Resolves once the document is loaded and nothing moves: no htmx request, swap or settle in
# flight, nothing marked aria-busy (a count being fetched), no finite animation running, three
# checks in a row 40 ms apart.
WAIT_FOR_QUIET = """async (timeoutMs) => {
  const deadline = performance.now() + timeoutMs;
  const busy = () => document.readyState !== 'complete'
    || document.querySelector(
         '.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added, [aria-busy="true"]')
    || document.getAnimations().some((a) => a.playState === 'running'
         && Number.isFinite(a.effect && a.effect.getComputedTiming().endTime));
  let quiet = 0;
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 40));
    quiet = busy() ? 0 : quiet + 1;
    if (quiet >= 3) return true;
  }
  return false;
}"""

# Runs axe on the document (not into frames: a sandboxed preview frame runs no script, and axe
# would wait a minute for an answer from it) and says whether htmx swapped meanwhile.
RUN_AXE = """async (impacts) => {
  let swapped = false;
  const mark = () => { swapped = true; };
  document.addEventListener('htmx:beforeSwap', mark);
  try {
    const result = await axe.run(document, {
      iframes: false, resultTypes: ['violations'], performanceTimer: false,
    });
    return {
      swapped,
      url: location.href,
      title: document.title,
      violations: result.violations.filter((v) => impacts.includes(v.impact)).map((v) => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({
          target: n.target.join(' '), html: n.html.slice(0, 300), summary: n.failureSummary,
        })),
      })),
    };
  } finally {
    document.removeEventListener('htmx:beforeSwap', mark);
  }
}"""


class AccessibilityViolation(AssertionError):
    pass


def page_name(url: str, width: int | None) -> str:
    """`/customers/123/edit/?q=x` -> `customers-id-edit`; signed tokens become `token`."""
    parts = []
    for part in urlsplit(url).path.strip("/").split("/"):
        if not part:
            continue
        if part.isdigit():
            part = "id"
        elif len(part) > 24 or ":" in part:
            part = "token"
        parts.append(re.sub(r"[^A-Za-z0-9_.-]+", "_", part))
    name = "-".join(parts) or "home"
    if width is not None and width < PHONE_MAX_WIDTH:
        name += "-phone"
    return name


def format_violations(url: str, violations: list[dict]) -> str:
    lines = [f"axe found {len(violations)} serious or critical violation(s) on {url}:"]
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} "
            f"[{violation['helpUrl']}]"
        )
        for node in violation["nodes"][:8]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}: {node['html']}\n      {summary}")
        if len(violation["nodes"]) > 8:
            lines.append(f"    ... and {len(violation['nodes']) - 8} more")
    return "\n".join(lines)


@dataclass
class PageState:
    pending: bool = False
    checked: int = 0


@dataclass
class Auditor:
    """The checks of one test: which pages navigated since their last check, and what was seen."""

    screenshots_dir: Path
    role_of: callable
    test_name: str
    pages: dict = field(default_factory=dict)
    busy: bool = False
    seen: list = field(default_factory=list)

    def track(self, page) -> PageState:
        state = self.pages.get(page)
        if state is None:
            state = self.pages[page] = PageState()

            def navigated(frame, page=page, state=state):
                if frame == page.main_frame:
                    state.pending = True

            page.on("framenavigated", navigated)
        return state

    def check_if_pending(self, page) -> None:
        state = self.track(page)
        if state.pending and not self.busy and not page.is_closed():
            self.check(page)

    def check(self, page) -> dict:
        """axe on the page as it stands once quiet, then its screenshot."""
        state = self.track(page)
        self.busy = True
        try:
            result = None
            for _attempt in range(ATTEMPTS):
                state.pending = False
                try:
                    page.wait_for_load_state("load")
                    page.evaluate(WAIT_FOR_QUIET, QUIET_TIMEOUT_MS)
                    if not page.evaluate("typeof window.axe === 'object'"):
                        page.evaluate(AXE_SOURCE)
                    result = page.evaluate(RUN_AXE, list(FAILING_IMPACTS))
                except Exception as error:  # the page navigated away while axe was reading
                    if "context was destroyed" not in str(error) and "navigat" not in str(error):
                        raise
                    result = None
                    continue
                if not result["swapped"] and not state.pending:
                    break
            if result is None:
                raise AccessibilityViolation(f"axe could not finish on {page.url}")
            path = self._screenshot(page, result)
            state.checked += 1
            if result["violations"] and REPORT_ONLY:
                with (self.screenshots_dir.parent / "axe-violations.jsonl").open("a") as out:
                    out.write(json.dumps({"test": self.test_name, **result}) + "\n")
            elif result["violations"]:
                raise AccessibilityViolation(
                    format_violations(result["url"], result["violations"])
                    + f"\n(screenshot: {path})"
                )
            return result
        finally:
            self.busy = False

    def _screenshot(self, page, result: dict) -> Path:
        viewport = page.viewport_size or {}
        role = self.role_of(page)
        name = page_name(result["url"], viewport.get("width"))
        path = self.screenshots_dir / role / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True, caret="initial")
        # A screenshot leaves `style=""` on form fields; htmx would copy those onto swapped
        # content (attributesToSettle), which the CSP refuses. They do nothing: away with them.
        page.evaluate(
            "document.querySelectorAll('[style=\"\"]').forEach((e) => e.removeAttribute('style'))"
        )
        self.seen.append(
            {
                "file": f"{role}/{name}.png",
                "role": role,
                "page": name,
                "url": urlsplit(result["url"])._replace(scheme="", netloc="").geturl(),
                "title": result["title"],
                "width": viewport.get("width"),
                "test": self.test_name,
            }
        )
        return path

    def finish(self) -> None:
        """Checks what the test left on screen, on every page still open."""
        for page in list(self.pages):
            if not page.is_closed():
                self.check_if_pending(page)


def write_index(screenshots_dir: Path, entries: list[dict]) -> None:
    """index.json and index.html: every screenshot on disk, with the page it shows."""
    index_json = screenshots_dir / "index.json"
    known = {}
    if index_json.exists():
        known = {e["file"]: e for e in json.loads(index_json.read_text(encoding="utf-8"))}
    known.update({e["file"]: e for e in entries})
    on_disk = {p.relative_to(screenshots_dir).as_posix() for p in screenshots_dir.rglob("*.png")}
    rows = [
        known.get(f) or {"file": f, "role": f.split("/")[0], "page": Path(f).stem}
        for f in sorted(on_disk)
    ]
    index_json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    sections = []
    for role in sorted({r["role"] for r in rows}):
        items = "\n".join(
            f'<li><a href="{html.escape(r["file"])}">{html.escape(r["page"])}</a> '
            f"<small>{html.escape(r.get('url', ''))} · {html.escape(str(r.get('title', '')))}"
            f" · {r.get('width', '')} px</small></li>"
            for r in rows
            if r["role"] == role
        )
        sections.append(f"<h2>{html.escape(role)}</h2>\n<ul>\n{items}\n</ul>")
    (screenshots_dir / "index.html").write_text(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Screenshots</title>\n"
        f"<h1>Screenshots ({len(rows)})</h1>\n" + "\n".join(sections) + "\n</html>\n",
        encoding="utf-8",
    )
