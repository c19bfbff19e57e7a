import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const root = new URL("../../", import.meta.url).pathname;

test("the README's echo example is examples/readme_echo.ts, word for word", () => {
  const readme = readFileSync(root + "README.md", "utf8");
  const block = readme.match(/```ts\n([\s\S]*?)```/);
  assert.ok(block, "README has no ts code block");
  assert.equal(block[1], readFileSync(root + "examples/readme_echo.ts", "utf8"));
});

test("the README's HTTP example is examples/readme_http.ts, word for word", () => {
  const readme = readFileSync(root + "README.md", "utf8");
  const block = readme.match(/```ts\n(import \{ createHttpClient[\s\S]*?)```/);
  assert.ok(block, "README has no HTTP example");
  assert.equal(block[1], readFileSync(root + "examples/readme_http.ts", "utf8"));
});

test("the README's two newcomer lines are the npm scripts that exist", () => {
  const readme = readFileSync(root + "README.md", "utf8");
  const scripts = JSON.parse(readFileSync(root + "package.json", "utf8")).scripts;
  assert.match(readme, /^npm run demo +#/m);
  assert.match(readme, /^npm test +#/m);
  assert.equal(scripts.demo, "bash examples/demo.sh");
  assert.equal(scripts.test, "bash test/run.sh");
  const ci = readFileSync(root + ".ci/run", "utf8");
  assert.match(ci, /^npm test$/m, ".ci/run must run the README's test command");
});

test("the README's command line examples are the issue's, verbatim, and its script exists", () => {
  const readme = readFileSync(root + "README.md", "utf8");
  assert.match(readme, /^vsock forward tcp:127\.0\.0\.1:8080 vsock:3:80 /m);
  assert.match(readme, /^vsock forward vsock:5000 tcp:127\.0\.0\.1:5000 /m);
  const scripts = JSON.parse(readFileSync(root + "package.json", "utf8")).scripts;
  assert.equal(scripts["build:exe"], "bun build --compile cli.ts --outfile dist/vsock");
});
