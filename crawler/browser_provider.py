"""scrapy-playwright's browser provider, with a browser that will not start turned into one clear reason.

Loaded by name (PLAYWRIGHT_BROWSER_PROVIDER, set by crawler.browser.BrowserRendering) only in a
crawl that renders pages, so nothing else imports Playwright. Playwright's driver starts with
the crawl; the browser starts at the first page marked for it. If either fails, the failure is
logged once and every marked request fails with BrowserUnavailable (the source ends
``failed: browser_unavailable``) instead of a traceback per page and a retry of the launch.
"""

from __future__ import annotations

import logging

from playwright.async_api import Browser
from scrapy_playwright.provider import PlaywrightBrowserProvider

from crawler.browser import BROWSER_UNAVAILABLE, BrowserUnavailable

logger = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SystemBrowserProvider(PlaywrightBrowserProvider):
    """Launches the configured executable; remembers why it could not, and says so once."""

    failure: str | None = None

    def _failed(self, what: str, exc: BaseException) -> BrowserUnavailable:
        self.failure = f"{what}: {_first_line(exc)}"
        logger.warning("browser rendering unavailable (%s): %s", BROWSER_UNAVAILABLE, self.failure)
        return BrowserUnavailable(self.failure)

    async def start(self) -> None:
        try:
            await super().start()
        except Exception as exc:
            self._failed("Playwright did not start", exc)

    async def launch_browser(self) -> Browser:
        if self.failure is not None:
            raise BrowserUnavailable(self.failure)
        try:
            return await super().launch_browser()
        except Exception as exc:
            path = self.config.launch_options.get("executable_path")
            raise self._failed(f"the browser at {path} did not start", exc) from exc

    async def close(self) -> None:
        try:
            await super().close()
        except Exception as exc:  # the driver that never started cannot be stopped either
            if self.failure is None:
                raise
            logger.debug("closing a browser provider that never started: %s", exc)
