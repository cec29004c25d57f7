// Refreshes the dashboard in place every few seconds while the tab is visible:
// fetches the page again and swaps in its dashboard section (the server's escaped HTML).
"use strict";
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    const root = document.getElementById("qtasks-dashboard");
    const seconds = root ? parseInt(root.dataset.refreshSeconds || "0", 10) : 0;
    if (!seconds) {
      return;
    }
    async function refresh() {
      if (!document.hidden) {
        try {
          const response = await fetch(window.location.href, { credentials: "same-origin" });
          if (response.ok) {
            const page = new DOMParser().parseFromString(await response.text(), "text/html");
            const fresh = page.getElementById("qtasks-dashboard");
            const current = document.getElementById("qtasks-dashboard");
            if (fresh && current) {
              current.replaceWith(fresh);
            }
          }
        } catch (error) {
          // The next refresh tries again; the page keeps what it shows.
        }
      }
      window.setTimeout(refresh, seconds * 1000);
    }
    window.setTimeout(refresh, seconds * 1000);
  });
})();
