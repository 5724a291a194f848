// The console's own script: it draws a flow's diagram with the vendored Mermaid, and keeps
// the test chat's box ready for the next message. Pages work without it but for those two.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const diagram = document.querySelector("pre.mermaid");
  if (diagram && window.mermaid) {
    window.mermaid.initialize({
      startOnLoad: false,
      securityLevel: "strict",
      theme: "neutral",
      // Mermaid's HTML labels (inside the SVG's foreignObject): its plain-SVG labels would
      // show the graph's escaped quotes (#quot;) as "&quot;" instead of decoding them.
      flowchart: { useMaxWidth: true },
    });
    window.mermaid
      .run({ nodes: [diagram] })
      .then(() => { diagram.dataset.drawn = "true"; })
      .catch((error) => {
        diagram.dataset.drawn = "failed";
        diagram.insertAdjacentText("beforebegin", "The diagram could not be drawn: " + error);
      });
  }

  const chat = document.getElementById("chat");
  if (chat) {
    chat.addEventListener("htmx:afterRequest", (event) => {
      if (event.detail.elt !== chat) return;
      const text = chat.querySelector("input[name=text]");
      text.value = "";
      text.focus();
      const log = document.getElementById("log");
      if (log.lastElementChild) log.lastElementChild.scrollIntoView({ block: "nearest" });
    });
  }
});
