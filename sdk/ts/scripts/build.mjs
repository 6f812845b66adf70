// Builds dist/ from src/: removes it first, then tsc twice —
//   dist/esm: ES modules (.js, .d.ts), for `import` and bundlers;
//   dist/cjs: CommonJS (.js, .d.ts) with a package.json {"type":"commonjs"},
//             so Node and TypeScript read both the code and its types as CJS,
//             for `require`.
// openapi-fetch ships both formats, so neither build bundles it.
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(root, "node_modules/.bin/tsc");
rmSync(join(root, "dist"), { recursive: true, force: true });
execFileSync(tsc, ["-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
execFileSync(tsc, ["-p", "tsconfig.cjs.json"], { cwd: root, stdio: "inherit" });
writeFileSync(join(root, "dist/cjs/package.json"), JSON.stringify({ type: "commonjs" }) + "\n");
console.log("built dist/esm and dist/cjs");
