// A drop's landing page and the no-JavaScript result page: local times and sizes, Copy link,
// and the system's share sheet where the browser has one. Without this script the page
// shows the same facts in UTC and English, and the link to copy by hand.

import { announcer, localize, wireCopy, wireShare } from "./shared.js";

document.documentElement.classList.replace("no-js", "js");
localize(document);
const status = document.getElementById("share-status");
const say = status ? announcer(status) : () => {};
for (const section of document.querySelectorAll("section.share")) {
  const link = section.querySelector(".link");
  const copy = section.querySelector("button.copy");
  const share = section.querySelector("button.share-sheet");
  const url = link.href;
  if (copy) wireCopy(copy, url, link, say);
  if (share) wireShare(share, url, document.title);
}
