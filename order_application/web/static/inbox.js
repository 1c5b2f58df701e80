// Keeps each [data-poll] region current: fetches it again every few seconds and merges it in,
// without touching what the user is typing. Without JavaScript the page works as it is, and a
// reload brings it up to date.
"use strict";

const POLL_MILLISECONDS = 2000;

// In `target`, each [data-live] part takes the fresh one of the same name.
function refreshLiveParts(target, fresh) {
  for (const part of fresh.querySelectorAll("[data-live]")) {
    const old = target.querySelector(`[data-live="${CSS.escape(part.dataset.live)}"]`);
    if (old && old.closest("[data-key]") === target.closest("[data-key]")) old.replaceWith(part);
  }
}

// A [data-keyed] list keeps the items (and their forms) it still has, in place, refreshing
// their live parts; it drops the items gone and adds the new ones where they belong.
function mergeKeyed(list, fresh) {
  const freshKeys = new Set([...fresh.children].map((item) => item.dataset.key));
  for (const item of [...list.children]) {
    if (!freshKeys.has(item.dataset.key)) item.remove();
  }
  let previous = null;
  for (const item of [...fresh.children]) {
    const kept = [...list.children].find((old) => old.dataset.key === item.dataset.key);
    if (kept) refreshLiveParts(kept, item);
    const node = kept || item;
    const expected = previous ? previous.nextElementSibling : list.firstElementChild;
    if (node !== expected) list.insertBefore(node, expected);
    previous = node;
  }
}

async function poll(region) {
  let answer;
  try {
    answer = await fetch(region.dataset.poll, { credentials: "same-origin" });
  } catch {
    return; // The inbox itself is gone: keep the page as it is.
  }
  const fresh = document.createElement("div");
  fresh.innerHTML = await answer.text();
  refreshLiveParts(region, fresh);
  const lists = fresh.querySelectorAll("[data-keyed]");
  region.querySelectorAll("[data-keyed]").forEach((list, index) => {
    if (lists[index]) mergeKeyed(list, lists[index]);
  });
}

for (const region of document.querySelectorAll("[data-poll]")) {
  setInterval(() => poll(region), POLL_MILLISECONDS);
}
