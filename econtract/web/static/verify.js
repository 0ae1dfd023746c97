// What each problem means for the person at the page (type urn:econtract:problem:<code>).
const problems = {
  "not-a-pdf": ["这不是 PDF 文件。请选择收到的 PDF 文件。", "This is not a PDF file. Choose the PDF you received."],
  "malformed-pdf": ["文件已损坏，无法读取。", "The file is damaged and cannot be read."],
  "too-large": ["文件太大，无法核验。", "The file is too large to check."],
  "payload-too-large": ["文件太大，无法核验。", "The file is too large to check."],
  "verification-timeout": ["核验用时过长，已停止。请稍后再试。", "Checking took too long and was stopped. Try again later."],
  "verification-resources": ["文件过于复杂，无法核验。", "The file is too complex to check."],
  "invalid-input": ["请先选择一个 PDF 文件。", "Choose a PDF file first."],
  "rate-limited": ["请求过于频繁，请稍后再试。", "Too many requests; try again later."],
};
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function showError(zh, en, detail) {
  const box = el("div", "error");
  box.append(el("strong", "", zh), el("br"), el("span", "en", en));
  if (detail) { box.append(el("br"), el("span", "en", detail)); }
  document.getElementById("status").replaceChildren(box);
  document.getElementById("result").replaceChildren();
}
document.getElementById("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("status");
  status.replaceChildren(el("p", "", "正在核验… Verifying…"));
  document.getElementById("result").replaceChildren();
  try {
    const response = await fetch("/v1/verify", {
      method: "POST", body: new FormData(event.target), headers: {Accept: "text/html"},
    });
    if (!response.ok) {
      let problem = {};
      try { problem = await response.json(); } catch (ignored) { /* not JSON: keep the status */ }
      const code = (problem.type || "").split(":").pop();
      const [zh, en] = problems[code] || ["核验未能完成。", "The file could not be checked."];
      showError(zh, en, `${problem.detail || problem.title || ""} (HTTP ${response.status})`.trim());
      return;
    }
    // The report page, rendered by the service, shown inside this one with its own styles.
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const style = page.head.querySelector("style");
    const report = page.querySelector("main.report");
    const result = document.getElementById("result");
    result.replaceChildren(...[style, report].filter(Boolean));
    status.replaceChildren();
    report.scrollIntoView({behavior: "smooth"});
  } catch (error) {
    showError("核验失败，请稍后再试。", "Verification failed; try again later.");
  }
});
