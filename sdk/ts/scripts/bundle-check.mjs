// Bundle check: esbuild bundles a small browser app that imports the SDK
// (`import ... from "@tandem/sdk"`, resolved through package.json `exports`
// as a bundler would, with platform "browser") and fails if anything
// Node-only ends up in it: the `ws` package, a `node:` or other Node
// builtin module, a require() call or a reference to `process`. The
// SDK's Node-only paths (`ws` when there is no global WebSocket,
// node:crypto when there is no global crypto) load through a variable
// specifier, which a bundler leaves alone and a browser never reaches.
// Prints the bundle's size (minified, and gzipped).
//
//   node scripts/bundle-check.mjs [DIR]
// DIR: where to resolve @tandem/sdk from (a project that installed the
// tarball); default: this package itself (needs `npm run build` first).
import { builtinModules } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const from = process.argv[2] ? resolve(process.argv[2]) : undefined;
if (!from && !existsSync(join(root, "dist/esm/index.js"))) {
  console.error("FAIL: dist/esm/index.js is missing: run `npm run build` first");
  process.exit(1);
}

const entry = `
import { Tandem, Mirror, collectionTopic, verifyWebhook, TandemError, unwrap } from "@tandem/sdk";
const tandem = new Tandem({ baseUrl: location.origin, token: () => sessionStorage.getItem("token") ?? "" });
export async function main() {
  const col = unwrap(await tandem.rest.GET("/v1/collections"));
  const conn = await tandem.connect();
  const sub = await conn.subscribe(collectionTopic("orders"), { snapshot: true });
  for await (const ev of sub) document.body.append(JSON.stringify(ev));
  return [col, Mirror, verifyWebhook, TandemError];
}
`;

const result = await esbuild.build({
  stdin: { contents: entry, resolveDir: from ?? root, sourcefile: "browser-entry.js", loader: "js" },
  bundle: true,
  write: false,
  minify: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  metafile: true,
  logLevel: "silent",
  // Resolve the package by name, through its package.json exports, as an
  // application that installed it would.
  ...(from ? {} : { alias: { "@tandem/sdk": root } }),
}).catch((e) => {
  console.error("FAIL: esbuild could not bundle the SDK for the browser:\n" + (e.errors ?? []).map((m) => `  ${m.text}${m.location ? ` (${m.location.file}:${m.location.line})` : ""}`).join("\n"));
  process.exit(1);
});

const problems = [];
const builtins = new Set(builtinModules);
const isBuiltin = (p) => p.startsWith("node:") || builtins.has(p.split("/")[0]);
const inputs = Object.keys(result.metafile.inputs);
for (const input of inputs) {
  if (/(^|\/)node_modules\/ws\//.test(input)) problems.push(`the 'ws' package is bundled (${input})`);
  if (isBuiltin(input)) problems.push(`a Node builtin is bundled (${input})`);
}
for (const out of Object.values(result.metafile.outputs)) {
  for (const imp of out.imports) {
    if (imp.path === "ws" || imp.path.startsWith("ws/") || isBuiltin(imp.path)) problems.push(`the bundle imports '${imp.path}' (${imp.kind})`);
  }
}
const text = result.outputFiles[0].text;
if (/\b(__require|require)\s*\(/.test(text)) problems.push("the bundle calls require()");
// openapi-fetch feature-detects Node's undici behind `typeof process ==
// "object" && …`, which a browser evaluates to false: allowed. Any other
// mention of process fails.
const unguarded = text.replace(/typeof process\s*[!=]==?\s*["']object["']\s*&&[^;}]*/g, "");
const at = unguarded.search(/\bprocess\b/);
if (at >= 0) problems.push(`the bundle references process: …${unguarded.slice(Math.max(0, at - 60), at + 40)}…`);
if (/\bimport\(\s*["'](ws|node:[^"']*)["']/.test(text) || /\bfrom\s*["'](ws|node:[^"']*)["']/.test(text)) problems.push("the bundle imports ws or a node: module by name");
const sdkInputs = inputs.filter((i) => i !== "<stdin>" && !i.includes("browser-entry"));
if (!sdkInputs.some((i) => /openapi-fetch/.test(i))) problems.push("openapi-fetch is not in the bundle: the entry did not resolve the SDK's REST client");
if (!sdkInputs.some((i) => /dist\/esm\/realtime\.js$/.test(i))) problems.push(`the bundle was not built from dist/esm (inputs: ${sdkInputs.join(", ")})`);

const min = Buffer.byteLength(text);
const gz = gzipSync(text).length;
console.log(`browser bundle (esbuild ${esbuild.version}, platform browser, minified): ${min} bytes, ${gz} bytes gzipped; ${sdkInputs.length} input files`);
if (problems.length) {
  for (const p of problems) console.error("FAIL: " + p);
  process.exit(1);
}
console.log("bundle check: no ws, no Node builtins, no require(), no process");
