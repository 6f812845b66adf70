// Fails when src/gen/ differs from what `npm run gen` makes from the specs.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = ["src/gen/openapi.ts", "src/gen/frames.ts"];
const before = files.map((f) => readFileSync(join(root, f), "utf8"));
execFileSync("npm", ["run", "--silent", "gen"], { cwd: root, stdio: "inherit" });
let stale = false;
files.forEach((f, i) => {
  if (readFileSync(join(root, f), "utf8") !== before[i]) {
    console.error(`FAIL: ${f} is stale: run \`npm run gen\` in sdk/ts and commit it`);
    stale = true;
  }
});
if (stale) process.exit(1);
console.log("generated types are fresh");
