// Sends the activation form without leaving the page and announces the outcome in the live region. Without
// JavaScript the same form posts normally and the server redirects back with the outcome.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("activate-form");
  const result = document.getElementById("result");
  if (!form || !result) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    result.textContent = "Sending…";
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "Accept": "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json();
      result.textContent = answer.message || "Done.";
      if (button && !["switch", "request", "pending"].includes(answer.outcome)) button.disabled = false;
    } catch (e) {
      result.textContent = "The request could not be sent. Please try again.";
      if (button) button.disabled = false;
    }
  });
});
