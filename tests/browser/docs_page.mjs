// Load a jamhost server's /docs in Debian's headless chromium through playwright-core, with
// every request to a host other than the server refused, and print one JSON line: the
// operations Swagger UI lists, the title, and every request that tried to leave loopback.
// Usage: node docs_page.mjs <playwright-core dir> <server url>
import { createRequire } from "node:module";
import path from "node:path";

const [dir, url] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(dir), "node_modules", "x.js"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const outside = [];
try {
  const page = await browser.newPage();
  const origin = new URL(url).origin;
  await page.route("**/*", (route) => {
    const target = route.request().url();
    if (target.startsWith(origin + "/") || target.startsWith("data:")) return route.continue();
    outside.push(target);
    return route.abort();
  });
  await page.goto(url + "/docs", { waitUntil: "networkidle" });
  await page.waitForSelector(".opblock", { timeout: 60000 });
  const operations = await page.$$eval(".opblock", (blocks) => blocks.map((b) => ({
    method: (b.querySelector(".opblock-summary-method")?.textContent || "").trim(),
    path: (b.querySelector(".opblock-summary-path")?.getAttribute("data-path") ||
           b.querySelector(".opblock-summary-path")?.textContent || "").trim(),
  })));
  const authorize = await page.$$eval("button.authorize", (b) => b.length);
  console.log(JSON.stringify({ title: await page.title(), operations, authorize, outside }));
} finally {
  await browser.close();
}
