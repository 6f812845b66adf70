// Builds the tandem binary (go build) and the tests (tsc), then runs the
// tests with node --test against live `tandem serve` processes.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const repo = join(root, "../..");
const bin = join(root, "build", "tandem");
const run = (cmd, args, cwd = root, env = process.env) => execFileSync(cmd, args, { cwd, stdio: "inherit", env });

run("go", ["build", "-o", bin, "./cmd/tandem"], repo);
run(join(root, "node_modules/.bin/tsc"), ["-p", "tsconfig.json"]);
const dir = join(root, "build/test");
const files = readdirSync(dir).filter((f) => f.endsWith(".test.js")).map((f) => join(dir, f));
try {
  run(process.execPath, ["--test", "--test-concurrency=1", ...files], root, { ...process.env, TANDEM_BIN: bin });
} catch {
  process.exit(1);
}
