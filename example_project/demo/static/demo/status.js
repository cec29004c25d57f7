// The status page follows its task: it fetches the page's JSON every half second and
// updates the badge, outcome (and why a waiting task waits), progress, attempts, nested
// tasks and log, until nothing more can change. Plain DOM calls, no build step; text goes
// in through textContent only.
(function () {
  "use strict";

  const POLL_MS = 500;
  const RETRY_MS = 2000;
  const root = document.getElementById("task");

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function badge(item) {
    return element("span", "badge status-" + item.status, item.status_label);
  }

  function link(item, text) {
    const anchor = element("a", null, text);
    anchor.href = item.url;
    return anchor;
  }

  function showList(sectionId, listId, visible, items, render) {
    document.getElementById(sectionId).hidden = !visible;
    document.getElementById(listId).replaceChildren(...items.map(render));
  }

  function renderProgress(task) {
    const bar = task.progress_bar;
    document.getElementById("progress-section").hidden = task.progress.length === 0;
    document.getElementById("progress-bar").hidden = !bar;
    document.getElementById("progress-items").hidden = Boolean(bar);
    if (bar) {
      document.querySelector("#progress-bar .fill").style.width = bar.percent + "%";
      document.querySelector("#progress-bar .bar-label").textContent = bar.done + " / " + bar.total;
    } else {
      document.getElementById("progress-items").replaceChildren(
        ...task.progress_texts.map((text) => element("li", null, text)),
      );
    }
  }

  function renderAttempt(attempt) {
    const item = element("li", attempt.latest ? "current" : "");
    item.append(link(attempt, "attempt " + attempt.attempt), " ", badge(attempt), " ",
      element("code", null, attempt.error));
    return item;
  }

  function renderChild(child) {
    const item = element("li");
    item.append(link(child, child.task_name), " ", badge(child));
    return item;
  }

  function renderLogLine(line) {
    const item = element("li");
    item.append(element("span", "level", line.level), " " + line.message);
    return item;
  }

  function render(task) {
    const status = document.getElementById("task-status");
    status.textContent = task.status_label;
    status.className = "badge big status-" + task.status;
    document.title = task.task_name + " · " + task.status_label;
    root.querySelectorAll("[data-when]").forEach((node) => {
      node.hidden = !node.dataset.when.split(" ").includes(task.status);
    });
    root.querySelectorAll("[data-field]").forEach((node) => {
      node.textContent = task[node.dataset.field] ?? "";
    });
    document.getElementById("task-why").replaceChildren(...task.why.map((text) => element("li", null, text)));
    renderProgress(task);
    showList("attempts-section", "attempts-list", task.attempts.length > 1, task.attempts, renderAttempt);
    showList("children-section", "children-list", task.children.length > 0, task.children, renderChild);
    showList("logs-section", "log-lines", task.logs.length > 0, task.logs, renderLogLine);
    document.getElementById("cancel-form").hidden = !task.cancellable;
    document.getElementById("cancel-requested").hidden = !task.cancel_requested;
    document.getElementById("live-note").textContent = task.settled ? "final" : "updating live";
    root.dataset.settled = String(task.settled);
  }

  async function poll() {
    try {
      const response = await fetch(root.dataset.jsonUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("status " + response.status);
      const task = await response.json();
      render(task);
      if (!task.settled) setTimeout(poll, POLL_MS);
    } catch (error) {
      // A restarting development server, say: keep following, a little more slowly.
      document.getElementById("live-note").textContent = "reconnecting…";
      setTimeout(poll, RETRY_MS);
    }
  }

  if (root.dataset.settled !== "true") setTimeout(poll, POLL_MS);
})();
