// Keeps a task's progress bar and items current while the task waits or runs.
// Polls the task's "live" URL for the items after the last one shown; reloads the page once
// the status changes (to show the result, the traceback and the actions that now apply).
// Values are inserted with textContent, so nothing from a task is ever parsed as HTML.
"use strict";
(function () {
  const POLL_MS = 1000;
  const BACKOFF_MS = 5000;
  const MAX_ITEMS_SHOWN = 500;

  function follow(box) {
    if (box.dataset.active !== "1") {
      return;
    }
    const list = box.querySelector(".qtasks-progress-items");
    const bar = box.querySelector(".qtasks-bar");
    const fill = box.querySelector(".qtasks-bar-fill");
    const count = box.querySelector(".qtasks-progress-count");
    let lastSeq = parseInt(box.dataset.lastSeq || "0", 10);

    function addItem(item) {
      const li = document.createElement("li");
      li.value = item.seq;
      if ("value" in item) {
        const code = document.createElement("code");
        code.textContent = item.value;
        li.appendChild(code);
      } else {
        const span = document.createElement("span");
        span.className = "qtasks-hidden";
        span.textContent = "hidden";
        li.appendChild(span);
      }
      list.appendChild(li);
      while (list.children.length > MAX_ITEMS_SHOWN) {
        list.removeChild(list.firstElementChild);
      }
      lastSeq = Math.max(lastSeq, item.seq);
    }

    // The "N% done" part of the summary. The server leaves it out while no item states a
    // share (a page opened before the first item), so it is made here when one arrives.
    function percentText() {
      let done = box.querySelector(".qtasks-progress-done");
      if (!done) {
        done = document.createElement("span");
        done.className = "qtasks-progress-done";
        const value = document.createElement("span");
        value.className = "qtasks-progress-percent";
        done.append(", ", value, "% done");
        const summary = box.querySelector(".qtasks-progress-summary");
        summary.insertBefore(done, summary.querySelector(".qtasks-live-note"));
      }
      return done.querySelector(".qtasks-progress-percent");
    }

    function showBar(state) {
      count.textContent = String(state.count);
      if (state.fraction !== null) {
        const percent = Math.round(state.fraction * 100);
        bar.classList.remove("qtasks-bar-unknown");
        bar.setAttribute("aria-valuemin", "0");
        bar.setAttribute("aria-valuemax", "100");
        bar.setAttribute("aria-valuenow", String(percent));
        fill.style.width = percent + "%";
        percentText().textContent = String(percent);
      } else if (state.count > 0) {
        fill.style.width = "100%";
      }
    }

    async function poll() {
      let state;
      try {
        const response = await fetch(box.dataset.liveUrl + "?after=" + lastSeq, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok) {
          window.setTimeout(poll, BACKOFF_MS);
          return;
        }
        state = await response.json();
      } catch (error) {
        window.setTimeout(poll, BACKOFF_MS);
        return;
      }
      state.items.forEach(addItem);
      box.dataset.lastSeq = String(lastSeq);
      showBar(state);
      if (state.status !== box.dataset.status) {
        window.location.reload();
        return;
      }
      window.setTimeout(poll, POLL_MS);
    }

    window.setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".qtasks-progress").forEach(follow);
  });
})();
